// The expression language of SPEC §4: a hand-written lexer and recursive-descent parser that
// compile the source once into a tree of small immutable nodes, evaluated per message.
//
// Two evaluators share the tree. The generic one works on Values and implements all of
// Python's rules; it is the reference, and the only one that reports errors. Subtrees that
// do nothing but arithmetic, comparisons and logic on numbers also get a numeric evaluator
// over Num, a 16-byte number that travels in registers and carries a failure code instead
// of throwing. The chain `leaf [* // % c] [+ - c] [comparison c]` over x or x.field, which
// covers most map/filter/key expressions, is fused into one straight-line operand with no
// virtual call at all; when the whole expression is such a chain over x with int constants,
// Expr::operator() runs it on an int x without even the Num tags. Whenever the numeric
// evaluator fails (x is not a number, an overflow, a division by zero) the generic one runs
// instead and says why.
//
// Run-time errors are thrown as a bare ExprError("division by zero") from deep inside and
// decorated once, in Expr::operator(), with the source text and the message x.

#include "chanflow/expr.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chanflow {
namespace {

using i64 = std::int64_t;

constexpr i64 kIntMin = std::numeric_limits<i64>::min();
constexpr double kTwo63 = 9223372036854775808.0;
// Strings, bytes and lists made by `*` and `+` in one evaluation hold at most this many
// bytes in all (a list counts 16 a value): beyond, the expression fails instead of
// exhausting memory, however often it repeats itself ([x * 2**20, x * 2**20, ...]).
constexpr std::size_t kMaxSequenceBytes = std::size_t{1} << 28;
// What the evaluation under way on this thread has made so far (EvaluationBudget).
thread_local std::size_t tl_sequence_bytes = 0;
// Longest printed x in an error message, so a huge message cannot flood the log.
constexpr std::size_t kMaxPrintedX = 256;
// Deepest nesting the parser accepts; evaluation recursion is bounded by the same depth.
constexpr int kMaxDepth = 200;

// The numeric hot path is forced inline: on it a call costs as much as the arithmetic.
#define CHANFLOW_HOT [[gnu::always_inline]] inline

[[noreturn]] void fail(std::string what) {
    throw ExprError(what);
}

std::string json(const Value& v) {
    std::string s;
    append_json(s, v);
    return s;
}

const char* tname(const Value& v) {
    return type_name(v.type());
}

// ---- numbers ----------------------------------------------------------------------------

enum class BinOp : std::uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
enum class CmpOp : std::uint8_t { Lt, Le, Gt, Ge, Eq, Ne };

const char* bin_symbol(BinOp op) {
    switch (op) {
        case BinOp::Add:
            return "+";
        case BinOp::Sub:
            return "-";
        case BinOp::Mul:
            return "*";
        case BinOp::Div:
            return "/";
        case BinOp::FloorDiv:
            return "//";
        case BinOp::Mod:
            return "%";
        case BinOp::Pow:
            return "**";
    }
    return "?";
}

enum class NumError : std::uint8_t {
    NotNumber,
    DivZero,
    ModZero,
    IntOverflow,
    FloatOverflow,
    ZeroNegPow,
    NegFracPow,
    Domain,
    Range,
    NanToInt,
    InfToInt
};

/// A number as Python sees it (bool, int or float), or the reason an operation failed.
/// Trivially copyable, so it is passed and returned in registers.
struct Num {
    enum class Tag : std::uint8_t { Fail, Bool, Int, Float };
    Tag tag;
    union {
        i64 i;  // Bool and Int
        double f;
        NumError err;
    };

    static Num boolean(bool b) {
        Num n{};
        n.tag = Tag::Bool;
        n.i = b;
        return n;
    }
    static Num integer(i64 v) {
        Num n{};
        n.tag = Tag::Int;
        n.i = v;
        return n;
    }
    static Num real(double v) {
        Num n{};
        n.tag = Tag::Float;
        n.f = v;
        return n;
    }
    static Num failure(NumError e) {
        Num n{};
        n.err = e;
        return n;
    }
    bool ok() const { return tag != Tag::Fail; }
    bool is_int() const { return tag == Tag::Int; }
    bool is_float() const { return tag == Tag::Float; }
    double as_double() const { return tag == Tag::Float ? f : static_cast<double>(i); }
};

bool is_numeric(const Value& v) {
    return v.is_int() || v.is_float() || v.is_bool();
}
bool is_intlike(const Value& v) {
    return v.is_int() || v.is_bool();
}
i64 int_of(const Value& v) {
    return v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int();
}

CHANFLOW_HOT Num to_num(const Value& v) {
    switch (v.type()) {
        case Type::Int:
            return Num::integer(v.as_int());
        case Type::Float:
            return Num::real(v.as_float());
        case Type::Bool:
            return Num::boolean(v.as_bool());
        default:
            return Num::failure(NumError::NotNumber);
    }
}

CHANFLOW_HOT Value to_value(Num n) {
    if (n.tag == Num::Tag::Int) return Value(n.i);
    if (n.tag == Num::Tag::Float) return Value(n.f);
    return Value(n.i != 0);
}

bool num_truthy(Num n) {
    return n.is_float() ? n.f != 0.0 : n.i != 0;
}

/// Throws the message for a failed numeric operation; `what` shows the operation.
[[noreturn]] void num_fail(NumError e, const std::string& what) {
    switch (e) {
        case NumError::DivZero:
            fail("division by zero");
        case NumError::ModZero:
            fail("modulo by zero");
        case NumError::IntOverflow:
            fail("integer overflow: " + what);
        case NumError::FloatOverflow:
            fail("float overflow: " + what);
        case NumError::ZeroNegPow:
            fail("0.0 cannot be raised to a negative power");
        case NumError::NegFracPow:
            fail("negative number cannot be raised to a fractional power");
        case NumError::Domain:
            fail("math domain error: " + what);
        case NumError::Range:
            fail("math range error: " + what);
        case NumError::NanToInt:
            fail("cannot convert float NaN to integer");
        case NumError::InfToInt:
            fail("cannot convert float infinity to integer");
        case NumError::NotNumber:
            break;
    }
    fail("not a number: " + what);
}

/// A float converted to int as Python's int() does.
Num float_to_int(double f) {
    if (std::isnan(f)) return Num::failure(NumError::NanToInt);
    if (std::isinf(f)) return Num::failure(NumError::InfToInt);
    const double t = std::trunc(f);
    if (t < -kTwo63 || t >= kTwo63) return Num::failure(NumError::IntOverflow);
    return Num::integer(static_cast<i64>(t));
}

/// Python's round-half-to-even on a double (x - floor(x) is exact for every double).
double round_half_even(double f) {
    double r = std::floor(f);
    const double diff = f - r;
    if (diff > 0.5 || (diff == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
    return r;
}

i64 floor_div(i64 a, i64 b) {  // b != 0 and not (kIntMin, -1)
    i64 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) --q;
    return q;
}

i64 floor_mod(i64 a, i64 b) {  // b != 0
    if (b == -1) return 0;     // kIntMin % -1 is undefined in C++
    i64 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

/// Python's float divmod: the remainder takes the divisor's sign. b != 0.
std::pair<double, double> float_divmod(double a, double b) {
    double mod = std::fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0)) {
            mod += b;
            div -= 1.0;
        }
    } else {
        mod = std::copysign(0.0, b);
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = std::copysign(0.0, a / b);
    }
    return {floordiv, mod};
}

/// base ** exp for exp >= 0 by squaring; false on overflow.
bool int_pow(i64 base, i64 exp, i64& out) {
    i64 result = 1;
    while (true) {
        if ((exp & 1) && __builtin_mul_overflow(result, base, &result)) return false;
        exp >>= 1;
        if (exp == 0) break;
        // Once base*base overflows, any remaining factor overflows the result too.
        if (__builtin_mul_overflow(base, base, &base)) return false;
    }
    out = result;
    return true;
}

Num float_pow(double a, double b) {
    if (a == 0.0 && b < 0.0) return Num::failure(NumError::ZeroNegPow);
    // Python would answer with a complex number, which we do not have.
    if (a < 0.0 && std::isfinite(a) && std::isfinite(b) && b != std::floor(b))
        return Num::failure(NumError::NegFracPow);
    const double r = std::pow(a, b);
    if (std::isinf(r) && std::isfinite(a) && std::isfinite(b))
        return Num::failure(NumError::FloatOverflow);
    return Num::real(r);
}

template <BinOp Op>
CHANFLOW_HOT Num int_arith(i64 a, i64 b) {
    i64 r = 0;
    if constexpr (Op == BinOp::Add) {
        if (__builtin_add_overflow(a, b, &r)) return Num::failure(NumError::IntOverflow);
    } else if constexpr (Op == BinOp::Sub) {
        if (__builtin_sub_overflow(a, b, &r)) return Num::failure(NumError::IntOverflow);
    } else if constexpr (Op == BinOp::Mul) {
        if (__builtin_mul_overflow(a, b, &r)) return Num::failure(NumError::IntOverflow);
    } else if constexpr (Op == BinOp::Div) {
        if (b == 0) return Num::failure(NumError::DivZero);
        return Num::real(static_cast<double>(a) / static_cast<double>(b));
    } else if constexpr (Op == BinOp::FloorDiv) {
        if (b == 0) return Num::failure(NumError::DivZero);
        if (a == kIntMin && b == -1) return Num::failure(NumError::IntOverflow);
        r = floor_div(a, b);
    } else if constexpr (Op == BinOp::Mod) {
        if (b == 0) return Num::failure(NumError::ModZero);
        r = floor_mod(a, b);
    } else {
        if (b < 0) return float_pow(static_cast<double>(a), static_cast<double>(b));
        if (!int_pow(a, b, r)) return Num::failure(NumError::IntOverflow);
    }
    return Num::integer(r);
}

template <BinOp Op>
CHANFLOW_HOT Num float_arith(double a, double b) {
    if constexpr (Op == BinOp::Add) return Num::real(a + b);
    if constexpr (Op == BinOp::Sub) return Num::real(a - b);
    if constexpr (Op == BinOp::Mul) return Num::real(a * b);
    if constexpr (Op == BinOp::Div) {
        if (b == 0.0) return Num::failure(NumError::DivZero);
        return Num::real(a / b);
    }
    if constexpr (Op == BinOp::FloorDiv) {
        if (b == 0.0) return Num::failure(NumError::DivZero);
        return Num::real(float_divmod(a, b).first);
    }
    if constexpr (Op == BinOp::Mod) {
        if (b == 0.0) return Num::failure(NumError::ModZero);
        return Num::real(float_divmod(a, b).second);
    }
    if constexpr (Op == BinOp::Pow) return float_pow(a, b);
}

