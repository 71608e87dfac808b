// Grouping and ordering nodes: key_by, batch, unbatch, count_by_key, sort, zip.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "chanflow/expr.hpp"
#include "chanflow/node.hpp"
#include "string_counts.hpp"

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
               .params = {param("size", ParamType::Int, "messages per list").within(1)},
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
    detail::StringCounts strings_;
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
        n = std::min<std::size_t>(n, static_cast<std::size_t>(limit_param.as_int()));
    auto& out = ctx.out();
    for (std::size_t i = 0; i < n; ++i) co_await out.write(std::move(items[i].second));
}

CHANFLOW_NODE(
    {.name = "sort",
     .doc = "At end emits its inputs sorted by a key; equal keys keep their input order, "
            "also with reverse (as Python's sorted).",
     .params = {param("by", ParamType::Expr, "the sort key, an expression over x", "x"),
                param("reverse", ParamType::Bool, "largest first", false),
                param("limit", ParamType::Int, "emit at most this many", Value()).within(0)},
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
