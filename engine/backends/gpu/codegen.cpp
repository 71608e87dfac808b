// codegen.cpp — CUDA C from expression trees. Each node of the tree becomes one statement
// that declares a temporary; `and`, `or`, conditionals and comparison chains become if
// blocks, so that what Python would not evaluate is not evaluated here either (and cannot
// fail). The tree's depth is bounded by the parser (kMaxDepth), so the walk may recurse.
#include "codegen.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace chanflow::gpu {

using expr::Ast;
using expr::BinOp;
using expr::CmpOp;
using expr::UnOp;
using K = expr::Ast::Kind;

const char* elem_type_name(ElemType t) noexcept {
    switch (t) {
        case ElemType::Bool:
            return "bool";
        case ElemType::Int:
            return "int";
        case ElemType::Float:
            return "float";
    }
    return "?";
}

const char* elem_c_type(ElemType t) noexcept {
    switch (t) {
        case ElemType::Bool:
            return "unsigned char";
        case ElemType::Int:
            return "long long";
        case ElemType::Float:
            return "double";
    }
    return "?";
}

namespace {

const char* local_type(ElemType t) {
    return t == ElemType::Bool ? "bool" : elem_c_type(t);
}

struct Val {
    std::string name;
    ElemType type;
};

std::string float_literal(double d) {
    unsigned long long bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    return "cf_f64(" + std::to_string(bits) + "ULL)";
}

std::string int_literal(std::int64_t i) {
    if (i == std::numeric_limits<std::int64_t>::min()) return "CF_I64_MIN";
    return std::to_string(i) + "LL";
}

// An int written as a constant (-1 is a negation of one), or nothing.
std::optional<std::int64_t> constant_int(const Ast& a) {
    if (a.kind == K::Constant && (a.value.is_int() || a.value.is_bool()))
        return a.value.is_int() ? a.value.as_int() : std::int64_t{a.value.as_bool()};
    if (a.kind == K::Unary && a.unary != UnOp::Not)
        if (const auto v = constant_int(a.kids[0]))
            if (*v != std::numeric_limits<std::int64_t>::min())
                return a.unary == UnOp::Neg ? -*v : *v;
    return std::nullopt;
}

class Generator {
public:
    explicit Generator(int indent) : indent_(indent) {}

    /// The statements that compute `a` with x bound to `x`; returns the temporary.
    Val emit(const Ast& a, const Val& x) {
        switch (a.kind) {
            case K::Constant:
                return constant(a);
            case K::Message:
                return x;
            case K::Unary:
                return unary(a, x);
            case K::Binary:
                return binary(a, x);
            case K::Compare:
                return compare(a, x);
            case K::And:
            case K::Or:
                return logic(a, x);
            case K::Conditional:
                return conditional(a, x);
            case K::Call:
                return call(a, x);
            case K::Index:
            case K::Slice:
                throw GpuUnsupported("indexing has no GPU form", a.offset);
            case K::Field:
                throw GpuUnsupported("fields have no GPU form (the GPU sees numbers)", a.offset);
            case K::List:
            case K::Record:
                throw GpuUnsupported("lists and records have no GPU form", a.offset);
        }
        throw GpuUnsupported("this has no GPU form", a.offset);
    }

    std::string code;

private:
    Val fresh(ElemType t, const std::string& value) {
        Val v{"t" + std::to_string(next_++), t};
        line(std::string(local_type(t)) + " " + v.name + " = " + value + ";");
        return v;
    }
    Val declare(ElemType t) {
        Val v{"t" + std::to_string(next_++), t};
        line(std::string(local_type(t)) + " " + v.name + ";");
        return v;
    }
    void line(const std::string& s) { code += std::string(indent_ * 4, ' ') + s + "\n"; }
    // The statements of `a`, one level in, kept apart: a branch whose type decides whether
    // it may be placed at all. Every part is emitted once, so the work is linear in the tree.
    std::pair<Val, std::string> emit_block(const Ast& a, const Val& x) {
        std::string outer = std::move(code);
        code.clear();
        ++indent_;
        const Val v = emit(a, x);
        --indent_;
        return {v, std::exchange(code, std::move(outer))};
    }
    void open(const std::string& s) {
        line(s + " {");
        ++indent_;
    }
    void close(const std::string& tail = "}") {
        --indent_;
        line(tail);
    }