/// The cases off the int-int and float-float paths: failures, bools, mixed int and float.
template <BinOp Op>
[[gnu::noinline]] Num num_arith_mixed(Num a, Num b) {
    if (!a.ok()) return a;
    if (!b.ok()) return b;
    if (a.is_float() || b.is_float()) return float_arith<Op>(a.as_double(), b.as_double());
    return int_arith<Op>(a.i, b.i);
}

/// Python arithmetic on numbers: int op int stays int (but `/`), anything with a float is
/// float, bool counts as int.
template <BinOp Op>
CHANFLOW_HOT Num num_arith(Num a, Num b) {
    if (a.is_int() && b.is_int()) [[likely]]
        return int_arith<Op>(a.i, b.i);
    if (a.is_float() && (b.is_float() || b.is_int())) return float_arith<Op>(a.f, b.as_double());
    if (a.is_int() && b.is_float()) return float_arith<Op>(a.as_double(), b.f);
    return num_arith_mixed<Op>(a, b);
}

Num num_arith(BinOp op, Num a, Num b) {
    switch (op) {
        case BinOp::Add:
            return num_arith<BinOp::Add>(a, b);
        case BinOp::Sub:
            return num_arith<BinOp::Sub>(a, b);
        case BinOp::Mul:
            return num_arith<BinOp::Mul>(a, b);
        case BinOp::Div:
            return num_arith<BinOp::Div>(a, b);
        case BinOp::FloorDiv:
            return num_arith<BinOp::FloorDiv>(a, b);
        case BinOp::Mod:
            return num_arith<BinOp::Mod>(a, b);
        case BinOp::Pow:
            return num_arith<BinOp::Pow>(a, b);
    }
    return Num::failure(NumError::NotNumber);
}

Num num_neg(Num a) {
    if (a.is_float()) return Num::real(-a.f);
    if (!a.ok()) return a;
    if (a.i == kIntMin) return Num::failure(NumError::IntOverflow);
    return Num::integer(-a.i);
}

Num num_pos(Num a) {
    return a.tag == Num::Tag::Bool ? Num::integer(a.i) : a;
}

Num num_not(Num a) {
    return a.ok() ? Num::boolean(!num_truthy(a)) : a;
}

// Comparisons go through a three-way result c (-1, 0, 1, or 2 when a NaN makes the operands
// unordered) and a 4-bit mask of the outcomes that make the comparison true: bit c + 1.
constexpr std::uint8_t cmp_mask(CmpOp op) {
    switch (op) {
        case CmpOp::Lt:
            return 0b0001;
        case CmpOp::Le:
            return 0b0011;
        case CmpOp::Gt:
            return 0b0100;
        case CmpOp::Ge:
            return 0b0110;
        case CmpOp::Eq:
            return 0b0010;
        case CmpOp::Ne:
            return 0b1101;
    }
    return 0;
}

/// The comparison that holds for (b, a) exactly when op holds for (a, b).
CmpOp mirrored(CmpOp op) {
    switch (op) {
        case CmpOp::Lt:
            return CmpOp::Gt;
        case CmpOp::Le:
            return CmpOp::Ge;
        case CmpOp::Gt:
            return CmpOp::Lt;
        case CmpOp::Ge:
            return CmpOp::Le;
        default:
            return op;
    }
}

CHANFLOW_HOT bool mask_holds(std::uint8_t mask, int c) {
    return (mask >> (c + 1)) & 1;
}

template <class T>
int three_way(const T& a, const T& b) {
    return (b < a) - (a < b);
}

/// Three-way comparison of two numbers, exact across int and float as in Python
/// (2**53 + 1 > 2.0**53); 2 when unordered.
int num_cmp(Num a, Num b) {
    if (!a.is_float() && !b.is_float()) return three_way(a.i, b.i);
    if (a.is_float() && b.is_float()) {
        if (std::isnan(a.f) || std::isnan(b.f)) return 2;
        return three_way(a.f, b.f);
    }
    const bool int_left = !a.is_float();
    const i64 i = int_left ? a.i : b.i;
    const double f = int_left ? b.f : a.f;
    if (std::isnan(f)) return 2;
    int c;
    if (f >= kTwo63) {
        c = -1;
    } else if (f < -kTwo63) {
        c = 1;
    } else {
        const double t = std::trunc(f);
        c = three_way(i, static_cast<i64>(t));
        if (c == 0) c = three_way(0.0, f - t);
    }
    return int_left ? c : -c;
}

CHANFLOW_HOT Num num_compare(std::uint8_t mask, Num a, Num b) {
    int c;
    if (a.is_int() && b.is_int()) [[likely]] {
        c = three_way(a.i, b.i);
    } else {
        if (!a.ok()) return a;
        if (!b.ok()) return b;
        c = num_cmp(a, b);
    }
    return Num::boolean(mask_holds(mask, c));
}

// ---- equality and ordering of values ----------------------------------------------------

/// Python ==: numbers by value across int/float/bool, records regardless of field order.
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

/// An evaluation starts with the whole of kMaxSequenceBytes to make.
struct EvaluationBudget {
    EvaluationBudget() noexcept { tl_sequence_bytes = 0; }
};

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

/// Every binary operator on every pair of values: the slow path behind the fast ones.
[[gnu::noinline]] Value binary(BinOp op, const Value& a, const Value& b) {
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

// ---- strings ----------------------------------------------------------------------------
// Strings are UTF-8; len and indexing count code points, as Python does.

bool is_continuation(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += !is_continuation(c);
    return n;
}

/// Byte offset of code point i (0 <= i <= code_points(s)).
std::size_t byte_offset(std::string_view s, std::size_t i) {
    std::size_t pos = 0;
    for (; i > 0; --i) {
        ++pos;
        while (pos < s.size() && is_continuation(static_cast<unsigned char>(s[pos]))) ++pos;
    }
    return pos;
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

constexpr std::string_view kWhitespace = " \t\n\r\f\v";

std::string_view strip_view(std::string_view s, std::string_view chars = kWhitespace) {
    const auto b = s.find_first_not_of(chars);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

/// The power of ten of a decimal number's leading digit ("123.4" 2, "0.05e3" 1), for telling
/// an overflow from an underflow. Digits only, no sign.
long decimal_exponent(std::string_view s) {
    const std::size_t e = s.find_first_of("eE");
    long exp = 0;
    if (e != std::string_view::npos) {
        std::string_view digits = s.substr(e + 1);
        const bool neg = !digits.empty() && digits[0] == '-';
        if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
        // Beyond any double either way; kept small so that adding the place cannot overflow.
        if (std::from_chars(digits.data(), digits.data() + digits.size(), exp).ec != std::errc() ||
            exp > 1'000'000)
            exp = 1'000'000;
        if (neg) exp = -exp;
        s = s.substr(0, e);
    }
    const std::size_t dot = std::min(s.find('.'), s.size());
    const std::size_t first = s.find_first_not_of("0.");
    if (first == std::string_view::npos) return exp;  // zero never overflows anyway
    const long place =
        first < dot ? static_cast<long>(dot - first - 1) : -static_cast<long>(first - dot);
    return place + exp;
}

/// Parses Python float syntax (and inf/nan), overflowing to inf like Python's float().
bool parse_float(std::string_view s, double& out) {
    bool neg = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.empty() || s[0] == '+' || s[0] == '-') return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ptr != s.data() + s.size()) return false;
    if (ec == std::errc::result_out_of_range) {
        out = decimal_exponent(s) >= 0 ? HUGE_VAL : 0.0;  // as Python: 1e999 is inf
    } else if (ec != std::errc()) {
        return false;
    }
    if (neg) out = -out;
    return true;
}

// ---- indexing, fields, membership -------------------------------------------------------

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
    const std::size_t elem = (t.dtype == DType::I32 || t.dtype == DType::F32) ? 4 : 8;
    const unsigned char* p = t.data.data();
    if (t.shape.size() == 1) {
        p += i * elem;
        switch (t.dtype) {
            case DType::I32: {
                std::int32_t v;
                std::memcpy(&v, p, 4);
                return Value(static_cast<i64>(v));
            }
            case DType::I64: {
                i64 v;
                std::memcpy(&v, p, 8);
                return Value(v);
            }
            case DType::F32: {
                float v;
                std::memcpy(&v, p, 4);
                return Value(static_cast<double>(v));
            }
            case DType::F64: {
                double v;
                std::memcpy(&v, p, 8);
                return Value(v);
            }
        }
    }
    Tensor sub;
    sub.dtype = t.dtype;
    sub.shape.assign(t.shape.begin() + 1, t.shape.end());
    const std::size_t stride = sub.size() * elem;
    sub.data.assign(p + i * stride, p + (i + 1) * stride);
    return Value(std::move(sub));
}

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

// ---- built-in functions -----------------------------------------------------------------

using BuiltinFn = Value (*)(const Value* args, std::size_t n);
/// The numeric form of a one-argument function, for the numeric evaluator.
using NumFn = Num (*)(Num);

std::string call_text(const char* fn, const Value* args, std::size_t n) {
    std::string s = std::string(fn) + '(';
    for (std::size_t i = 0; i < n; ++i) {
        if (i) s += ", ";
        append_json(s, args[i]);
    }
    return s + ')';
}

double number_arg(const char* fn, const Value& v) {
    if (!is_numeric(v)) fail(std::string(fn) + "() argument must be a number, not " + tname(v));
    return to_num(v).as_double();
}

std::string_view string_arg(const char* fn, const Value& v) {
    if (!v.is_string()) fail(std::string(fn) + "() argument must be str, not " + tname(v));
    return v.as_string();
}

/// A one-argument numeric function applied to a value, with its error message.
Value numeric_call(const char* fn, NumFn f, const Value& v) {
    if (!is_numeric(v)) fail(std::string(fn) + "() argument must be a number, not " + tname(v));
    const Num r = f(to_num(v));
    if (!r.ok()) num_fail(r.err, call_text(fn, &v, 1));
    return to_value(r);
}

