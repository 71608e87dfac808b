// What the parser checks about names: that each one means something (x, a constant, a
// built-in function) and that a function gets as many arguments as it takes. A misspelt
// name gets the closest known one as a suggestion.
#pragma once

#include <cstddef>
#include <string_view>

#include "expr/ast.hpp"

namespace chanflow::expr {

/// Whether name is one of the language's keywords (and, or, not, if, else, in, is).
bool is_keyword(std::string_view name);
/// The value-like name at `offset` (x, true, None, ...) as a tree; throws ExprSyntaxError
/// for a function named without a call, or an unknown name.
Ast resolve_name(std::string_view name, std::size_t offset);
/// The built-in function called `name`; throws ExprSyntaxError when there is none.
const Builtin& resolve_function(std::string_view name, std::size_t offset);
/// Throws ExprSyntaxError when fn does not take `args` arguments.
void check_arity(const Builtin& fn, std::size_t args, std::size_t offset);

}  // namespace chanflow::expr
