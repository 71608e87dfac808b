// The expression language's tokens: numbers, strings, names and operators, each with its
// offset in the source for error messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "expr/common.hpp"

namespace chanflow::expr {

enum class Tok : std::uint8_t { End, Int, Float, String, Name, Op };

struct Token {
    Tok kind = Tok::End;
    std::size_t pos = 0;
    std::string_view text;  // the source characters
    std::string str;        // a string literal's decoded value
    i64 i = 0;
    double f = 0.0;
};

/// The tokens of src, ending with one Tok::End; throws ExprSyntaxError at the first
/// character that starts no token.
std::vector<Token> tokenize(std::string_view src);

}  // namespace chanflow::expr