/// Python's math-module rules: NaN out of a non-NaN is a domain error, infinity out of a
/// finite number a range error.
Num math_result(double in, double out) {
    if (std::isnan(out) && !std::isnan(in)) return Num::failure(NumError::Domain);
    if (std::isinf(out) && std::isfinite(in)) return Num::failure(NumError::Range);
    return Num::real(out);
}

Num num_sqrt(Num a) {
    return math_result(a.as_double(), std::sqrt(a.as_double()));
}
Num num_exp(Num a) {
    return math_result(a.as_double(), std::exp(a.as_double()));
}
Num num_sin(Num a) {
    return math_result(a.as_double(), std::sin(a.as_double()));
}
Num num_cos(Num a) {
    return math_result(a.as_double(), std::cos(a.as_double()));
}
Num num_log(Num a) {
    if (a.as_double() <= 0.0) return Num::failure(NumError::Domain);
    return Num::real(std::log(a.as_double()));
}
Num num_abs(Num a) {
    if (a.is_float()) return Num::real(std::fabs(a.f));
    if (a.i == kIntMin) return Num::failure(NumError::IntOverflow);
    return Num::integer(a.i < 0 ? -a.i : a.i);
}
Num num_floor(Num a) {
    return a.is_float() ? float_to_int(std::floor(a.f)) : Num::integer(a.i);
}
Num num_ceil(Num a) {
    return a.is_float() ? float_to_int(std::ceil(a.f)) : Num::integer(a.i);
}
Num num_round(Num a) {
    return a.is_float() ? float_to_int(round_half_even(a.f)) : Num::integer(a.i);
}
Num num_int(Num a) {
    return a.is_float() ? float_to_int(a.f) : Num::integer(a.i);
}
Num num_float(Num a) {
    return Num::real(a.as_double());
}

Value fn_sqrt(const Value* a, std::size_t) {
    return numeric_call("sqrt", num_sqrt, a[0]);
}
Value fn_exp(const Value* a, std::size_t) {
    return numeric_call("exp", num_exp, a[0]);
}
Value fn_sin(const Value* a, std::size_t) {
    return numeric_call("sin", num_sin, a[0]);
}
Value fn_cos(const Value* a, std::size_t) {
    return numeric_call("cos", num_cos, a[0]);
}
Value fn_abs(const Value* a, std::size_t) {
    return numeric_call("abs", num_abs, a[0]);
}
Value fn_floor(const Value* a, std::size_t) {
    return numeric_call("floor", num_floor, a[0]);
}
Value fn_ceil(const Value* a, std::size_t) {
    return numeric_call("ceil", num_ceil, a[0]);
}

Value fn_log(const Value* a, std::size_t n) {
    if (n == 1) return numeric_call("log", num_log, a[0]);
    const double d = number_arg("log", a[0]);
    const double base = number_arg("log", a[1]);
    if (d <= 0.0 || base <= 0.0) fail("math domain error: " + call_text("log", a, n));
    if (base == 1.0) fail("division by zero: " + call_text("log", a, n));
    return Value(std::log(d) / std::log(base));
}

/// Rounds the non-negative integer written in digits to a multiple of 10**k, half to even;
/// frac says whether the number had a non-zero fraction (which breaks a tie upwards).
std::string round_digits(const std::string& digits, std::size_t k, bool frac) {
    if (k > digits.size()) return "0";
    std::string head = digits.substr(0, digits.size() - k);
    const std::string tail = digits.substr(digits.size() - k);
    int c = tail.compare("5" + std::string(k - 1, '0'));
    if (c == 0 && frac) c = 1;
    const bool odd = !head.empty() && (head.back() - '0') % 2 == 1;
    if (c > 0 || (c == 0 && odd)) {
        std::size_t i = head.size();
        while (i > 0 && head[i - 1] == '9') head[--i] = '0';
        if (i == 0)
            head.insert(head.begin(), '1');
        else
            ++head[i - 1];
    }
    if (head.empty() || head.find_first_not_of('0') == std::string::npos) return "0";
    return head + std::string(k, '0');
}

/// round(f, nd) as Python: correctly rounded in decimal, ties to even.
double round_float(double f, i64 nd) {
    if (!std::isfinite(f) || nd > 323) return f;
    if (nd < -308) return 0.0 * f;
    char buf[700];
    std::string text;
    if (nd >= 0) {
        // to_chars rounds the exact binary value to nd decimals, ties to even, as Python.
        auto res =
            std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed, static_cast<int>(nd));
        text.assign(buf, res.ptr);
    } else {
        const double mag = std::fabs(f);
        std::string digits;
        bool frac = false;
        if (mag < 9007199254740992.0) {  // 2**53: the integer part fits an int exactly
            const double ip = std::trunc(mag);
            digits = std::to_string(static_cast<i64>(ip));
            frac = mag != ip;
        } else {  // an integer already; fixed notation prints it exactly
            auto res = std::to_chars(buf, buf + sizeof buf, mag, std::chars_format::fixed, 0);
            digits.assign(buf, res.ptr);
        }
        text = round_digits(digits, static_cast<std::size_t>(-nd), frac);
    }
    double r = 0.0;
    parse_float(text, r);
    return std::copysign(r, f);
}

i64 round_int(i64 v, i64 nd) {
    if (nd >= 0) return v;
    const auto overflow = [&] {
        fail("integer overflow: round(" + std::to_string(v) + ", " + std::to_string(nd) + ')');
    };
    if (nd <= -19) {
        // 10**19 does not fit; only values past 5 * 10**18 would round to it.
        if (v > 5'000'000'000'000'000'000 || v < -5'000'000'000'000'000'000) overflow();
        return 0;
    }
    i64 p = 1;
    for (i64 i = 0; i < -nd; ++i) p *= 10;
    i64 q = floor_div(v, p);
    const i64 r = floor_mod(v, p);  // in [0, p); v - q * p could overflow
    if (2 * r > p || (2 * r == p && q % 2 != 0)) ++q;
    i64 out = 0;
    if (__builtin_mul_overflow(q, p, &out)) overflow();
    return out;
}

Value fn_round(const Value* a, std::size_t n) {
    if (n == 1 || a[1].is_null()) return numeric_call("round", num_round, a[0]);
    const Value& v = a[0];
    if (!is_numeric(v)) fail(std::string("round() argument must be a number, not ") + tname(v));
    if (!is_intlike(a[1])) fail(std::string("round() ndigits must be int, not ") + tname(a[1]));
    if (is_intlike(v)) return Value(round_int(int_of(v), int_of(a[1])));
    return Value(round_float(v.as_float(), int_of(a[1])));
}

Value fn_int(const Value* a, std::size_t) {
    const Value& v = a[0];
    if (is_numeric(v)) return numeric_call("int", num_int, v);
    if (!v.is_string())
        fail(std::string("int() argument must be a str or a number, not ") + tname(v));
    // Python's int literal syntax: sign, digits with single underscores between them.
    const std::string_view s = strip_view(v.as_string());
    std::size_t i = 0;
    const bool neg = !s.empty() && s[0] == '-';
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) ++i;
    i64 r = 0;
    bool ok = i < s.size();
    for (; ok && i < s.size(); ++i) {
        const char c = s[i];
        if (c == '_' && i > 0 && i + 1 < s.size() && s[i - 1] >= '0' && s[i - 1] <= '9' &&
            s[i + 1] >= '0' && s[i + 1] <= '9')
            continue;
        if (c < '0' || c > '9') {
            ok = false;
            break;
        }
        // Accumulate negatively so that the minimum int parses too.
        if (__builtin_mul_overflow(r, 10, &r) || __builtin_sub_overflow(r, c - '0', &r))
            fail("integer overflow: int(" + json(v) + ')');
    }
    if (!ok) fail("invalid literal for int(): " + json(v));
    if (!neg) {
        if (r == kIntMin) fail("integer overflow: int(" + json(v) + ')');
        r = -r;
    }
    return Value(r);
}

Value fn_float(const Value* a, std::size_t) {
    const Value& v = a[0];
    if (is_numeric(v)) return numeric_call("float", num_float, v);
    if (!v.is_string())
        fail(std::string("float() argument must be a str or a number, not ") + tname(v));
    double f = 0.0;
    if (!parse_float(strip_view(v.as_string()), f))
        fail("could not convert string to float: " + json(v));
    return Value(f);
}

Value fn_str(const Value* a, std::size_t) {
    return Value(to_printed(a[0]));
}

Value fn_bool(const Value* a, std::size_t) {
    return Value(truthy(a[0]));
}

Value fn_len(const Value* a, std::size_t) {
    const Value& v = a[0];
    switch (v.type()) {
        case Type::String:
            return Value(static_cast<i64>(code_points(v.as_string())));
        case Type::Bytes:
            return Value(static_cast<i64>(v.as_bytes().size()));
        case Type::List:
            return Value(static_cast<i64>(v.as_list().size()));
        case Type::Record:
            return Value(static_cast<i64>(v.as_record().size()));
        case Type::Tensor:
            if (!v.as_tensor().shape.empty()) return Value(v.as_tensor().shape[0]);
            break;
        default:
            break;
    }
    fail(std::string("object of type ") + tname(v) + " has no len()");
}

// lower and upper change ASCII letters only; other UTF-8 text passes through unchanged.
Value fn_lower(const Value* a, std::size_t) {
    std::string s(string_arg("lower", a[0]));
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return Value(std::move(s));
}

Value fn_upper(const Value* a, std::size_t) {
    std::string s(string_arg("upper", a[0]));
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return Value(std::move(s));
}

Value fn_strip(const Value* a, std::size_t n) {
    const std::string_view s = string_arg("strip", a[0]);
    if (n == 2 && !a[1].is_null()) return Value(strip_view(s, string_arg("strip", a[1])));
    return Value(strip_view(s));
}

Value fn_split(const Value* a, std::size_t n) {
    const std::string_view s = string_arg("split", a[0]);
    List out;
    if (n == 1 || a[1].is_null()) {  // runs of whitespace, no empty parts
        std::size_t i = s.find_first_not_of(kWhitespace);
        while (i != std::string_view::npos) {
            const std::size_t end = std::min(s.find_first_of(kWhitespace, i), s.size());
            out.emplace_back(s.substr(i, end - i));
            i = s.find_first_not_of(kWhitespace, end);
        }
        return Value(std::move(out));
    }
    const std::string_view sep = string_arg("split", a[1]);
    if (sep.empty()) fail("split() separator is empty");
    std::size_t i = 0;
    while (true) {
        const std::size_t j = s.find(sep, i);
        if (j == std::string_view::npos) break;
        out.emplace_back(s.substr(i, j - i));
        i = j + sep.size();
    }
    out.emplace_back(s.substr(i));
    return Value(std::move(out));
}

