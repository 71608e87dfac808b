// Numbers as Python sees them, in registers: Num, a 16-byte bool, int or float that carries a
// failure code instead of throwing, and Python's arithmetic and comparisons on it. The
// numeric evaluator runs on these alone; the generic one uses them for its numbers too.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "expr/common.hpp"

namespace chanflow::expr {

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

inline bool is_numeric(const Value& v) {
    return v.is_int() || v.is_float() || v.is_bool();
}
inline bool is_intlike(const Value& v) {
    return v.is_int() || v.is_bool();
}
inline i64 int_of(const Value& v) {
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

inline bool num_truthy(Num n) {
    return n.is_float() ? n.f != 0.0 : n.i != 0;
}

/// Throws the message for a failed numeric operation; `what` shows the operation.
[[noreturn]] void num_fail(NumError e, const std::string& what);

/// A float converted to int as Python's int() does.
inline Num float_to_int(double f) {
    if (std::isnan(f)) return Num::failure(NumError::NanToInt);
    if (std::isinf(f)) return Num::failure(NumError::InfToInt);
    const double t = std::trunc(f);
    if (t < -kTwo63 || t >= kTwo63) return Num::failure(NumError::IntOverflow);
    return Num::integer(static_cast<i64>(t));
}

/// Python's round-half-to-even on a double (x - floor(x) is exact for every double).
inline double round_half_even(double f) {
    double r = std::floor(f);
    const double diff = f - r;
    if (diff > 0.5 || (diff == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
    return r;
}

inline i64 floor_div(i64 a, i64 b) {  // b != 0 and not (kIntMin, -1)
    i64 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) --q;
    return q;
}

inline i64 floor_mod(i64 a, i64 b) {  // b != 0
    if (b == -1) return 0;            // kIntMin % -1 is undefined in C++
    i64 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

/// Python's float divmod: the remainder takes the divisor's sign. b != 0.
inline std::pair<double, double> float_divmod(double a, double b) {
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
inline bool int_pow(i64 base, i64 exp, i64& out) {
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

inline Num float_pow(double a, double b) {
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

inline Num num_arith(BinOp op, Num a, Num b) {
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

inline Num num_neg(Num a) {
    if (a.is_float()) return Num::real(-a.f);
    if (!a.ok()) return a;
    if (a.i == kIntMin) return Num::failure(NumError::IntOverflow);
    return Num::integer(-a.i);
}

inline Num num_pos(Num a) {
    return a.tag == Num::Tag::Bool ? Num::integer(a.i) : a;
}

inline Num num_not(Num a) {
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
inline CmpOp mirrored(CmpOp op) {
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
inline int three_way(const T& a, const T& b) {
    return (b < a) - (a < b);
}

/// Three-way comparison of two numbers, exact across int and float as in Python
/// (2**53 + 1 > 2.0**53); 2 when unordered.
inline int num_cmp(Num a, Num b) {
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

}  // namespace chanflow::expr
