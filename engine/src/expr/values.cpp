// Python's operators on values: equality and ordering, + and * on sequences under the
// evaluation's budget, indexing, slicing, fields and membership.
#include "expr/values.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "expr/num.hpp"
#include "expr/text.hpp"

namespace chanflow::expr {

bool py_equal(const Value& a, const Value& b) {
    if (is_numeric(a) && is_numeric(b)) return num_cmp(to_num(a), to_num(b)) == 0;
    if (a.type() != b.type()) return false;
    switch (a.type()) {
        case Type::Null:
            return true;
        case Type::String:
            return a.as_string() == b.as_string();
        case Type::List: {
            const List& x = a.as_list();
            const List& y = b.as_list();
            if (x.size() != y.size()) return false;
            for (std::size_t i = 0; i < x.size(); ++i)
                if (!py_equal(x[i], y[i])) return false;
            return true;
        }
        case Type::Record: {
            const Record& x = a.as_record();
            if (x.size() != b.as_record().size()) return false;
            for (const auto& [k, v] : x) {
                const Value* w = b.field(k);
                if (!w || !py_equal(v, *w)) return false;
            }
            return true;
        }
        default:
            return a == b;
    }
}

bool compare(const Value& a, const Value& b, CmpOp op) {
    if (op == CmpOp::Eq) return py_equal(a, b);
    if (op == CmpOp::Ne) return !py_equal(a, b);
    const std::uint8_t mask = cmp_mask(op);
    if (is_numeric(a) && is_numeric(b)) return mask_holds(mask, num_cmp(to_num(a), to_num(b)));
    if (a.type() == b.type()) {
        switch (a.type()) {
            case Type::String:
                return mask_holds(mask, three_way(a.as_string(), b.as_string()));
            case Type::Bytes:
                return mask_holds(mask, three_way(a.as_bytes(), b.as_bytes()));
            case Type::List: {
                // Lexicographic: the first unequal pair decides, else the lengths.
                const List& x = a.as_list();
                const List& y = b.as_list();
                const std::size_t n = std::min(x.size(), y.size());
                for (std::size_t i = 0; i < n; ++i)
                    if (!py_equal(x[i], y[i])) return compare(x[i], y[i], op);
                return mask_holds(mask, three_way(x.size(), y.size()));
            }
            default:
                break;
        }
    }
    fail(std::string("cannot order ") + tname(a) + " and " + tname(b));
}

// ---- arithmetic on values ---------------------------------------------------------------

namespace {

/// Counts a sequence of n elements against the evaluation's budget; fails beyond it.
template <class Seq>
void check_sequence_size(std::size_t n, const char* what) {
    constexpr std::size_t element = sizeof(typename Seq::value_type);
    const std::size_t left = kMaxSequenceBytes - tl_sequence_bytes;
    if (n > left / element)
        fail(std::string(what) + " too large (one evaluation makes at most " +
             std::to_string(kMaxSequenceBytes >> 20) + " MiB with * and +)");
    tl_sequence_bytes += n * element;
}

template <class Seq>
Seq repeat(const Seq& s, i64 n) {
    Seq out;
    if (n <= 0 || s.empty()) return out;
    std::size_t total = 0;
    if (__builtin_mul_overflow(s.size(), static_cast<std::size_t>(n), &total))
        total = std::numeric_limits<std::size_t>::max();  // far past the budget
    check_sequence_size<Seq>(total, "repeated sequence");
    // One copy of s, then what is filled copied after itself: log2(n) copies, not n.
    out.resize(total);
    std::copy(s.begin(), s.end(), out.begin());
    for (std::size_t filled = s.size(); filled < total;) {
        const std::size_t k = std::min(filled, total - filled);
        std::copy_n(out.begin(), k, out.begin() + static_cast<std::ptrdiff_t>(filled));
        filled += k;
    }
    return out;
}

template <class Seq>
Seq concat(const Seq& a, const Seq& b) {
    check_sequence_size<Seq>(a.size() + b.size(), "joined sequence");
    Seq out;
    out.reserve(a.size() + b.size());
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

/// Sequence + sequence and sequence * int; null when the operands are not such a pair.
Value sequence_op(BinOp op, const Value& a, const Value& b) {
    if (op == BinOp::Add && a.type() == b.type()) {
        if (a.is_string()) {
            check_sequence_size<std::string>(a.as_string().size() + b.as_string().size(),
                                             "joined sequence");
            std::string joined(a.as_string());
            joined += b.as_string();
            return Value(std::move(joined));
        }
        if (a.is_list()) return Value(concat(a.as_list(), b.as_list()));
        if (a.is_bytes()) return Value::bytes(concat(a.as_bytes(), b.as_bytes()));
    }
    if (op == BinOp::Mul) {
        const Value& seq = is_intlike(a) ? b : a;
        const Value& count = is_intlike(a) ? a : b;
        if (is_intlike(count)) {
            const i64 n = int_of(count);
            if (seq.is_string()) return Value(repeat(std::string(seq.as_string()), n));
            if (seq.is_list()) return Value(repeat(seq.as_list(), n));
            if (seq.is_bytes()) return Value::bytes(repeat(seq.as_bytes(), n));
        }
    }
    return Value();
}

}  // namespace

Value binary(BinOp op, const Value& a, const Value& b) {
    if (is_numeric(a) && is_numeric(b)) {
        const Num r = num_arith(op, to_num(a), to_num(b));
        if (!r.ok()) num_fail(r.err, json(a) + ' ' + bin_symbol(op) + ' ' + json(b));
        return to_value(r);
    }
    Value r = sequence_op(op, a, b);
    if (!r.is_null()) return r;
    fail(std::string("unsupported operand types for ") + bin_symbol(op) + ": " + tname(a) +
         " and " + tname(b));
}

// ---- indexing, fields, membership -------------------------------------------------------

namespace {

/// Resolves a Python index against a length; false when out of range.
bool resolve_index(i64 i, std::size_t n, std::size_t& out) {
    const i64 len = static_cast<i64>(n);
    if (i < 0) i += len;
    if (i < 0 || i >= len) return false;
    out = static_cast<std::size_t>(i);
    return true;
}

[[noreturn]] void index_out_of_range(const Value& i) {
    fail("index " + json(i) + " out of range");
}

Value tensor_index(const Tensor& t, std::size_t i) {
    if (t.shape.size() == 1) return t.element(i);
    const std::size_t elem = dtype_size(t.dtype);
    const unsigned char* p = t.data.data();
    Tensor sub;
    sub.dtype = t.dtype;
    sub.shape.assign(t.shape.begin() + 1, t.shape.end());
    const std::size_t stride = sub.size() * elem;
    sub.data.assign(p + i * stride, p + (i + 1) * stride);
    return Value(std::move(sub));
}

}  // namespace

Value field_of(const Value& base, std::string_view name) {
    if (!base.is_record())
        fail(std::string(tname(base)) + " has no field '" + std::string(name) + "'");
    if (const Value* v = base.field(name)) return *v;
    fail("no field '" + std::string(name) + "'");
}

Value index_of(const Value& base, const Value& idx) {
    if (base.is_record()) {
        if (!idx.is_string()) fail(std::string("record keys must be str, not ") + tname(idx));
        return field_of(base, idx.as_string());
    }
    const bool indexable = base.is_list() || base.is_string() || base.is_bytes() ||
                           (base.is_tensor() && !base.as_tensor().shape.empty());
    if (!indexable) fail(std::string("cannot index ") + tname(base));
    if (!is_intlike(idx))
        fail(std::string(tname(base)) + " indices must be int, not " + tname(idx));
    const i64 i = int_of(idx);
    std::size_t k = 0;
    switch (base.type()) {
        case Type::List:
            if (!resolve_index(i, base.as_list().size(), k)) index_out_of_range(idx);
            return base.as_list()[k];
        case Type::Bytes:
            if (!resolve_index(i, base.as_bytes().size(), k)) index_out_of_range(idx);
            return Value(static_cast<i64>(base.as_bytes()[k]));
        case Type::String: {
            const std::string_view s = base.as_string();
            if (!resolve_index(i, code_points(s), k)) index_out_of_range(idx);
            const std::size_t from = byte_offset(s, k);
            return Value(s.substr(from, byte_offset(s.substr(from), 1)));
        }
        default: {
            const Tensor& t = base.as_tensor();
            if (!resolve_index(i, static_cast<std::size_t>(t.shape[0]), k)) index_out_of_range(idx);
            return tensor_index(t, k);
        }
    }
}

namespace {

/// Python slice bounds [lo:hi] (either may be null) clamped to [0, n].
std::pair<std::size_t, std::size_t> slice_bounds(const Value& lo, const Value& hi, std::size_t n) {
    auto bound = [n](const Value& v, std::size_t dflt) -> std::size_t {
        if (v.is_null()) return dflt;
        if (!is_intlike(v)) fail(std::string("slice indices must be int, not ") + tname(v));
        i64 i = int_of(v);
        const i64 len = static_cast<i64>(n);
        if (i < 0) i = std::max<i64>(i + len, 0);
        return static_cast<std::size_t>(std::min(i, len));
    };
    const std::size_t a = bound(lo, 0);
    return {a, std::max(a, bound(hi, n))};
}

}  // namespace

Value slice_of(const Value& base, const Value& lo, const Value& hi) {
    switch (base.type()) {
        case Type::List: {
            const List& l = base.as_list();
            auto [a, b] = slice_bounds(lo, hi, l.size());
            return Value(List(l.begin() + static_cast<std::ptrdiff_t>(a),
                              l.begin() + static_cast<std::ptrdiff_t>(b)));
        }
        case Type::Bytes: {
            const auto& v = base.as_bytes();
            auto [a, b] = slice_bounds(lo, hi, v.size());
            return Value::bytes({v.begin() + static_cast<std::ptrdiff_t>(a),
                                 v.begin() + static_cast<std::ptrdiff_t>(b)});
        }
        case Type::String: {
            const std::string_view s = base.as_string();
            auto [a, b] = slice_bounds(lo, hi, code_points(s));
            const std::size_t from = byte_offset(s, a);
            return Value(s.substr(from, byte_offset(s.substr(from), b - a)));
        }
        default:
            fail(std::string("cannot slice ") + tname(base));
    }
}

bool contains(const Value& container, const Value& item) {
    switch (container.type()) {
        case Type::List:
            for (const Value& e : container.as_list())
                if (py_equal(e, item)) return true;
            return false;
        case Type::Record:
            return item.is_string() && container.field(item.as_string());
        case Type::String:
            if (!item.is_string())
                fail(std::string("'in <str>' needs a str on the left, not ") + tname(item));
            return container.as_string().find(item.as_string()) != std::string::npos;
        default:
            fail(std::string("cannot test membership in ") + tname(container));
    }
}

}  // namespace chanflow::expr