Value fn_hash(const Value* a, std::size_t) {
    return Value(static_cast<i64>(stable_hash(a[0])));  // two's complement wrap (C++20)
}

/// min/max over 2+ arguments or over one list; the first of equal extremes wins, as Python.
Value extreme(const char* fn, const Value* a, std::size_t n, CmpOp better) {
    if (n == 1) {
        if (!a[0].is_list())
            fail(std::string(fn) + "() argument must be a list, not " + tname(a[0]));
        const List& l = a[0].as_list();
        if (l.empty()) fail(std::string(fn) + "() arg is an empty list");
        a = l.data();
        n = l.size();
    }
    const Value* best = &a[0];
    for (std::size_t i = 1; i < n; ++i)
        if (compare(a[i], *best, better)) best = &a[i];
    return *best;
}

Value fn_min(const Value* a, std::size_t n) {
    return extreme("min", a, n, CmpOp::Lt);
}
Value fn_max(const Value* a, std::size_t n) {
    return extreme("max", a, n, CmpOp::Gt);
}

Value fn_sum(const Value* a, std::size_t n) {
    if (!a[0].is_list()) fail(std::string("sum() argument must be a list, not ") + tname(a[0]));
    Value total = n == 2 ? a[1] : Value(0);
    for (const Value& e : a[0].as_list()) total = binary(BinOp::Add, total, e);
    return total;
}

constexpr std::size_t kVariadic = std::numeric_limits<std::size_t>::max();

struct Builtin {
    std::string_view name;
    std::size_t min_args, max_args;
    BuiltinFn fn;
    NumFn num = nullptr;  // the one-argument form on numbers, where there is one
};

constexpr Builtin kBuiltins[] = {
    {"abs", 1, 1, fn_abs, num_abs},
    {"min", 1, kVariadic, fn_min},
    {"max", 1, kVariadic, fn_max},
    {"sqrt", 1, 1, fn_sqrt, num_sqrt},
    {"exp", 1, 1, fn_exp, num_exp},
    {"log", 1, 2, fn_log, num_log},
    {"sin", 1, 1, fn_sin, num_sin},
    {"cos", 1, 1, fn_cos, num_cos},
    {"floor", 1, 1, fn_floor, num_floor},
    {"ceil", 1, 1, fn_ceil, num_ceil},
    {"round", 1, 2, fn_round, num_round},
    {"int", 1, 1, fn_int, num_int},
    {"float", 1, 1, fn_float, num_float},
    {"str", 1, 1, fn_str},
    {"len", 1, 1, fn_len},
    {"lower", 1, 1, fn_lower},
    {"upper", 1, 1, fn_upper},
    {"strip", 1, 2, fn_strip},
    {"split", 1, 2, fn_split},
    {"hash", 1, 1, fn_hash},
    {"bool", 1, 1, fn_bool},
    {"sum", 1, 2, fn_sum},
};

const Builtin* find_builtin(std::string_view name) {
    for (const Builtin& b : kBuiltins)
        if (b.name == name) return &b;
    return nullptr;
}

// ---- the numeric evaluator --------------------------------------------------------------

[[gnu::noinline]] Num field_num(const Value& x, const std::string& name) {
    const Value* f = x.field(name);
    return f ? to_num(*f) : Num::failure(NumError::NotNumber);
}

class NumNode {
public:
    virtual ~NumNode() = default;
    virtual Num eval(const Value& x) const = 0;
};

/// An operand of the numeric evaluator: a constant, a computed subtree, or a linear form
///   leaf [* c1 | // c1 | % c1] [+ c2] [comparison c3]   with leaf = x or x.field,
/// evaluated in line, without a virtual call. Compilation grows linear forms by absorbing
/// constant operations (see fuse), always in that stage order.
class NumOperand {
public:
    static NumOperand constant(Num c) {
        NumOperand o;
        o.k1_ = c;
        return o;
    }
    static NumOperand message() {
        NumOperand o;
        o.kind_ = Kind::Linear;
        return o;
    }
    static NumOperand field(std::string name) {
        NumOperand o = message();
        o.from_field_ = true;
        o.field_ = std::move(name);
        return o;
    }
    static NumOperand computed(std::unique_ptr<NumNode> n) {
        NumOperand o;
        o.kind_ = Kind::Computed;
        o.node_ = std::move(n);
        return o;
    }

    bool is_const() const { return kind_ == Kind::Const; }

    /// Whether this is a linear form over x with int constants (and no zero divisor), which
    /// run_int computes for an int x without any type tags.
    bool int_linear() const {
        return kind_ == Kind::Linear && !from_field_ &&
               (scale_ == Scale::None || (k1_.is_int() && (scale_ == Scale::Mul || k1_.i != 0))) &&
               (!add_ || k2_.is_int()) && (mask_ == 0 || k3_.is_int());
    }
    bool has_comparison() const { return mask_ != 0; }

    /// The linear form on an int x; false when an int operation overflows.
    CHANFLOW_HOT bool run_int(i64 v, i64& out) const {
        if (scale_ == Scale::Mul) {
            if (__builtin_mul_overflow(v, k1_.i, &v)) return false;
        } else if (scale_ == Scale::FloorDiv) {
            if (v == kIntMin && k1_.i == -1) return false;
            v = floor_div(v, k1_.i);
        } else if (scale_ == Scale::Mod) {
            v = floor_mod(v, k1_.i);
        }
        if (add_ && __builtin_add_overflow(v, k2_.i, &v)) return false;
        if (mask_ != 0) v = mask_holds(mask_, three_way(v, k3_.i));
        out = v;
        return true;
    }

    CHANFLOW_HOT Num get(const Value& x) const {
        if (kind_ == Kind::Linear) return linear(x);
        if (kind_ == Kind::Const) return k1_;
        return node_->eval(x);
    }

    /// Folds `a op b` into a linear form when one side is linear and the other constant;
    /// false (leaving both untouched) when that would break the stage order or exactness.
    static bool fuse(BinOp op, NumOperand& a, NumOperand& b, NumOperand& out) {
        const bool const_left = a.kind_ == Kind::Const;
        NumOperand& lin = const_left ? b : a;
        const NumOperand& k = const_left ? a : b;
        if (lin.kind_ != Kind::Linear || k.kind_ != Kind::Const) return false;
        const Num c = k.k1_;
        const bool bare = lin.scale_ == Scale::None && !lin.add_ && lin.mask_ == 0;
        const bool add_open = !lin.add_ && lin.mask_ == 0;
        if (op == BinOp::Mul && bare) {  // c * v == v * c exactly, for ints and floats
            lin.scale_ = Scale::Mul;
            lin.k1_ = c;
        } else if ((op == BinOp::FloorDiv || op == BinOp::Mod) && bare && !const_left) {
            lin.scale_ = op == BinOp::Mod ? Scale::Mod : Scale::FloorDiv;
            lin.k1_ = c;
        } else if (op == BinOp::Add && add_open) {
            lin.add_ = true;
            lin.k2_ = c;
        } else if (op == BinOp::Sub && !const_left && add_open && num_neg(c).ok() &&
                   (c.is_float() || c.i != 0)) {
            // v - c == v + -c exactly (IEEE defines it so), but for an int zero: -0.0 - 0
            // is -0.0 while -0.0 + 0 is 0.0.
            lin.add_ = true;
            lin.k2_ = num_neg(c);
        } else if (op == BinOp::Sub && const_left && bare &&
                   !(c.is_float() && c.f == 0.0 && std::signbit(c.f))) {
            // c - v == v * -1 + c, but for c = -0.0 and an int v = 0 (-0.0 - 0 is -0.0, and
            // 0 + -0.0 is 0.0). Where v * -1 overflows but c - v would not, the numeric
            // evaluator fails and the generic one answers.
            lin.scale_ = Scale::Mul;
            lin.k1_ = Num::integer(-1);
            lin.add_ = true;
            lin.k2_ = c;
        } else {
            return false;
        }
        out = std::move(lin);
        return true;
    }

    static bool fuse(CmpOp op, NumOperand& a, NumOperand& b, NumOperand& out) {
        const bool const_left = a.kind_ == Kind::Const;
        NumOperand& lin = const_left ? b : a;
        NumOperand& c = const_left ? a : b;
        if (lin.kind_ != Kind::Linear || c.kind_ != Kind::Const || lin.mask_ != 0) return false;
        lin.mask_ = cmp_mask(const_left ? mirrored(op) : op);
        lin.k3_ = c.k1_;
        out = std::move(lin);
        return true;
    }

    /// -v and +v as linear forms (v * -1, v * 1: the same values, bools becoming ints).
    static bool fuse_sign(bool negate, NumOperand& a) {
        if (a.kind_ != Kind::Linear || a.scale_ != Scale::None || a.add_ || a.mask_ != 0)
            return false;
        a.scale_ = Scale::Mul;
        a.k1_ = Num::integer(negate ? -1 : 1);
        return true;
    }

private:
    enum class Kind : std::uint8_t { Const, Linear, Computed };
    enum class Scale : std::uint8_t { None, Mul, FloorDiv, Mod };

    CHANFLOW_HOT Num linear(const Value& x) const {
        Num v = from_field_ ? field_num(x, field_) : to_num(x);
        if (scale_ == Scale::Mul)
            v = num_arith<BinOp::Mul>(v, k1_);
        else if (scale_ == Scale::FloorDiv)
            v = num_arith<BinOp::FloorDiv>(v, k1_);
        else if (scale_ == Scale::Mod)
            v = num_arith<BinOp::Mod>(v, k1_);
        if (add_) v = num_arith<BinOp::Add>(v, k2_);
        if (mask_ != 0) v = num_compare(mask_, v, k3_);
        return v;
    }

    Kind kind_ = Kind::Const;
    Scale scale_ = Scale::None;
    bool add_ = false;
    bool from_field_ = false;
    std::uint8_t mask_ = 0;     // the comparison stage, 0 when absent
    Num k1_ = Num::integer(0);  // the constant (Const) or the scale stage's operand
    Num k2_ = Num::integer(0);  // the add stage's operand
    Num k3_ = Num::integer(0);  // the comparison stage's operand
    std::string field_;
    std::unique_ptr<NumNode> node_;
};