    static std::string truthy(const Val& v) {
        switch (v.type) {
            case ElemType::Bool:
                return v.name;
            case ElemType::Int:
                return "cf_truthy_i(" + v.name + ")";
            case ElemType::Float:
                return "cf_truthy_f(" + v.name + ")";
        }
        return v.name;
    }
    // A bool counts as an int in arithmetic.
    static std::string as_int(const Val& v) {
        return v.type == ElemType::Bool ? "(cf_i64)" + v.name : v.name;
    }
    static std::string as_float(const Val& v) {
        return v.type == ElemType::Float ? v.name : "(double)" + v.name;
    }

    Val constant(const Ast& a) {
        const Value& v = a.value;
        if (v.is_bool()) return fresh(ElemType::Bool, v.as_bool() ? "true" : "false");
        if (v.is_int()) return fresh(ElemType::Int, int_literal(v.as_int()));
        if (v.is_float()) return fresh(ElemType::Float, float_literal(v.as_float()));
        throw GpuUnsupported(std::string(type_name(v.type())) + " values have no GPU form",
                             a.offset);
    }

    Val unary(const Ast& a, const Val& x) {
        const Val v = emit(a.kids[0], x);
        switch (a.unary) {
            case UnOp::Not:
                return fresh(ElemType::Bool, "!" + truthy(v));
            case UnOp::Pos:
                return v.type == ElemType::Bool ? fresh(ElemType::Int, as_int(v)) : v;
            case UnOp::Neg:
                if (v.type == ElemType::Float) return fresh(ElemType::Float, "-" + v.name);
                return fresh(ElemType::Int, "cf_neg_i(" + as_int(v) + ", e)");
        }
        return v;
    }

    Val binary(const Ast& a, const Val& x) {
        const Val l = emit(a.kids[0], x);
        const Val r = emit(a.kids[1], x);
        const bool floats = l.type == ElemType::Float || r.type == ElemType::Float;
        if (floats) {
            const std::string lf = as_float(l), rf = as_float(r);
            switch (a.binary) {
                case BinOp::Add:
                    return fresh(ElemType::Float, lf + " + " + rf);
                case BinOp::Sub:
                    return fresh(ElemType::Float, lf + " - " + rf);
                case BinOp::Mul:
                    return fresh(ElemType::Float, lf + " * " + rf);
                case BinOp::Div:
                    return fresh(ElemType::Float, "cf_div_ff(" + lf + ", " + rf + ", e)");
                case BinOp::FloorDiv:
                    return fresh(ElemType::Float, "cf_floordiv_ff(" + lf + ", " + rf + ", e)");
                case BinOp::Mod:
                    return fresh(ElemType::Float, "cf_mod_ff(" + lf + ", " + rf + ", e)");
                case BinOp::Pow:
                    return fresh(ElemType::Float, "cf_pow_ff(" + lf + ", " + rf + ", e)");
            }
        }
        const std::string li = as_int(l), ri = as_int(r);
        switch (a.binary) {
            case BinOp::Add:
                return fresh(ElemType::Int, "cf_add_ii(" + li + ", " + ri + ", e)");
            case BinOp::Sub:
                return fresh(ElemType::Int, "cf_sub_ii(" + li + ", " + ri + ", e)");
            case BinOp::Mul:
                return fresh(ElemType::Int, "cf_mul_ii(" + li + ", " + ri + ", e)");
            case BinOp::Div:
                return fresh(ElemType::Float,
                             "cf_div_ff(" + as_float(l) + ", " + as_float(r) + ", e)");
            case BinOp::FloorDiv:
                return fresh(ElemType::Int, "cf_floordiv_ii(" + li + ", " + ri + ", e)");
            case BinOp::Mod:
                return fresh(ElemType::Int, "cf_mod_ii(" + li + ", " + ri + ", e)");
            case BinOp::Pow:
                break;
        }
        // int ** int is an int for an exponent >= 0 and a float below: the exponent must be
        // a constant for the type to be known.
        const auto exponent = constant_int(a.kids[1]);
        if (!exponent)
            throw GpuUnsupported(
                "int ** int is an int or a float depending on the exponent's sign; on a GPU the "
                "exponent must be a constant (or write float(...) ** ...)",
                a.offset);
        if (*exponent >= 0) return fresh(ElemType::Int, "cf_pow_ii(" + li + ", " + ri + ", e)");
        return fresh(ElemType::Float, "cf_pow_ff(" + as_float(l) + ", " + as_float(r) + ", e)");
    }

