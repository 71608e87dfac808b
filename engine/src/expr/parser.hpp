// The expression language's grammar, Python's for expressions: a recursive-descent parser
// from tokens to the syntax tree. Nesting deeper than kMaxDepth is a syntax error, so no
// input can exhaust the stack here or in any later walk over the tree.
#pragma once

#include <string_view>

#include "expr/ast.hpp"

namespace chanflow::expr {

/// The tree of `source`; throws ExprSyntaxError with the offset of the first error.
Ast parse(std::string_view source);

}  // namespace chanflow::expr