template <BinOp Op>
class NumArith final : public NumNode {
public:
    NumArith(NumOperand a, NumOperand b) : a_(std::move(a)), b_(std::move(b)) {}
    Num eval(const Value& x) const override { return num_arith<Op>(a_.get(x), b_.get(x)); }

private:
    NumOperand a_, b_;
};

class NumCompare final : public NumNode {
public:
    NumCompare(std::uint8_t mask, NumOperand a, NumOperand b)
        : mask_(mask), a_(std::move(a)), b_(std::move(b)) {}
    Num eval(const Value& x) const override { return num_compare(mask_, a_.get(x), b_.get(x)); }

private:
    std::uint8_t mask_;
    NumOperand a_, b_;
};

/// `and` / `or`, returning an operand as Python does.
class NumLogic final : public NumNode {
public:
    NumLogic(bool is_and, NumOperand a, NumOperand b)
        : is_and_(is_and), a_(std::move(a)), b_(std::move(b)) {}
    Num eval(const Value& x) const override {
        const Num a = a_.get(x);
        if (!a.ok()) return a;
        return num_truthy(a) == is_and_ ? b_.get(x) : a;
    }

private:
    bool is_and_;
    NumOperand a_, b_;
};

class NumConditional final : public NumNode {
public:
    NumConditional(NumOperand cond, NumOperand then, NumOperand otherwise)
        : cond_(std::move(cond)), then_(std::move(then)), else_(std::move(otherwise)) {}
    Num eval(const Value& x) const override {
        const Num c = cond_.get(x);
        if (!c.ok()) return c;
        return num_truthy(c) ? then_.get(x) : else_.get(x);
    }

private:
    NumOperand cond_, then_, else_;
};

/// A one-argument function or a unary operator.
class NumCall final : public NumNode {
public:
    NumCall(NumFn fn, NumOperand a) : fn_(fn), a_(std::move(a)) {}
    Num eval(const Value& x) const override {
        const Num a = a_.get(x);
        return a.ok() ? fn_(a) : a;
    }

private:
    NumFn fn_;
    NumOperand a_;
};

template <BinOp Op>
NumOperand num_arith_operand(NumOperand a, NumOperand b) {
    NumOperand fused;
    if (NumOperand::fuse(Op, a, b, fused)) return fused;
    return NumOperand::computed(std::make_unique<NumArith<Op>>(std::move(a), std::move(b)));
}

NumOperand num_compare_operand(CmpOp op, NumOperand a, NumOperand b) {
    NumOperand fused;
    if (NumOperand::fuse(op, a, b, fused)) return fused;
    return NumOperand::computed(
        std::make_unique<NumCompare>(cmp_mask(op), std::move(a), std::move(b)));
}

// ---- the generic evaluator --------------------------------------------------------------

class Node {
public:
    virtual ~Node() = default;
    virtual Value eval(const Value& x) const = 0;
    /// This subtree for the numeric evaluator; false when it does more than numbers.
    virtual bool to_numeric(NumOperand& /*out*/) const { return false; }
    /// Gives the largest numeric subtrees below this node a numeric evaluator.
    virtual void accelerate() {}
};

/// An operand of a generic node: the message x, a constant, or a computed subtree, which
/// may carry a numeric evaluator to try first. Leaves are read in place, so they cost
/// neither a virtual call nor a refcount.
class Operand {
public:
    static Operand message() {
        Operand o;
        o.kind_ = Kind::X;
        return o;
    }
    static Operand constant(Value v) {
        Operand o;
        o.value_ = std::move(v);
        return o;
    }
    static Operand computed(std::unique_ptr<Node> n) {
        Operand o;
        o.kind_ = Kind::Computed;
        o.node_ = std::move(n);
        return o;
    }

    bool is_const() const { return kind_ == Kind::Const; }
    bool is_message() const { return kind_ == Kind::X; }
    bool is_fast() const { return kind_ == Kind::Fast; }
    const Value& value() const { return value_; }
    const NumOperand& fast() const { return fast_; }

    /// The operand's value, either in place or stored in tmp.
    CHANFLOW_HOT const Value& get(const Value& x, Value& tmp) const {
        if (kind_ == Kind::X) return x;
        if (kind_ == Kind::Const) return value_;
        tmp = computed_value(x);
        return tmp;
    }
    CHANFLOW_HOT Value eval(const Value& x) const {
        if (kind_ == Kind::X) return x;
        if (kind_ == Kind::Const) return value_;
        return computed_value(x);
    }

    /// eval without the numeric evaluator, for when it has just failed.
    Value eval_generic(const Value& x) const {
        if (kind_ == Kind::X) return x;
        if (kind_ == Kind::Const) return value_;
        return node_->eval(x);
    }

    bool to_numeric(NumOperand& out) const {
        switch (kind_) {
            case Kind::X:
                out = NumOperand::message();
                return true;
            case Kind::Const:
                if (!is_numeric(value_)) return false;
                out = NumOperand::constant(to_num(value_));
                return true;
            default:
                return node_->to_numeric(out);
        }
    }

    void accelerate() {
        if (kind_ != Kind::Computed) return;
        NumOperand n;
        if (node_->to_numeric(n) && !n.is_const()) {
            fast_ = std::move(n);
            kind_ = Kind::Fast;
        } else {
            node_->accelerate();
        }
    }

private:
    CHANFLOW_HOT Value computed_value(const Value& x) const {
        if (kind_ == Kind::Fast) {
            const Num r = fast_.get(x);
            if (r.ok()) [[likely]]
                return to_value(r);
        }
        return node_->eval(x);
    }

    enum class Kind : std::uint8_t { X, Const, Computed, Fast };
    Kind kind_ = Kind::Const;
    Value value_;
    std::unique_ptr<Node> node_;
    NumOperand fast_;  // Fast: tried before node_
};

template <BinOp Op>
class Arith final : public Node {
public:
    Arith(Operand a, Operand b) : a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value ta, tb;
        const Value& a = a_.get(x, ta);
        const Value& b = b_.get(x, tb);
        if (a.is_int() && b.is_int()) {
            const Num r = int_arith<Op>(a.as_int(), b.as_int());
            if (r.ok()) return to_value(r);
        }
        return binary(Op, a, b);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a, b;
        if (!a_.to_numeric(a) || !b_.to_numeric(b)) return false;
        out = num_arith_operand<Op>(std::move(a), std::move(b));
        return true;
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    Operand a_, b_;
};

class Compare final : public Node {
public:
    Compare(CmpOp op, Operand a, Operand b) : op_(op), a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value ta, tb;
        const Value& a = a_.get(x, ta);
        const Value& b = b_.get(x, tb);
        if (a.is_int() && b.is_int())
            return Value(mask_holds(cmp_mask(op_), three_way(a.as_int(), b.as_int())));
        return Value(compare(a, b, op_));
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a, b;
        if (!a_.to_numeric(a) || !b_.to_numeric(b)) return false;
        out = num_compare_operand(op_, std::move(a), std::move(b));
        return true;
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    CmpOp op_;
    Operand a_, b_;
};

enum class Rel : std::uint8_t { Cmp, In, NotIn, Is, IsNot };

/// `is` compares type and value: our values have no identity, and this keeps `x is None`
/// and `x is True` meaning what they mean in Python.
bool identical(const Value& a, const Value& b) {
    return a.type() == b.type() && py_equal(a, b);
}

bool relate(Rel rel, CmpOp op, const Value& a, const Value& b) {
    switch (rel) {
        case Rel::Cmp:
            return compare(a, b, op);
        case Rel::In:
            return contains(b, a);
        case Rel::NotIn:
            return !contains(b, a);
        case Rel::Is:
            return identical(a, b);
        case Rel::IsNot:
            return !identical(a, b);
    }
    return false;
}

/// `in`, `not in`, `is`, `is not`.
class Relation final : public Node {
public:
    Relation(Rel rel, Operand a, Operand b) : rel_(rel), a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value ta, tb;
        const Value& a = a_.get(x, ta);  // Python evaluates left to right
        return Value(relate(rel_, CmpOp::Eq, a, b_.get(x, tb)));
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    Rel rel_;
    Operand a_, b_;
};

struct Link {
    Rel rel;
    CmpOp op;
};

/// a < b <= c ...: each middle operand evaluated once, stopping at the first false.
class Chain final : public Node {
public:
    Chain(std::vector<Operand> operands, std::vector<Link> links)
        : operands_(std::move(operands)), links_(std::move(links)) {}
    Value eval(const Value& x) const override {
        Value left = operands_[0].eval(x);
        for (std::size_t i = 0; i < links_.size(); ++i) {
            Value right = operands_[i + 1].eval(x);
            if (!relate(links_[i].rel, links_[i].op, left, right)) return Value(false);
            left = std::move(right);
        }
        return Value(true);
    }
    // Numbers are pure, so a < b < c may evaluate b twice: (a < b) and (b < c).
    bool to_numeric(NumOperand& out) const override {
        for (const Link& l : links_)
            if (l.rel != Rel::Cmp) return false;
        for (std::size_t i = 0; i < links_.size(); ++i) {
            NumOperand a, b;
            if (!operands_[i].to_numeric(a) || !operands_[i + 1].to_numeric(b)) return false;
            NumOperand link = num_compare_operand(links_[i].op, std::move(a), std::move(b));
            out = i == 0 ? std::move(link)
                         : NumOperand::computed(
                               std::make_unique<NumLogic>(true, std::move(out), std::move(link)));
        }
        return true;
    }
    void accelerate() override {
        for (Operand& o : operands_) o.accelerate();
    }

private:
    std::vector<Operand> operands_;
    std::vector<Link> links_;
};

class Logic final : public Node {
public:
    Logic(bool is_and, Operand a, Operand b)
        : is_and_(is_and), a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value t;
        const Value& a = a_.get(x, t);
        return truthy(a) == is_and_ ? b_.eval(x) : a;
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a, b;
        if (!a_.to_numeric(a) || !b_.to_numeric(b)) return false;
        out = NumOperand::computed(std::make_unique<NumLogic>(is_and_, std::move(a), std::move(b)));
        return true;
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    bool is_and_;
    Operand a_, b_;
};

