// The expression language's public face: Expr compiles a source text once (parser.cpp to
// a syntax tree, evaluator.cpp to nodes) and evaluates it per message by the fastest path
// that applies:
//   1. the whole expression is a linear form over an int x with int constants (x * 3 + 1,
//      x % 2 == 0): a few instructions, no type tags;
//   2. its root is numeric: the numeric evaluator (numeric.hpp) over Num;
//   3. otherwise, or when 1 or 2 fail, the generic evaluator, which says why.
// Run-time errors are thrown as a bare ExprError("division by zero") from deep inside and
// decorated once, here, with the source text and the message x.
#include <memory>
#include <string>
#include <string_view>

#include "chanflow/expr.hpp"
#include "expr/evaluator.hpp"
#include "expr/parser.hpp"
#include "expr/values.hpp"

namespace chanflow {

namespace detail {
struct ExprProgram {
    std::string source;
    expr::Operand root;
    bool int_linear = false;       // root is a NumOperand::int_linear form
    bool int_linear_bool = false;  // ... ending in a comparison
};
}  // namespace detail

namespace {
using namespace expr;

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
    program->root = expr::build_evaluator(expr::parse(program->source));
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
    return expr::compare(a, b, expr::CmpOp::Lt);
}

}  // namespace chanflow
