// prelude.cpp — the CUDA C every generated kernel starts with: the expression language's
// arithmetic on bools, ints and floats, with the CPU evaluator's rules (engine/src/expr/
// num.hpp, builtins.cpp) written once more for the device. An operation that the CPU would
// fail sets the element's failure flag instead; the host then evaluates that element on the
// CPU for the exact message. The same text compiles as host C++ (the tests run generated
// code on the CPU through it), so it uses no CUDA header and no standard library on the
// device.
#include "prelude.hpp"

namespace chanflow::gpu {

const char* const kPrelude = R"CUDA(// chanflow kernel prelude
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define CF_FN __device__ __forceinline__
#define CF_KERNEL extern "C" __global__
CF_FN double cf_f64(unsigned long long bits) { return __longlong_as_double((long long)bits); }
CF_FN long long cf_mulhi(long long a, long long b) { return __mul64hi(a, b); }
CF_FN void cf_fail_at(unsigned long long* first, long long i) {
    atomicMin(first, (unsigned long long)i);
}
#else
#include <cmath>
#include <cstring>
#define CF_FN inline
#define CF_KERNEL extern "C"
using std::ceil; using std::copysign; using std::cos; using std::exp; using std::fabs;
using std::floor; using std::fmod; using std::isinf; using std::isnan; using std::log;
using std::pow; using std::sin; using std::sqrt; using std::trunc;
CF_FN double cf_f64(unsigned long long bits) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}
CF_FN long long cf_mulhi(long long a, long long b) {
    return (long long)(((__int128)a * b) >> 64);
}
CF_FN void cf_fail_at(unsigned long long* first, long long i) {
    if ((unsigned long long)i < *first) *first = (unsigned long long)i;
}
#endif

typedef long long cf_i64;
#define CF_I64_MIN (-9223372036854775807LL - 1)
#define CF_TWO63 9223372036854775808.0
// The failure "index" of a reduction whose ints overflowed while combining.
#define CF_COMBINE_FAILED 9223372036854775807LL

CF_FN bool cf_isfinite(double a) { return !isnan(a) && !isinf(a); }
CF_FN bool cf_truthy_i(cf_i64 a) { return a != 0; }
CF_FN bool cf_truthy_f(double a) { return a != 0.0; }

CF_FN cf_i64 cf_add_ii(cf_i64 a, cf_i64 b, int& e) {
    const cf_i64 r = (cf_i64)((unsigned long long)a + (unsigned long long)b);
    if (((a ^ r) & (b ^ r)) < 0) e = 1;
    return r;
}
CF_FN cf_i64 cf_sub_ii(cf_i64 a, cf_i64 b, int& e) {
    const cf_i64 r = (cf_i64)((unsigned long long)a - (unsigned long long)b);
    if (((a ^ b) & (a ^ r)) < 0) e = 1;
    return r;
}
CF_FN cf_i64 cf_mul_ii(cf_i64 a, cf_i64 b, int& e) {
    const cf_i64 r = (cf_i64)((unsigned long long)a * (unsigned long long)b);
    if (cf_mulhi(a, b) != (r < 0 ? -1 : 0)) e = 1;
    return r;
}
CF_FN double cf_div_ff(double a, double b, int& e) {
    if (b == 0.0) { e = 1; return 0.0; }
    return a / b;
}
CF_FN cf_i64 cf_floordiv_ii(cf_i64 a, cf_i64 b, int& e) {
    if (b == 0 || (a == CF_I64_MIN && b == -1)) { e = 1; return 0; }
    cf_i64 q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) --q;
    return q;
}
CF_FN cf_i64 cf_mod_ii(cf_i64 a, cf_i64 b, int& e) {
    if (b == 0) { e = 1; return 0; }
    if (b == -1) return 0;
    cf_i64 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
// Python's float divmod: the remainder takes the divisor's sign. b != 0.
CF_FN void cf_divmod_ff(double a, double b, double& floordiv, double& mod) {
    mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0)) { mod += b; div -= 1.0; }
    } else {
        mod = copysign(0.0, b);
    }
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, a / b);
    }
}
CF_FN double cf_floordiv_ff(double a, double b, int& e) {
    if (b == 0.0) { e = 1; return 0.0; }
    double q, m;
    cf_divmod_ff(a, b, q, m);
    return q;
}
CF_FN double cf_mod_ff(double a, double b, int& e) {
    if (b == 0.0) { e = 1; return 0.0; }
    double q, m;
    cf_divmod_ff(a, b, q, m);
    return m;
}
CF_FN double cf_pow_ff(double a, double b, int& e) {
    if (a == 0.0 && b < 0.0) { e = 1; return 0.0; }
    if (a < 0.0 && cf_isfinite(a) && cf_isfinite(b) && b != floor(b)) { e = 1; return 0.0; }
    const double r = pow(a, b);
    if (isinf(r) && cf_isfinite(a) && cf_isfinite(b)) e = 1;
    return r;
}
// base ** exp for exp >= 0, by squaring.
CF_FN cf_i64 cf_pow_ii(cf_i64 base, cf_i64 exp, int& e) {
    cf_i64 result = 1;
    int over = 0;
    while (true) {
        if (exp & 1) result = cf_mul_ii(result, base, over);
        exp >>= 1;
        if (exp == 0 || over) break;
        base = cf_mul_ii(base, base, over);
    }
    if (over) e = 1;
    return result;
}
CF_FN cf_i64 cf_neg_i(cf_i64 a, int& e) {
    if (a == CF_I64_MIN) { e = 1; return 0; }
    return -a;
}