class Conditional final : public Node {
public:
    Conditional(Operand cond, Operand then, Operand otherwise)
        : cond_(std::move(cond)), then_(std::move(then)), else_(std::move(otherwise)) {}
    Value eval(const Value& x) const override {
        Value t;
        return truthy(cond_.get(x, t)) ? then_.eval(x) : else_.eval(x);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand c, a, b;
        if (!cond_.to_numeric(c) || !then_.to_numeric(a) || !else_.to_numeric(b)) return false;
        out = NumOperand::computed(
            std::make_unique<NumConditional>(std::move(c), std::move(a), std::move(b)));
        return true;
    }
    void accelerate() override {
        cond_.accelerate();
        then_.accelerate();
        else_.accelerate();
    }

private:
    Operand cond_, then_, else_;
};

enum class UnOp : std::uint8_t { Neg, Pos, Not };

class Unary final : public Node {
public:
    Unary(UnOp op, Operand a) : op_(op), a_(std::move(a)) {}
    Value eval(const Value& x) const override {
        Value t;
        const Value& a = a_.get(x, t);
        if (op_ == UnOp::Not) return Value(!truthy(a));
        const char sign = op_ == UnOp::Neg ? '-' : '+';
        if (!is_numeric(a))
            fail(std::string("bad operand type for unary ") + sign + ": " + tname(a));
        const Num r = op_ == UnOp::Neg ? num_neg(to_num(a)) : num_pos(to_num(a));
        if (!r.ok()) num_fail(r.err, sign + ('(' + json(a) + ')'));
        return to_value(r);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a;
        if (!a_.to_numeric(a)) return false;
        if (op_ != UnOp::Not && NumOperand::fuse_sign(op_ == UnOp::Neg, a)) {
            out = std::move(a);
            return true;
        }
        const NumFn fn = op_ == UnOp::Not ? num_not : op_ == UnOp::Neg ? num_neg : num_pos;
        out = NumOperand::computed(std::make_unique<NumCall>(fn, std::move(a)));
        return true;
    }
    void accelerate() override { a_.accelerate(); }

private:
    UnOp op_;
    Operand a_;
};

class Index final : public Node {
public:
    Index(Operand base, Operand index) : base_(std::move(base)), index_(std::move(index)) {}
    Value eval(const Value& x) const override {
        Value tb, ti;
        const Value& base = base_.get(x, tb);
        return index_of(base, index_.get(x, ti));
    }
    // x["name"] reads a field of x, like x.name.
    bool to_numeric(NumOperand& out) const override {
        if (!base_.is_message() || !index_.is_const() || !index_.value().is_string()) return false;
        out = NumOperand::field(std::string(index_.value().as_string()));
        return true;
    }
    void accelerate() override {
        base_.accelerate();
        index_.accelerate();
    }

private:
    Operand base_, index_;
};

class Slice final : public Node {
public:
    Slice(Operand base, Operand lo, Operand hi)
        : base_(std::move(base)), lo_(std::move(lo)), hi_(std::move(hi)) {}
    Value eval(const Value& x) const override {
        Value tb, tl, th;
        const Value& base = base_.get(x, tb);
        const Value& lo = lo_.get(x, tl);
        return slice_of(base, lo, hi_.get(x, th));
    }
    void accelerate() override {
        base_.accelerate();
        lo_.accelerate();
        hi_.accelerate();
    }

private:
    Operand base_, lo_, hi_;
};

class FieldAccess final : public Node {
public:
    FieldAccess(Operand base, std::string name) : base_(std::move(base)), name_(std::move(name)) {}
    Value eval(const Value& x) const override {
        Value t;
        const Value& base = base_.get(x, t);
        if (const Value* v = base.field(name_)) return *v;
        return field_of(base, name_);  // throws the right message
    }
    bool to_numeric(NumOperand& out) const override {
        if (!base_.is_message()) return false;
        out = NumOperand::field(name_);
        return true;
    }
    void accelerate() override { base_.accelerate(); }

private:
    Operand base_;
    std::string name_;
};

class ListLiteral final : public Node {
public:
    explicit ListLiteral(std::vector<Operand> items) : items_(std::move(items)) {}
    Value eval(const Value& x) const override {
        List out;
        out.reserve(items_.size());
        for (const Operand& o : items_) out.push_back(o.eval(x));
        return Value(std::move(out));
    }
    void accelerate() override {
        for (Operand& o : items_) o.accelerate();
    }

private:
    std::vector<Operand> items_;
};

class RecordLiteral final : public Node {
public:
    RecordLiteral(std::vector<Operand> keys, std::vector<Operand> values)
        : keys_(std::move(keys)), values_(std::move(values)) {}
    Value eval(const Value& x) const override {
        Record out;
        out.reserve(keys_.size());
        for (std::size_t i = 0; i < keys_.size(); ++i) {
            Value key = keys_[i].eval(x);
            if (!key.is_string()) fail(std::string("record keys must be str, not ") + tname(key));
            Value value = values_[i].eval(x);
            // A repeated key keeps its first place and its last value, as a Python dict.
            auto same = [&](const Field& f) { return f.first == key.as_string(); };
            if (auto it = std::find_if(out.begin(), out.end(), same); it != out.end())
                it->second = std::move(value);
            else
                out.emplace_back(key.as_string(), std::move(value));
        }
        return Value(std::move(out));
    }
    void accelerate() override {
        for (Operand& o : keys_) o.accelerate();
        for (Operand& o : values_) o.accelerate();
    }

private:
    std::vector<Operand> keys_, values_;
};

class Call final : public Node {
public:
    Call(const Builtin& fn, std::vector<Operand> args) : fn_(fn), args_(std::move(args)) {}
    Value eval(const Value& x) const override {
        const std::size_t n = args_.size();
        if (n <= 4) {  // the common case: no allocation for the argument array
            std::array<Value, 4> buf;
            for (std::size_t i = 0; i < n; ++i) buf[i] = args_[i].eval(x);
            return fn_.fn(buf.data(), n);
        }
        std::vector<Value> buf;
        buf.reserve(n);
        for (const Operand& a : args_) buf.push_back(a.eval(x));
        return fn_.fn(buf.data(), n);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a;
        if (!fn_.num || args_.size() != 1 || !args_[0].to_numeric(a)) return false;
        out = NumOperand::computed(std::make_unique<NumCall>(fn_.num, std::move(a)));
        return true;
    }
    void accelerate() override {
        for (Operand& o : args_) o.accelerate();
    }

private:
    const Builtin& fn_;
    std::vector<Operand> args_;
};

/// Wraps a node as an operand, folding it to a constant when it does not read x. A fold
/// that fails stays a node, so that `1 / 0` only fails (with its message) when evaluated.
Operand finish(std::unique_ptr<Node> node, bool foldable) {
    if (foldable) {
        try {
            EvaluationBudget budget;
            return Operand::constant(node->eval(Value()));
        } catch (const ExprError&) {
        } catch (const TypeError&) {
        } catch (const ValueError&) {
        }
    }
    return Operand::computed(std::move(node));
}

bool all_const(const std::vector<Operand>& v) {
    return std::all_of(v.begin(), v.end(), [](const Operand& o) { return o.is_const(); });
}

template <BinOp Op>
Operand make_arith_as(Operand a, Operand b) {
    const bool c = a.is_const() && b.is_const();
    return finish(std::make_unique<Arith<Op>>(std::move(a), std::move(b)), c);
}

Operand make_arith(BinOp op, Operand a, Operand b) {
    switch (op) {
        case BinOp::Add:
            return make_arith_as<BinOp::Add>(std::move(a), std::move(b));
        case BinOp::Sub:
            return make_arith_as<BinOp::Sub>(std::move(a), std::move(b));
        case BinOp::Mul:
            return make_arith_as<BinOp::Mul>(std::move(a), std::move(b));
        case BinOp::Div:
            return make_arith_as<BinOp::Div>(std::move(a), std::move(b));
        case BinOp::FloorDiv:
            return make_arith_as<BinOp::FloorDiv>(std::move(a), std::move(b));
        case BinOp::Mod:
            return make_arith_as<BinOp::Mod>(std::move(a), std::move(b));
        case BinOp::Pow:
            return make_arith_as<BinOp::Pow>(std::move(a), std::move(b));
    }
    return Operand();
}

Operand make_compare(CmpOp op, Operand a, Operand b) {
    const bool c = a.is_const() && b.is_const();
    return finish(std::make_unique<Compare>(op, std::move(a), std::move(b)), c);
}

// ---- lexer ------------------------------------------------------------------------------

enum class Tok : std::uint8_t { End, Int, Float, String, Name, Op };

struct Token {
    Tok kind = Tok::End;
    std::size_t pos = 0;
    std::string_view text;  // the source characters
    std::string str;        // a string literal's decoded value
    i64 i = 0;
    double f = 0.0;
};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || is_digit(c);
}

int hex_digit(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Lexer {
public:
    explicit Lexer(std::string_view src) : src_(src) {}

    std::vector<Token> run() {
        std::vector<Token> out;
        while (true) {
            while (pos_ < src_.size() && kWhitespace.find(src_[pos_]) != std::string_view::npos)
                ++pos_;
            Token t;
            t.pos = pos_;
            if (pos_ == src_.size()) {
                out.push_back(std::move(t));
                return out;
            }
            const char c = src_[pos_];
            if (is_digit(c) || (c == '.' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1])))
                number(t);
            else if (c == '"' || c == '\'')
                string(t);
            else if (is_name_start(c))
                name(t);
            else
                op(t);
            t.text = src_.substr(t.pos, pos_ - t.pos);
            out.push_back(std::move(t));
        }
    }