    std::string three_way(const Val& l, const Val& r) {
        const bool lf = l.type == ElemType::Float, rf = r.type == ElemType::Float;
        if (lf && rf) return "cf_cmp_ff(" + l.name + ", " + r.name + ")";
        if (lf) return "cf_cmp_fi(" + l.name + ", " + as_int(r) + ")";
        if (rf) return "cf_cmp_if(" + as_int(l) + ", " + r.name + ")";
        return "cf_cmp_ii(" + as_int(l) + ", " + as_int(r) + ")";
    }

    // a < b < c: b is evaluated once, and c only when a < b holds.
    Val compare(const Ast& a, const Val& x) {
        for (const auto& link : a.links)
            if (link.rel != expr::Rel::Cmp)
                throw GpuUnsupported("'in' and 'is' have no GPU form", a.offset);
        const Val result = declare(ElemType::Bool);
        Val left = emit(a.kids[0], x);
        int depth = 0;
        for (std::size_t i = 0; i < a.links.size(); ++i) {
            const Val right = emit(a.kids[i + 1], x);
            line(result.name + " = cf_holds(" + std::to_string(expr::cmp_mask(a.links[i].op)) +
                 ", " + three_way(left, right) + ");");
            if (i + 1 < a.links.size()) {
                open("if (" + result.name + ")");
                ++depth;
            }
            left = right;
        }
        while (depth-- > 0) close();
        return result;
    }

    // Python's: `a and b` is a when a is false, else b; both must have one type here.
    Val logic(const Ast& a, const Val& x) {
        const bool is_and = a.kind == K::And;
        const Val l = emit(a.kids[0], x);
        const auto [r, block] = emit_block(a.kids[1], x);
        const ElemType rt = r.type;
        if (rt != l.type)
            throw GpuUnsupported(std::string("'") + (is_and ? "and" : "or") + "' of " +
                                     elem_type_name(l.type) + " and " + elem_type_name(rt) +
                                     " has one type or the other depending on the values; on "
                                     "a GPU both sides must have one type",
                                 a.offset);
        const Val result = fresh(l.type, l.name);
        open(std::string("if (") + (is_and ? "" : "!") + truthy(l) + ")");
        code += block;
        line(result.name + " = " + r.name + ";");
        close();
        return result;
    }

    Val conditional(const Ast& a, const Val& x) {
        const Val c = emit(a.kids[0], x);
        const auto [then_v, then_code] = emit_block(a.kids[1], x);
        const auto [else_v, else_code] = emit_block(a.kids[2], x);
        const ElemType then_t = then_v.type, else_t = else_v.type;
        if (then_t != else_t)
            throw GpuUnsupported(std::string("this conditional is an ") + elem_type_name(then_t) +
                                     " or a " + elem_type_name(else_t) +
                                     " depending on the condition; on a GPU both branches "
                                     "must have one type (float(...) makes a float)",
                                 a.offset);
        const Val result = declare(then_t);
        open("if (" + truthy(c) + ")");
        code += then_code;
        line(result.name + " = " + then_v.name + ";");
        close("} else {");
        ++indent_;
        code += else_code;
        line(result.name + " = " + else_v.name + ";");
        close();
        return result;
    }