// Three-way comparisons: -1, 0, 1, or 2 when a NaN leaves them unordered.
CF_FN int cf_cmp_ii(cf_i64 a, cf_i64 b) { return (b < a) - (a < b); }
CF_FN int cf_cmp_ff(double a, double b) {
    if (isnan(a) || isnan(b)) return 2;
    return (b < a) - (a < b);
}
// An int against a float, exact as in Python (2**53 + 1 > 2.0**53).
CF_FN int cf_cmp_if(cf_i64 i, double f) {
    if (isnan(f)) return 2;
    if (f >= CF_TWO63) return -1;
    if (f < -CF_TWO63) return 1;
    const double t = trunc(f);
    const cf_i64 ti = (cf_i64)t;
    int c = (ti < i) - (i < ti);
    if (c == 0) c = (f < t) - (t < f);
    return c;
}
CF_FN int cf_cmp_fi(double f, cf_i64 i) {
    const int c = cf_cmp_if(i, f);
    return c == 2 ? 2 : -c;
}
CF_FN bool cf_holds(int mask, int c) { return (mask >> (c + 1)) & 1; }

// A float to an int as Python's int() does: NaN, infinities and what does not fit fail.
CF_FN cf_i64 cf_float_to_int(double f, int& e) {
    if (isnan(f) || isinf(f)) { e = 1; return 0; }
    const double t = trunc(f);
    if (t < -CF_TWO63 || t >= CF_TWO63) { e = 1; return 0; }
    return (cf_i64)t;
}
CF_FN double cf_round_half_even(double f) {
    double r = floor(f);
    const double diff = f - r;
    if (diff > 0.5 || (diff == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
    return r;
}
// Python's math-module rules: NaN out of a non-NaN is a domain error, infinity out of a
// finite number a range error.
CF_FN double cf_math(double in, double out, int& e) {
    if (isnan(out) && !isnan(in)) e = 1;
    if (isinf(out) && cf_isfinite(in)) e = 1;
    return out;
}
CF_FN double cf_sqrt(double a, int& e) { return cf_math(a, sqrt(a), e); }
CF_FN double cf_exp(double a, int& e) { return cf_math(a, exp(a), e); }
CF_FN double cf_sin(double a, int& e) { return cf_math(a, sin(a), e); }
CF_FN double cf_cos(double a, int& e) { return cf_math(a, cos(a), e); }
CF_FN double cf_log(double a, int& e) {
    if (a <= 0.0) { e = 1; return 0.0; }
    return log(a);
}
CF_FN double cf_log2(double a, double base, int& e) {
    if (a <= 0.0 || base <= 0.0 || base == 1.0) { e = 1; return 0.0; }
    return log(a) / log(base);
}
CF_FN cf_i64 cf_abs_i(cf_i64 a, int& e) {
    if (a == CF_I64_MIN) { e = 1; return 0; }
    return a < 0 ? -a : a;
}
)CUDA";

}  // namespace chanflow::gpu