private:
    [[noreturn]] void error(const std::string& what, std::size_t at) const {
        throw ExprSyntaxError(what, at);
    }

    char at(std::size_t i) const { return i < src_.size() ? src_[i] : '\0'; }

    void digits(std::string& out) {
        while (is_digit(at(pos_)) || (at(pos_) == '_' && is_digit(at(pos_ + 1)))) {
            if (src_[pos_] != '_') out += src_[pos_];
            ++pos_;
        }
    }

    void number(Token& t) {
        std::string text;  // without underscores
        digits(text);
        bool is_float = false;
        if (at(pos_) == '.') {
            is_float = true;
            text += '.';
            ++pos_;
            digits(text);
        }
        const char e = at(pos_);
        if ((e == 'e' || e == 'E') &&
            (is_digit(at(pos_ + 1)) ||
             ((at(pos_ + 1) == '+' || at(pos_ + 1) == '-') && is_digit(at(pos_ + 2))))) {
            is_float = true;
            text += 'e';
            ++pos_;
            if (src_[pos_] == '+' || src_[pos_] == '-') text += src_[pos_++];
            digits(text);
        }
        if (is_float) {
            t.kind = Tok::Float;
            parse_float(text, t.f);
            return;
        }
        t.kind = Tok::Int;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), t.i);
        if (ec != std::errc() || ptr != text.data() + text.size())
            error("integer literal too large", t.pos);
    }

    void name(Token& t) {
        t.kind = Tok::Name;
        while (is_name_char(at(pos_))) ++pos_;
    }

    void string(Token& t) {
        t.kind = Tok::String;
        const char quote = src_[pos_++];
        while (true) {
            if (pos_ >= src_.size() || src_[pos_] == '\n') error("unterminated string", t.pos);
            const char c = src_[pos_++];
            if (c == quote) return;
            if (c != '\\') {
                t.str += c;
                continue;
            }
            escape(t.str);
        }
    }

    // Python's escapes; an unknown one keeps its backslash, as Python does.
    void escape(std::string& out) {
        const std::size_t start = pos_ - 1;
        if (pos_ >= src_.size()) error("unterminated string", start);
        const char c = src_[pos_++];
        switch (c) {
            case '\n':
                return;  // line continuation
            case '\\':
                out += '\\';
                return;
            case '\'':
                out += '\'';
                return;
            case '"':
                out += '"';
                return;
            case 'n':
                out += '\n';
                return;
            case 't':
                out += '\t';
                return;
            case 'r':
                out += '\r';
                return;
            case 'a':
                out += '\a';
                return;
            case 'b':
                out += '\b';
                return;
            case 'f':
                out += '\f';
                return;
            case 'v':
                out += '\v';
                return;
            case 'x':
                append_utf8(out, hex_escape(2, start));
                return;
            case 'u':
                append_utf8(out, hex_escape(4, start));
                return;
            case 'U':
                append_utf8(out, hex_escape(8, start));
                return;
            default:
                break;
        }
        if (c >= '0' && c <= '7') {
            unsigned v = static_cast<unsigned>(c - '0');
            for (int k = 0; k < 2 && at(pos_) >= '0' && at(pos_) <= '7'; ++k)
                v = v * 8 + static_cast<unsigned>(src_[pos_++] - '0');
            append_utf8(out, v);
            return;
        }
        out += '\\';
        out += c;
    }

    std::uint32_t hex_escape(int n, std::size_t start) {
        std::uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
            const int d = hex_digit(at(pos_));
            if (d < 0) error("invalid \\" + std::string(1, src_[start + 1]) + " escape", start);
            v = v * 16 + static_cast<std::uint32_t>(d);
            ++pos_;
        }
        if (v > 0x10FFFF) error("invalid \\U escape", start);
        return v;
    }

    void op(Token& t) {
        t.kind = Tok::Op;
        static constexpr std::string_view two[] = {"**", "//", "==", "!=", "<=", ">="};
        for (std::string_view o : two)
            if (src_.substr(pos_, 2) == o) {
                pos_ += 2;
                return;
            }
        const char c = src_[pos_];
        if (std::string_view("+-*/%<>()[]{},:.").find(c) != std::string_view::npos) {
            ++pos_;
            return;
        }
        // Anything else is an error; name the whole UTF-8 character, with a hint for the
        // usual slips from other languages.
        std::size_t end = pos_ + 1;
        while (end < src_.size() && is_continuation(static_cast<unsigned char>(src_[end]))) ++end;
        std::string what = "unexpected '" + std::string(src_.substr(pos_, end - pos_)) + "'";
        if (c == '=') what += " (did you mean '=='?)";
        if (c == '!') what += " (use 'not')";
        if (c == '&') what += " (use 'and')";
        if (c == '|') what += " (use 'or')";
        error(what, pos_);
    }

    std::string_view src_;
    std::size_t pos_ = 0;
};

// ---- parser -----------------------------------------------------------------------------

/// Edit distance counting a swap of neighbours as one edit (ture -> true).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t w = b.size() + 1;
    std::vector<std::size_t> d((a.size() + 1) * w);
    for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t v = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1,
                                      d[(i - 1) * w + j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                v = std::min(v, d[(i - 2) * w + j - 2] + 1);
            d[i * w + j] = v;
        }
    return d.back();
}

/// " (did you mean 'sqrt'?)" for a close misspelling of one of the candidates, else "".
template <class Names>
std::string suggestion(std::string_view name, const Names& candidates) {
    if (name.size() < 3) return "";
    const std::size_t limit = name.size() <= 4 ? 1 : 2;
    std::string_view best;
    std::size_t best_d = limit + 1;
    for (std::string_view c : candidates) {
        const std::size_t d = edit_distance(name, c);
        if (d < best_d) {
            best = c;
            best_d = d;
        }
    }
    return best.empty() ? "" : " (did you mean '" + std::string(best) + "'?)";
}

class Parser {
public:
    explicit Parser(std::string_view src) : toks_(Lexer(src).run()) {}

    Operand parse() {
        Operand e = expression();
        if (peek().kind != Tok::End) unexpected(peek());
        return e;
    }

private:
    // Recursion guard: every level of nesting passes through expression() or a unary
    // operator.
    struct Nest {
        explicit Nest(Parser& p) : p_(p) {
            if (++p_.depth_ > kMaxDepth)
                throw ExprSyntaxError("expression nested too deeply", p_.peek().pos);
        }
        ~Nest() { --p_.depth_; }
        Parser& p_;
    };
    // A left-associative chain (a + b + c ...) deepens the tree without recursing here;
    // each link counts as a level too, so that evaluation depth stays bounded.
    struct Links {
        explicit Links(Parser& p) : p_(p) {}
        void add() {
            ++n_;
            if (++p_.depth_ > kMaxDepth)
                throw ExprSyntaxError("expression nested too deeply", p_.peek().pos);
        }
        ~Links() { p_.depth_ -= n_; }
        Parser& p_;
        int n_ = 0;
    };

