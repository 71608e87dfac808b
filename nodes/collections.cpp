// Grouping and ordering nodes: key_by, batch, unbatch, count_by_key, sort, zip.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "../engine/src/load_bytes.hpp"
#include "chanflow/expr.hpp"
#include "chanflow/node.hpp"

namespace chanflow {
namespace {

// Built outside the coroutines: GCC 12 miscompiles initializer lists inside co_await
// expressions ("array used as initializer").
Value pair_of(Value a, Value b) {
    List l;
    l.reserve(2);
    l.push_back(std::move(a));
    l.push_back(std::move(b));
    return Value(std::move(l));
}

Task key_by_body(ProcessContext& ctx) {
    const Expr& key = ctx.expr("expr");
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) {
        Value k = key(*x);
        co_await out.write(pair_of(std::move(k), std::move(*x)));
    }
}

CHANFLOW_NODE({.name = "key_by",
               .doc = "Emits [expr(x), x] for every input x.",
               .params = {param("expr", ParamType::Expr, "the key, an expression over x")},
               .ports = {in_port("in"), out_port("out")},
               .body = key_by_body,
               .one_to_one = true});

Task batch_body(ProcessContext& ctx) {
    const std::int64_t size = ctx.param("size").as_int();
    if (size < 1) throw std::invalid_argument("batch: size must be at least 1");
    auto& in = ctx.in();
    auto& out = ctx.out();
    List group;
    while (auto x = co_await in.read()) {
        group.push_back(std::move(*x));
        if (static_cast<std::int64_t>(group.size()) == size) {
            co_await out.write(Value(std::move(group)));
            group = List();
        }
    }
    if (!group.empty()) co_await out.write(Value(std::move(group)));
}

CHANFLOW_NODE({.name = "batch",
               .doc = "Groups inputs into lists of size (the last may be shorter).",
               .params = {param("size", ParamType::Int, "messages per list")},
               .ports = {in_port("in"), out_port("out", "lists")},
               .body = batch_body});

Task unbatch_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read())
        for (const Value& e : x->as_list()) co_await out.write(e);
}

CHANFLOW_NODE({.name = "unbatch",
               .doc = "Emits each element of each input list.",
               .ports = {in_port("in", "lists"), out_port("out")},
               .body = unbatch_body});

struct ValueHash {
    std::size_t operator()(const Value& v) const noexcept { return stable_hash(v); }
};

// Counts per string key in one open-addressing table, the key bytes in one arena: lookups
// by string_view allocate nothing, and the table's memory is its own (map nodes allocated
// among the messages would share cache lines with what other cores are writing).
class StringCounts {
public:
    std::int64_t& operator[](std::string_view key) {
        if (4 * (used_ + 1) > 3 * slots_.size()) grow();
        const std::uint64_t h = hash(key);
        const std::uint32_t tag = tag_of(h, key.size());
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.offset == kEmpty) {
                if (arena_.size() + key.size() + 8 >= kEmpty)
                    throw std::length_error("count_by_key: too many distinct strings");
                s = {tag, static_cast<std::uint32_t>(arena_.size()), 0};
                const auto len = static_cast<std::uint64_t>(key.size());
                arena_.append(reinterpret_cast<const char*>(&len), sizeof len);
                arena_.append(key);
                ++used_;
                return s.count;
            }
            if (s.tag != tag) continue;
            const std::string_view k = stored(s);  // the tag holds only 8 bits of the length
            if (k.size() == key.size() && detail::equal_bytes(k.data(), key.data(), key.size()))
                return s.count;
        }
    }
    template <class F>
    void for_each(F&& f) const {
        for (const Slot& s : slots_)
            if (s.offset != kEmpty) f(stored(s), s.count);
    }

private:
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
    // 16 bytes a slot, so that more of the table stays in cache: a tag of 24 hash bits and
    // 8 length bits, the key's place in the arena (its length, then its bytes), the count.
    struct Slot {
        std::uint32_t tag;
        std::uint32_t offset;
        std::int64_t count;
    };
    static std::uint32_t tag_of(std::uint64_t h, std::size_t len) noexcept {
        return static_cast<std::uint32_t>(h >> 40) << 8 | static_cast<std::uint32_t>(len & 0xff);
    }
    std::string_view stored(const Slot& s) const noexcept {
        std::uint64_t len;
        std::memcpy(&len, arena_.data() + s.offset, sizeof len);
        return {arena_.data() + s.offset + sizeof len, static_cast<std::size_t>(len)};
    }
    // Words are short: hashed eight bytes at a time, inline.
    static std::uint64_t hash(std::string_view k) noexcept {
        std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ k.size();
        const auto* p = reinterpret_cast<const unsigned char*>(k.data());
        std::size_t n = k.size();
        auto fold = [&](std::uint64_t w) {
            h = (h ^ w) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        };
        for (; n >= 8; p += 8, n -= 8) fold(detail::load_le64(p));
        if (n) fold(detail::load_le_partial(p, n));
        return h;
    }
    void grow() {
        std::vector<Slot> old(slots_.empty() ? 1024 : slots_.size() * 2, Slot{0, kEmpty, 0});
        old.swap(slots_);
        mask_ = slots_.size() - 1;
        for (const Slot& s : old) {
            if (s.offset == kEmpty) continue;
            std::size_t i = hash(stored(s)) & mask_;
            while (slots_[i].offset != kEmpty) i = (i + 1) & mask_;
            slots_[i] = s;
        }
    }
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t used_ = 0;
    std::string arena_;
};

