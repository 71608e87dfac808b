// reduce: one value at the end of the stream (MPI's Reduce, Python's functools.reduce).
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "chanflow/expr.hpp"
#include "chanflow/node.hpp"

namespace chanflow {
namespace {

enum class Op { Sum, Product, Min, Max, Count, Mean };

Op parse_op(std::string_view s) {
    if (s == "sum") return Op::Sum;
    if (s == "product") return Op::Product;
    if (s == "min") return Op::Min;
    if (s == "max") return Op::Max;
    if (s == "count") return Op::Count;
    if (s == "mean") return Op::Mean;
    throw std::invalid_argument("reduce: unknown op '" + std::string(s) +
                                "' (expected sum, product, min, max, count or mean)");
}

std::string shape_text(const Tensor& t) {
    std::string s = "(";
    for (std::size_t i = 0; i < t.shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + (t.shape.size() == 1 ? ",)" : ")");
}

template <class T>
T combine_element(Op op, T x, T y) {
    if constexpr (std::is_integral_v<T>) {
        T r{};
        if ((op == Op::Sum || op == Op::Mean) && __builtin_add_overflow(x, y, &r))
            throw std::overflow_error("reduce: tensor element overflow");
        if (op == Op::Product && __builtin_mul_overflow(x, y, &r))
            throw std::overflow_error("reduce: tensor element overflow");
        if (op == Op::Sum || op == Op::Mean || op == Op::Product) return r;
    } else {
        if (op == Op::Sum || op == Op::Mean) return x + y;
        if (op == Op::Product) return x * y;
    }
    if (op == Op::Min) return y < x ? y : x;
    return x < y ? y : x;  // Max
}

template <class T>
void combine_elements(Op op, const Tensor& a, const Tensor& b, Tensor& out) {
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) {
        T x, y;
        std::memcpy(&x, a.data.data() + i * sizeof(T), sizeof(T));
        std::memcpy(&y, b.data.data() + i * sizeof(T), sizeof(T));
        const T r = combine_element(op, x, y);
        std::memcpy(out.data.data() + i * sizeof(T), &r, sizeof(T));
    }
}

// Tensors of one dtype and shape reduce element-wise, as MPI's Reduce does.
Value combine_tensors(Op op, const Tensor& a, const Tensor& b) {
    if (a.shape != b.shape)
        throw std::invalid_argument("reduce: tensors of different shapes " + shape_text(a) +
                                    " and " + shape_text(b));
    if (a.dtype != b.dtype) throw std::invalid_argument("reduce: tensors of different dtypes");
    Tensor out{a.dtype, a.shape, TensorBytes(a.data.size())};  // every element written below
    switch (a.dtype) {
        case DType::I32:
            combine_elements<std::int32_t>(op, a, b, out);
            break;
        case DType::I64:
            combine_elements<std::int64_t>(op, a, b, out);
            break;
        case DType::F32:
            combine_elements<float>(op, a, b, out);
            break;
        case DType::F64:
            combine_elements<double>(op, a, b, out);
            break;
    }
    return Value(std::move(out));
}

// A tensor's mean: float64 elements, each divided by n.
Value divide_tensor(const Tensor& t, std::int64_t n) {
    Tensor out{DType::F64, t.shape, TensorBytes(t.size() * sizeof(double))};  // all written below
    for (std::size_t i = 0; i < t.size(); ++i) {
        double x = 0;
        switch (t.dtype) {
            case DType::I32: {
                std::int32_t v;
                std::memcpy(&v, t.data.data() + i * 4, 4);
                x = v;
                break;
            }
            case DType::I64: {
                std::int64_t v;
                std::memcpy(&v, t.data.data() + i * 8, 8);
                x = static_cast<double>(v);
                break;
            }
            case DType::F32: {
                float v;
                std::memcpy(&v, t.data.data() + i * 4, 4);
                x = v;
                break;
            }
            case DType::F64:
                std::memcpy(&x, t.data.data() + i * 8, 8);
                break;
        }
        x /= static_cast<double>(n);
        std::memcpy(out.data.data() + i * sizeof(double), &x, sizeof(double));
    }
    return Value(std::move(out));
}

// Combines two values with op; ints stay ints (overflow is an error), lists and tensors
// combine element-wise.
Value combine(Op op, const Value& a, const Value& b) {
    if (a.is_tensor() && b.is_tensor()) return combine_tensors(op, a.as_tensor(), b.as_tensor());
    if (a.is_list() && b.is_list()) {
        const List& x = a.as_list();
        const List& y = b.as_list();
        if (x.size() != y.size())
            throw std::invalid_argument("reduce: lists of different lengths (" +
                                        std::to_string(x.size()) + " and " +
                                        std::to_string(y.size()) + ")");
        List out;
        out.reserve(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) out.push_back(combine(op, x[i], y[i]));
        return Value(std::move(out));
    }
    if (a.is_int() && b.is_int()) {
        std::int64_t r = 0;
        const std::int64_t x = a.as_int();
        const std::int64_t y = b.as_int();
        switch (op) {
            case Op::Sum:
            case Op::Mean:
                if (__builtin_add_overflow(x, y, &r))
                    throw std::overflow_error("reduce: int overflow");
                return r;
            case Op::Product:
                if (__builtin_mul_overflow(x, y, &r))
                    throw std::overflow_error("reduce: int overflow");
                return r;
            case Op::Min:
                return y < x ? y : x;
            case Op::Max:
                return y > x ? y : x;
            case Op::Count:
                return x + 1;
        }
    }
    if (a.is_number() && b.is_number()) {
        const double x = a.as_number();
        const double y = b.as_number();
        switch (op) {
            case Op::Sum:
            case Op::Mean:
                return x + y;
            case Op::Product:
                return x * y;
            case Op::Min:
                return less_than(b, a) ? b : a;
            case Op::Max:
                return less_than(a, b) ? b : a;
            case Op::Count:
                return a;
        }
    }
    if (op == Op::Min) return less_than(b, a) ? b : a;
    if (op == Op::Max) return less_than(a, b) ? b : a;
    throw std::invalid_argument(std::string("reduce: cannot combine ") + type_name(a.type()) +
                                " and " + type_name(b.type()));
}

Value divide(const Value& v, std::int64_t n) {
    if (v.is_tensor()) return divide_tensor(v.as_tensor(), n);
    if (v.is_list()) {
        List out;
        for (const auto& e : v.as_list()) out.push_back(divide(e, n));
        return Value(std::move(out));
    }
    return v.as_number() / static_cast<double>(n);
}

Task reduce_body(ProcessContext& ctx) {
    const Op op = parse_op(ctx.param("op").as_string());
    const Expr* pre =
        ctx.has_param("expr") && !ctx.param("expr").is_null() ? &ctx.expr("expr") : nullptr;
    auto& in = ctx.in();
    std::int64_t n = 0;
    Value acc;
    while (auto x = co_await in.read()) {
        ++n;
        if (op == Op::Count) continue;
        Value v = pre ? (*pre)(*x) : std::move(*x);
        std::int64_t sum = 0;
        if (n == 1)
            acc = std::move(v);
        else if (op == Op::Sum && acc.is_int() && v.is_int() &&
                 !__builtin_add_overflow(acc.as_int(), v.as_int(), &sum))
            acc = Value(sum);  // the common case, without the general combine
        else
            acc = combine(op, acc, v);
    }
    // The result is made before the co_await: GCC 12 destroys a temporary of a conditional
    // expression inside a co_await expression twice.
    std::optional<Value> result;
    switch (op) {
        case Op::Count:
            result = Value(n);
            break;
        case Op::Sum:
            result = n ? std::move(acc) : Value(0);
            break;
        case Op::Product:
            result = n ? std::move(acc) : Value(1);
            break;
        case Op::Mean:
            if (n) result = divide(acc, n);
            break;
        default:
            if (n) result = std::move(acc);
    }
    if (result) co_await ctx.out().write(std::move(*result));
}

CHANFLOW_NODE(
    {.name = "reduce",
     .doc =
         "At end emits one value: the sum, product, min, max, count or mean of its "
         "inputs (lists and tensors of one shape reduce element-wise). On empty input sum emits 0, "
         "product 1, count 0; min, max and mean emit nothing.",
     .params = {param("op", ParamType::String, "sum, product, min, max, count or mean", "sum"),
                param("expr", ParamType::Expr, "applied to each input first", Value())},
     .ports = {in_port("in"), out_port("out")},
     .body = reduce_body});

}  // namespace
}  // namespace chanflow