    const Token& peek(std::size_t ahead = 0) const {
        return toks_[std::min(i_ + ahead, toks_.size() - 1)];
    }
    const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }

    bool is_op(std::string_view op, std::size_t ahead = 0) const {
        const Token& t = peek(ahead);
        return t.kind == Tok::Op && t.text == op;
    }
    bool is_kw(std::string_view kw, std::size_t ahead = 0) const {
        const Token& t = peek(ahead);
        return t.kind == Tok::Name && t.text == kw;
    }
    bool accept_op(std::string_view op) {
        if (!is_op(op)) return false;
        ++i_;
        return true;
    }
    bool accept_kw(std::string_view kw) {
        if (!is_kw(kw)) return false;
        ++i_;
        return true;
    }

    [[noreturn]] void unexpected(const Token& t, std::string_view expected = {}) const {
        std::string what = t.kind == Tok::End ? std::string("unexpected end of expression")
                                              : "unexpected '" + std::string(t.text) + "'";
        if (!expected.empty()) what += " (expected '" + std::string(expected) + "')";
        throw ExprSyntaxError(what, t.pos);
    }
    void expect_op(std::string_view op) {
        if (!accept_op(op)) unexpected(peek(), op);
    }

    // expression := or_test ['if' or_test 'else' expression]
    Operand expression() {
        Nest nest(*this);
        Operand a = or_test();
        if (!accept_kw("if")) return a;
        Operand cond = or_test();
        if (!accept_kw("else")) unexpected(peek(), "else");
        Operand b = expression();
        if (cond.is_const()) return truthy(cond.value()) ? std::move(a) : std::move(b);
        return Operand::computed(
            std::make_unique<Conditional>(std::move(cond), std::move(a), std::move(b)));
    }

    Operand or_test() {
        Operand a = and_test();
        Links links(*this);
        while (accept_kw("or")) {
            links.add();
            Operand b = and_test();
            if (a.is_const()) {
                if (!truthy(a.value())) a = std::move(b);
                continue;
            }
            a = Operand::computed(std::make_unique<Logic>(false, std::move(a), std::move(b)));
        }
        return a;
    }

    Operand and_test() {
        Operand a = not_test();
        Links links(*this);
        while (accept_kw("and")) {
            links.add();
            Operand b = not_test();
            if (a.is_const()) {
                if (truthy(a.value())) a = std::move(b);
                continue;
            }
            a = Operand::computed(std::make_unique<Logic>(true, std::move(a), std::move(b)));
        }
        return a;
    }

    Operand not_test() {
        if (!accept_kw("not")) return comparison();
        Nest nest(*this);
        Operand a = not_test();
        const bool c = a.is_const();
        return finish(std::make_unique<Unary>(UnOp::Not, std::move(a)), c);
    }

    // The comparison operator at the cursor, consuming it; false when there is none.
    bool comparison_op(Rel& rel, CmpOp& op) {
        static constexpr std::pair<std::string_view, CmpOp> ops[] = {
            {"<", CmpOp::Lt},  {"<=", CmpOp::Le}, {">", CmpOp::Gt},
            {">=", CmpOp::Ge}, {"==", CmpOp::Eq}, {"!=", CmpOp::Ne}};
        for (const auto& [text, o] : ops)
            if (accept_op(text)) {
                rel = Rel::Cmp;
                op = o;
                return true;
            }
        if (accept_kw("in")) {
            rel = Rel::In;
        } else if (is_kw("not") && is_kw("in", 1)) {
            i_ += 2;
            rel = Rel::NotIn;
        } else if (accept_kw("is")) {
            rel = accept_kw("not") ? Rel::IsNot : Rel::Is;
        } else {
            return false;
        }
        return true;
    }

    Operand relation(Rel rel, CmpOp op, Operand a, Operand b) {
        if (rel == Rel::Cmp) return make_compare(op, std::move(a), std::move(b));
        const bool c = a.is_const() && b.is_const();
        return finish(std::make_unique<Relation>(rel, std::move(a), std::move(b)), c);
    }

    Operand comparison() {
        Operand first = arith();
        Rel rel{};
        CmpOp op{};  // set only for Rel::Cmp; passed on (by value) for every relation
        if (!comparison_op(rel, op)) return first;
        Operand second = arith();
        Rel rel2{};
        CmpOp op2{};
        if (!comparison_op(rel2, op2))
            return relation(rel, op, std::move(first), std::move(second));

        // A chain: a < b < c means a < b and b < c, with b evaluated once.
        std::vector<Operand> operands;
        std::vector<Link> ops{{rel, op}, {rel2, op2}};
        operands.push_back(std::move(first));
        operands.push_back(std::move(second));
        operands.push_back(arith());
        while (comparison_op(rel, op)) {
            ops.push_back({rel, op});
            operands.push_back(arith());
        }
        const bool c = all_const(operands);
        return finish(std::make_unique<Chain>(std::move(operands), std::move(ops)), c);
    }

    Operand arith() {
        Operand a = term();
        Links links(*this);
        while (true) {
            BinOp op;
            if (accept_op("+"))
                op = BinOp::Add;
            else if (accept_op("-"))
                op = BinOp::Sub;
            else
                return a;
            links.add();
            a = make_arith(op, std::move(a), term());
        }
    }

    Operand term() {
        Operand a = factor();
        Links links(*this);
        while (true) {
            BinOp op;
            if (accept_op("*"))
                op = BinOp::Mul;
            else if (accept_op("/"))
                op = BinOp::Div;
            else if (accept_op("//"))
                op = BinOp::FloorDiv;
            else if (accept_op("%"))
                op = BinOp::Mod;
            else
                return a;
            links.add();
            a = make_arith(op, std::move(a), factor());
        }
    }

    // factor := ('-' | '+') factor | power. Unary minus binds looser than **: -2**2 == -4.
    Operand factor() {
        UnOp op;
        if (accept_op("-"))
            op = UnOp::Neg;
        else if (accept_op("+"))
            op = UnOp::Pos;
        else
            return power();
        Nest nest(*this);
        Operand a = factor();
        const bool c = a.is_const();
        return finish(std::make_unique<Unary>(op, std::move(a)), c);
    }

    // power := postfix ['**' factor]: right-associative, and 2**-1 is allowed.
    Operand power() {
        Operand base = postfix(atom());
        if (!accept_op("**")) return base;
        Nest nest(*this);  // a ** b ** c recurses through factor()
        return make_arith(BinOp::Pow, std::move(base), factor());
    }

    Operand postfix(Operand a) {
        Links links(*this);
        while (true) {
            if (is_op(".") || is_op("[")) links.add();
            if (accept_op(".")) {
                const Token& t = next();
                if (t.kind != Tok::Name) unexpected(t);
                const bool c = a.is_const();
                a = finish(std::make_unique<FieldAccess>(std::move(a), std::string(t.text)), c);
            } else if (accept_op("[")) {
                a = subscript(std::move(a));
            } else {
                return a;
            }
        }
    }

    // After '[': an index or a slice [lo:hi], either bound optional.
    Operand subscript(Operand base) {
        Operand lo = is_op(":") ? Operand::constant(Value()) : expression();
        if (!accept_op(":")) {
            expect_op("]");
            const bool c = base.is_const() && lo.is_const();
            return finish(std::make_unique<Index>(std::move(base), std::move(lo)), c);
        }
        Operand hi = is_op("]") ? Operand::constant(Value()) : expression();
        expect_op("]");
        const bool c = base.is_const() && lo.is_const() && hi.is_const();
        return finish(std::make_unique<Slice>(std::move(base), std::move(lo), std::move(hi)), c);
    }

    Operand atom() {
        const Token& t = next();
        switch (t.kind) {
            case Tok::Int:
                return Operand::constant(Value(t.i));
            case Tok::Float:
                return Operand::constant(Value(t.f));
            case Tok::String:
                return Operand::constant(Value(t.str));
            case Tok::Name:
                return name(t);
            case Tok::End:
                unexpected(t);
            case Tok::Op:
                break;
        }
        if (t.text == "(") {
            Operand e = expression();
            expect_op(")");
            return e;
        }
        if (t.text == "[") {
            std::vector<Operand> items;
            while (!accept_op("]")) {
                items.push_back(expression());
                if (!accept_op(",")) {
                    expect_op("]");
                    break;
                }
            }
            const bool c = all_const(items);
            return finish(std::make_unique<ListLiteral>(std::move(items)), c);
        }
        if (t.text == "{") {
            std::vector<Operand> keys, values;
            while (!accept_op("}")) {
                keys.push_back(expression());
                expect_op(":");
                values.push_back(expression());
                if (!accept_op(",")) {
                    expect_op("}");
                    break;
                }
            }
            const bool c = all_const(keys) && all_const(values);
            return finish(std::make_unique<RecordLiteral>(std::move(keys), std::move(values)), c);
        }
        unexpected(t);
    }

    Operand name(const Token& t) {
        const std::string_view n = t.text;
        static constexpr std::string_view keywords[] = {"and",  "or", "not", "if",
                                                        "else", "in", "is"};
        if (std::find(std::begin(keywords), std::end(keywords), n) != std::end(keywords))
            unexpected(t);
        if (is_op("(")) return call(t);
        if (n == "x") return Operand::message();
        if (n == "true" || n == "True") return Operand::constant(Value(true));
        if (n == "false" || n == "False") return Operand::constant(Value(false));
        if (n == "null" || n == "None") return Operand::constant(Value());
        if (find_builtin(n))
            throw ExprSyntaxError("function '" + std::string(n) + "' must be called", t.pos);
        static constexpr std::string_view names[] = {"x",    "true",  "false", "null",
                                                     "True", "False", "None"};
        throw ExprSyntaxError("unknown name '" + std::string(n) + "'" + suggestion(n, names),
                              t.pos);
    }

    Operand call(const Token& t) {
        const Builtin* fn = find_builtin(t.text);
        if (!fn) {
            std::vector<std::string_view> names;
            for (const Builtin& b : kBuiltins) names.push_back(b.name);
            throw ExprSyntaxError(
                "unknown function '" + std::string(t.text) + "'" + suggestion(t.text, names),
                t.pos);
        }
        expect_op("(");
        std::vector<Operand> args;
        while (!accept_op(")")) {
            args.push_back(expression());
            if (!accept_op(",")) {
                expect_op(")");
                break;
            }
        }
        if (args.size() < fn->min_args || args.size() > fn->max_args)
            throw ExprSyntaxError(arity_message(*fn), t.pos);
        const bool c = all_const(args);
        return finish(std::make_unique<Call>(*fn, std::move(args)), c);
    }

    static std::string arity_message(const Builtin& fn) {
        std::string s = "function '" + std::string(fn.name) + "' takes ";
        if (fn.max_args == kVariadic)
            s += "at least " + std::to_string(fn.min_args);
        else if (fn.max_args == fn.min_args)
            s += std::to_string(fn.min_args);
        else
            s += std::to_string(fn.min_args) + " or " + std::to_string(fn.max_args);
        const bool one = fn.min_args == 1 && (fn.max_args == 1 || fn.max_args == kVariadic);
        return s + (one ? " argument" : " arguments");
    }

    std::vector<Token> toks_;
    std::size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace

namespace detail {
struct ExprProgram {
    std::string source;
    Operand root;
    bool int_linear = false;       // root is a NumOperand::int_linear form
    bool int_linear_bool = false;  // ... ending in a comparison
};
}  // namespace detail

namespace {
[[noreturn]] void rethrow_with_context(const detail::ExprProgram& p, const char* what,
                                       const Value& x) {
    std::string msg = what;
    msg += " in '";
    msg += p.source;
    msg += "' (x = ";
    std::string printed = json(x);
    if (printed.size() > kMaxPrintedX) {
        printed.resize(kMaxPrintedX);
        printed += "...";
    }
    msg += printed;
    msg += ')';
    throw ExprError(msg);
}
}  // namespace

Expr Expr::compile(std::string_view source) {
    auto program = std::make_shared<detail::ExprProgram>();
    program->source = std::string(source);
    program->root = Parser(program->source).parse();
    program->root.accelerate();
    if (program->root.is_fast() && program->root.fast().int_linear()) {
        program->int_linear = true;
        program->int_linear_bool = program->root.fast().has_comparison();
    }
    Expr e;
    e.program_ = std::move(program);
    return e;
}

namespace {
// The three evaluation paths, from the fastest, each out of line so that the one before it
// stays small.

[[gnu::noinline]] Value evaluate_generic(const detail::ExprProgram* p, const Value& x) {
    if (!p) throw ExprError("evaluating an empty expression");
    try {
        EvaluationBudget budget;
        return p->root.eval_generic(x);
    } catch (const ExprError& e) {
        rethrow_with_context(*p, e.what(), x);
    } catch (const TypeError& e) {
        rethrow_with_context(*p, e.what(), x);
    } catch (const ValueError& e) {
        rethrow_with_context(*p, e.what(), x);
    }
}

[[gnu::noinline]] Value evaluate_numeric(const detail::ExprProgram* p, const Value& x) {
    const Num r = p->root.fast().get(x);
    if (r.ok()) [[likely]]
        return to_value(r);
    return evaluate_generic(p, x);
}
}  // namespace

Value Expr::operator()(const Value& x) const {
    const detail::ExprProgram* p = program_.get();
    if (p && p->int_linear && x.is_int()) {  // the commonest case of all, in a few instructions
        i64 r;
        if (p->root.fast().run_int(x.as_int(), r))
            return p->int_linear_bool ? Value(r != 0) : Value(r);
    }
    if (p && p->root.is_fast()) return evaluate_numeric(p, x);
    return evaluate_generic(p, x);
}

const std::string& Expr::source() const noexcept {
    static const std::string empty;
    return program_ ? program_->source : empty;
}

bool truthy(const Value& v) noexcept {
    switch (v.type()) {
        case Type::Null:
            return false;
        case Type::Bool:
            return v.as_bool();
        case Type::Int:
            return v.as_int() != 0;
        case Type::Float:
            return v.as_float() != 0.0;
        case Type::String:
            return !v.as_string().empty();
        case Type::Bytes:
            return !v.as_bytes().empty();
        case Type::List:
            return !v.as_list().empty();
        case Type::Record:
            return !v.as_record().empty();
        case Type::Tensor:
            return v.as_tensor().size() != 0;
    }
    return false;
}

bool less_than(const Value& a, const Value& b) {
    return compare(a, b, CmpOp::Lt);
}

}  // namespace chanflow

#undef CHANFLOW_HOT
