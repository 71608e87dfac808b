// The built-in functions an expression may call: abs, min, max, sqrt, ... (see
// docs/expressions.md for the list and what each does).
#pragma once

#include <cstddef>
#include <limits>
#include <span>
#include <string_view>

#include "expr/num.hpp"

namespace chanflow::expr {

using BuiltinFn = Value (*)(const Value* args, std::size_t n);
/// The numeric form of a one-argument function, for the numeric evaluator.
using NumFn = Num (*)(Num);

constexpr std::size_t kVariadic = std::numeric_limits<std::size_t>::max();

struct Builtin {
    std::string_view name;
    std::size_t min_args, max_args;
    BuiltinFn fn;
    NumFn num = nullptr;  // the one-argument form on numbers, where there is one
};

/// The function called `name`, or null.
const Builtin* find_builtin(std::string_view name);
/// Every built-in function, in a fixed order.
std::span<const Builtin> builtins();

}  // namespace chanflow::expr
