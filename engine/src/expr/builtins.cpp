// The built-in functions of the expression language, each with Python's behaviour and
// messages, and the numeric form of those that take one number.
#include "expr/builtins.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "expr/text.hpp"
#include "expr/values.hpp"

namespace chanflow::expr {
namespace {

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

}  // namespace

const Builtin* find_builtin(std::string_view name) {
    for (const Builtin& b : kBuiltins)
        if (b.name == name) return &b;
    return nullptr;
}

std::span<const Builtin> builtins() {
    return kBuiltins;
}

}  // namespace chanflow::expr
