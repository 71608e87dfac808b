// chanflow/expr.hpp — the Python-flavoured expression language of docs/expressions.md.
//
// An expression is parsed once into a compiled evaluator and then applied per message:
//
//   chanflow::Expr e = chanflow::Expr::compile("x * 2 + 1");
//   chanflow::Value y = e(chanflow::Value(20));   // 41
//
// Syntax errors throw ExprSyntaxError with the 0-based offset of the offending character in
// the source text; run-time errors (division by zero, a missing field, a type mismatch)
// throw ExprError whose message names the expression and the offending value.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "chanflow/value.hpp"

namespace chanflow {

class ExprSyntaxError : public std::runtime_error {
public:
    ExprSyntaxError(const std::string& what, std::size_t offset)
        : std::runtime_error(what), offset_(offset) {}
    /// 0-based offset into the expression text of the offending character.
    std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t offset_;
};

class ExprError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
struct ExprProgram;  // the compiled form, private to the evaluator
}

/// A compiled expression over the message `x`. Cheap to copy (shares the program);
/// safe to evaluate from several threads at once.
class Expr {
public:
    Expr() = default;
    static Expr compile(std::string_view source);

    /// Evaluates with x bound to the message.
    Value operator()(const Value& x) const;

    const std::string& source() const noexcept;
    explicit operator bool() const noexcept { return program_ != nullptr; }

private:
    std::shared_ptr<const detail::ExprProgram> program_;
};

/// Python truthiness: false for null, false, 0, 0.0, "", empty bytes/list/record.
bool truthy(const Value& v) noexcept;

/// Python ordering (`<`) between two values; throws ExprError when Python could not order
/// them (e.g. a string and an int). Lists compare lexicographically.
bool less_than(const Value& a, const Value& b);

}  // namespace chanflow