    Val call(const Ast& a, const Val& x) {
        const std::string name(a.fn->name);
        static const char* const kOnGpu[] = {"sqrt",  "exp",   "sin", "cos", "log",
                                             "float", "bool",  "abs", "int", "floor",
                                             "ceil",  "round", "min", "max"};
        if (std::find(std::begin(kOnGpu), std::end(kOnGpu), name) == std::end(kOnGpu) ||
            (name == "round" && a.kids.size() > 1) ||
            ((name == "min" || name == "max") && a.kids.size() < 2))
            throw GpuUnsupported(name + "(" + (a.kids.empty() ? "" : "...") + ") has no GPU form",
                                 a.offset);
        std::vector<Val> args;
        for (const Ast& k : a.kids) args.push_back(emit(k, x));
        const auto one_float = [&](const char* fn) {
            return fresh(ElemType::Float, std::string(fn) + "(" + as_float(args[0]) + ", e)");
        };
        if (name == "sqrt" || name == "exp" || name == "sin" || name == "cos")
            return one_float(("cf_" + name).c_str());
        if (name == "log")
            return args.size() == 1 ? one_float("cf_log")
                                    : fresh(ElemType::Float, "cf_log2(" + as_float(args[0]) + ", " +
                                                                 as_float(args[1]) + ", e)");
        if (name == "float") return fresh(ElemType::Float, as_float(args[0]));
        if (name == "bool") return fresh(ElemType::Bool, truthy(args[0]));
        const bool f = args[0].type == ElemType::Float;
        if (name == "abs")
            return f ? fresh(ElemType::Float, "fabs(" + args[0].name + ")")
                     : fresh(ElemType::Int, "cf_abs_i(" + as_int(args[0]) + ", e)");
        if (name == "int" || name == "floor" || name == "ceil" ||
            (name == "round" && args.size() == 1)) {
            if (!f) return fresh(ElemType::Int, as_int(args[0]));
            const std::string v = name == "int"     ? args[0].name
                                  : name == "round" ? "cf_round_half_even(" + args[0].name + ")"
                                                    : name + "(" + args[0].name + ")";
            return fresh(ElemType::Int, "cf_float_to_int(" + v + ", e)");
        }
        if ((name == "min" || name == "max") && args.size() >= 2) {
            for (const Val& v : args)
                if (v.type != args[0].type)
                    throw GpuUnsupported(name +
                                             "() of an int and a float is the one or the other "
                                             "depending on the values; on a GPU its arguments "
                                             "must have one type (write 0.0, or float(...))",
                                         a.offset);
            const Val best = fresh(args[0].type, args[0].name);
            const int mask = cmp_mask(name == "min" ? CmpOp::Lt : CmpOp::Gt);
            for (std::size_t i = 1; i < args.size(); ++i)
                line("if (cf_holds(" + std::to_string(mask) + ", " + three_way(args[i], best) +
                     ")) " + best.name + " = " + args[i].name + ";");
            return best;
        }
        throw GpuUnsupported(name + "(" + (a.kids.empty() ? "" : "...") + ") has no GPU form",
                             a.offset);
    }

    int indent_;
    int next_ = 0;
};

// The grid-stride loop every element-wise kernel runs.
constexpr const char* kLoop =
    "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
    "         i += (long long)gridDim.x * blockDim.x) {\n"
    "        int e = 0;\n";

}  // namespace

ElemType result_type(const expr::Ast& ast, ElemType in) {
    Generator g(0);  // the statements are thrown away: only the type counts
    return g.emit(ast, {"x", in}).type;
}

Kernel map_kernel(const std::vector<const expr::Ast*>& stages, ElemType in,
                  const std::string& entry, std::size_t* stage) {
    Generator g(2);
    Val x{"x", in};
    for (std::size_t s = 0; s < stages.size(); ++s) {
        try {
            x = g.emit(*stages[s], x);
        } catch (const GpuUnsupported&) {
            if (stage) *stage = s;
            throw;
        }
    }
    Kernel k;
    k.entry = entry;
    k.out = x.type;
    k.source = std::string("CF_KERNEL void ") + entry + "(const " + elem_c_type(in) +
               "* __restrict__ in, " + elem_c_type(x.type) +
               "* __restrict__ out, long long n,\n        unsigned long long* first_failure) {\n" +
               kLoop + "        const " + local_type(in) + " x = in[i];\n" + g.code +
               "        out[i] = " + x.name + ";\n" +
               "        if (e) cf_fail_at(first_failure, i);\n    }\n}\n";
    return k;
}

Kernel filter_kernel(const expr::Ast& condition, ElemType in, const std::string& entry) {
    Generator g(2);
    const Val c = g.emit(condition, {"x", in});
    std::string truth = c.name;
    if (c.type == ElemType::Int) truth = "cf_truthy_i(" + c.name + ")";
    if (c.type == ElemType::Float) truth = "cf_truthy_f(" + c.name + ")";
    Kernel k;
    k.entry = entry;
    k.out = ElemType::Bool;
    k.source = std::string("CF_KERNEL void ") + entry + "(const " + elem_c_type(in) +
               "* __restrict__ in, unsigned char* __restrict__ keep, long long n,\n"
               "        unsigned long long* first_failure) {\n" +
               kLoop + "        const " + local_type(in) + " x = in[i];\n" + g.code +
               "        keep[i] = " + truth + " ? 1 : 0;\n" +
               "        if (e) cf_fail_at(first_failure, i);\n    }\n}\n";
    return k;
}