class Counter {
public:
    void add(const Value& key, std::int64_t n) {
        std::int64_t& c = key.is_string() ? strings_[key.as_string()] : values_[key];
        if (__builtin_add_overflow(c, n, &c))
            throw std::overflow_error("count_by_key: count overflow");
    }
    // [key, count] pairs sorted by key.
    std::vector<std::pair<Value, std::int64_t>> sorted() const {
        std::vector<std::pair<Value, std::int64_t>> out(values_.begin(), values_.end());
        strings_.for_each(
            [&](std::string_view k, std::int64_t n) { out.emplace_back(Value(k), n); });
        std::stable_sort(out.begin(), out.end(),
                         [](const auto& a, const auto& b) { return less_than(a.first, b.first); });
        return out;
    }

private:
    StringCounts strings_;
    std::unordered_map<Value, std::int64_t, ValueHash> values_;
};

Task count_by_key_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    Counter counts;
    while (auto x = co_await in.read()) {
        // A [key, n] pair with an int n adds n (partial counts from upstream replicas).
        if (x->is_list() && x->as_list().size() == 2 && x->as_list()[1].is_int())
            counts.add(x->as_list()[0], x->as_list()[1].as_int());
        else
            counts.add(*x, 1);
    }
    auto& out = ctx.out();
    for (auto& [k, n] : counts.sorted()) co_await out.write(pair_of(k, n));
}

CHANFLOW_NODE({.name = "count_by_key",
               .doc = "Counts equal inputs (a 2-element list whose element 1 is an int counts as "
                      "[key, n] and adds n); at end emits [key, count] pairs sorted by key.",
               .ports = {in_port("in"), out_port("out", "[key, count] pairs")},
               .body = count_by_key_body});

Task sort_body(ProcessContext& ctx) {
    const Expr& by = ctx.expr("by");
    const bool reverse = ctx.param("reverse").as_bool();
    const Value& limit_param = ctx.param("limit");
    auto& in = ctx.in();
    std::vector<std::pair<Value, Value>> items;  // key, message
    while (auto x = co_await in.read()) {
        Value k = by(*x);
        items.emplace_back(std::move(k), std::move(*x));
    }
    // Stable both ways, as Python's sorted(reverse=True): equal keys keep input order.
    std::stable_sort(items.begin(), items.end(), [reverse](const auto& a, const auto& b) {
        return reverse ? less_than(b.first, a.first) : less_than(a.first, b.first);
    });
    std::size_t n = items.size();
    if (!limit_param.is_null())
        n = std::min<std::size_t>(
            n, static_cast<std::size_t>(std::max<std::int64_t>(0, limit_param.as_int())));
    auto& out = ctx.out();
    for (std::size_t i = 0; i < n; ++i) co_await out.write(std::move(items[i].second));
}

CHANFLOW_NODE({.name = "sort",
               .doc = "At end emits its inputs sorted by a key; equal keys keep their input order, "
                      "also with reverse (as Python's sorted).",
               .params = {param("by", ParamType::Expr, "the sort key, an expression over x", "x"),
                          param("reverse", ParamType::Bool, "largest first", false),
                          param("limit", ParamType::Int, "emit at most this many", Value())},
               .ports = {in_port("in"), out_port("out")},
               .body = sort_body});

Task zip_body(ProcessContext& ctx) {
    auto ins = ctx.ins("in");
    auto& out = ctx.out();
    for (;;) {
        List round;
        for (InPort* in : ins) {
            auto x = co_await in->read();
            if (!x) co_return;  // any input ends: a partial round is dropped
            round.push_back(std::move(*x));
        }
        co_await out.write(Value(std::move(round)));
    }
}

CHANFLOW_NODE({.name = "zip",
               .doc = "Emits a list of one message from each input, in turn; ends when any input "
                      "ends (a partial round is dropped).",
               .ports = {in_ports("in", "the inputs (a list)"), out_port("out", "lists")},
               .body = zip_body});

}  // namespace
}  // namespace chanflow
