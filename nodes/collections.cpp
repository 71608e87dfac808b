// Grouping and ordering nodes: key_by, batch, unbatch, count_by_key, sort, zip.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

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

std::optional<DType> dtype_named(std::string_view name) {
    if (name == "i32") return DType::I32;
    if (name == "i64") return DType::I64;
    if (name == "f32") return DType::F32;
    if (name == "f64") return DType::F64;
    return std::nullopt;
}

// x appended to a tensor's bytes as a `t`: ints into int dtypes (that they fit), ints and
// floats into float dtypes (rounded to float32 for f32), bools as 0 and 1.
void append_element(TensorBytes& data, DType t, const Value& x) {
    const bool number = x.is_int() || x.is_float() || x.is_bool();
    const bool integral = x.is_int() || x.is_bool();
    if (!number || ((t == DType::I32 || t == DType::I64) && !integral))
        throw std::invalid_argument(std::string("batch: dtype ") + dtype_name(t) + " takes " +
                                    (t == DType::I32 || t == DType::I64 ? "ints" : "numbers") +
                                    ", got " + type_name(x.type()) + " " + to_printed(x));
    const std::int64_t i = x.is_bool() ? x.as_bool() : x.is_int() ? x.as_int() : 0;
    unsigned char bytes[8];
    switch (t) {
        case DType::I32: {
            if (i < INT32_MIN || i > INT32_MAX)
                throw std::invalid_argument("batch: " + to_printed(x) + " does not fit i32");
            const auto v = static_cast<std::int32_t>(i);
            std::memcpy(bytes, &v, 4);
            break;
        }
        case DType::I64:
            std::memcpy(bytes, &i, 8);
            break;
        case DType::F32: {
            const auto v = static_cast<float>(x.is_float() ? x.as_float() : static_cast<double>(i));
            std::memcpy(bytes, &v, 4);
            break;
        }
        case DType::F64: {
            const double v = x.is_float() ? x.as_float() : static_cast<double>(i);
            std::memcpy(bytes, &v, 8);
            break;
        }
    }
    data.insert(data.end(), bytes, bytes + dtype_size(t));
}

Value tensor_of(DType t, TensorBytes data) {
    Tensor tensor;
    tensor.dtype = t;
    tensor.shape = {static_cast<std::int64_t>(data.size() / dtype_size(t))};
    tensor.data = std::move(data);
    return Value(std::move(tensor));
}

// Row i of a tensor of 2 or more dimensions: a tensor of the remaining ones.
Value row_of(const Tensor& t, std::size_t i) {
    Tensor row;
    row.dtype = t.dtype;
    row.shape.assign(t.shape.begin() + 1, t.shape.end());
    const std::size_t bytes = row.size() * dtype_size(t.dtype);
    row.data.resize(bytes);
    if (bytes) std::memcpy(row.data.data(), t.data.data() + i * bytes, bytes);
    return Value(std::move(row));
}

Task batch_body(ProcessContext& ctx) {
    const std::int64_t size = ctx.param("size").as_int();
    const Value& dtype_param = ctx.param("dtype");
    std::optional<DType> dtype;
    if (!dtype_param.is_null()) {
        dtype = dtype_named(dtype_param.as_string());
        if (!dtype)
            throw std::invalid_argument("batch: unknown dtype '" +
                                        std::string(dtype_param.as_string()) +
                                        "' (expected i32, i64, f32 or f64)");
    }
    auto& in = ctx.in();
    auto& out = ctx.out();
    List group;
    TensorBytes bytes;
    std::int64_t held = 0;
    while (auto x = co_await in.read()) {
        if (dtype)
            append_element(bytes, *dtype, *x);
        else
            group.push_back(std::move(*x));
        if (++held == size) {
            Value full = dtype ? tensor_of(*dtype, std::exchange(bytes, TensorBytes()))
                               : Value(std::exchange(group, List()));
            co_await out.write(std::move(full));
            held = 0;
        }
    }
    if (held == 0) co_return;
    Value last = dtype ? tensor_of(*dtype, std::move(bytes)) : Value(std::move(group));
    co_await out.write(std::move(last));
}

CHANFLOW_NODE({.name = "batch",
               .doc = "Groups inputs into lists of size (the last may be shorter); with dtype, "
                      "into 1-D tensors of that element type.",
               .params = {param("size", ParamType::Int, "messages per list").within(1),
                          param("dtype", ParamType::String,
                                "i32, i64, f32 or f64: emit tensors of this element type",
                                Value())},
               .ports = {in_port("in"), out_port("out", "lists, or tensors")},
               .body = batch_body});

Task unbatch_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) {
        if (!x->is_tensor()) {
            for (const Value& e : x->as_list()) co_await out.write(e);
            continue;
        }
        const Tensor& t = x->as_tensor();
        if (t.shape.size() <= 1) {
            for (std::size_t i = 0; i < t.size(); ++i) co_await out.write(t.element(i));
        } else {
            for (std::int64_t i = 0; i < t.shape[0]; ++i)
                co_await out.write(row_of(t, static_cast<std::size_t>(i)));
        }
    }
}

CHANFLOW_NODE({.name = "unbatch",
               .doc = "Emits each element of each input list, or of each tensor (the rows of "
                      "one of 2 or more dimensions).",
               .ports = {in_port("in", "lists or tensors"), out_port("out")},
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