Kernel reduce_kernel(ReduceOp op, const expr::Ast* pre, ElemType in, const std::string& entry) {
    Generator g(2);
    Val v{"x", in};
    if (pre) v = g.emit(*pre, v);
    // Bools add up as ints, as on the CPU.
    const ElemType acc =
        v.type == ElemType::Bool && (op == ReduceOp::Sum || op == ReduceOp::Product) ? ElemType::Int
                                                                                     : v.type;
    const std::string a = elem_c_type(acc);
    std::string combine;  // of locals r and o; an int overflow sets ov
    switch (op) {
        case ReduceOp::Sum:
            combine = acc == ElemType::Float ? "r + o" : "cf_add_ii(r, o, ov)";
            break;
        case ReduceOp::Product:
            combine = acc == ElemType::Float ? "r * o" : "cf_mul_ii(r, o, ov)";
            break;
        case ReduceOp::Min:
        case ReduceOp::Max:
            combine = "cf_holds(" +
                      std::to_string(expr::cmp_mask(op == ReduceOp::Min ? CmpOp::Lt : CmpOp::Gt)) +
                      ", " + (acc == ElemType::Float ? "cf_cmp_ff(o, r)" : "cf_cmp_ii(o, r)") +
                      ") ? o : r";
            break;
    }
    const std::string block = std::to_string(kReduceBlock);
    const std::string step =
        "        if (have) {\n            const " + a + " r = acc, o = v;\n" +
        "            acc = " + combine +
        ";\n        } else {\n            acc = v;\n            have = true;\n" + "        }\n";
    // Both passes end alike: the block's threads combine in a fixed tree order.
    const std::string tree =
        "    s_acc[threadIdx.x] = acc;\n    s_has[threadIdx.x] = have;\n    __syncthreads();\n"
        "    for (int half = blockDim.x / 2; half > 0; half /= 2) {\n"
        "        if ((int)threadIdx.x < half && s_has[threadIdx.x + half]) {\n"
        "            const " +
        a +
        " r = s_acc[threadIdx.x], o = s_acc[threadIdx.x + half];\n"
        "            s_acc[threadIdx.x] = s_has[threadIdx.x] ? (" +
        combine +
        ") : o;\n"
        "            s_has[threadIdx.x] = 1;\n"
        "        }\n"
        "        __syncthreads();\n"
        "    }\n"
        "    if (ov) cf_fail_at(first_failure, CF_COMBINE_FAILED);\n"
        "    if (threadIdx.x == 0) {\n        partial[blockIdx.x] = s_acc[0];\n"
        "        has[blockIdx.x] = s_has[0];\n    }\n}\n";
    const std::string head =
        "    __shared__ " + a + " s_acc[" + block + "];\n    __shared__ unsigned char s_has[" +
        block + "];\n    " + a + " acc = 0;\n    bool have = false;\n    int ov = 0;\n" +
        "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n" +
        "         i += (long long)gridDim.x * blockDim.x) {\n";
    Kernel k;
    k.entry = entry;
    k.out = acc;
    k.source =
        std::string("CF_KERNEL void ") + entry + "(const " + elem_c_type(in) +
        "* __restrict__ in, long long n, " + a +
        "* __restrict__ partial,\n        unsigned char* has, unsigned long long* "
        "first_failure) {\n" +
        head + "        int e = 0;\n        const " + local_type(in) + " x = in[i];\n" + g.code +
        "        const " + a + " v = " + v.name + ";\n" +
        "        if (e) cf_fail_at(first_failure, i);\n" + step + "    }\n" + tree +
        "CF_KERNEL void " + entry + "_partials(const " + a +
        "* __restrict__ in, const unsigned char* __restrict__ in_has, long long n,\n        " + a +
        "* __restrict__ partial, unsigned char* has, unsigned long long* first_failure) {\n" +
        head + "        if (!in_has[i]) continue;\n        const " + a + " v = in[i];\n" + step +
        "    }\n" + tree;
    return k;
}

}  // namespace chanflow::gpu
