// Strings are UTF-8; len and indexing count code points, as Python does. Number syntax is
// Python's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chanflow::expr {

constexpr std::string_view kWhitespace = " \t\n\r\f\v";

inline bool is_continuation(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

std::size_t code_points(std::string_view s);
/// Byte offset of code point i (0 <= i <= code_points(s)).
std::size_t byte_offset(std::string_view s, std::size_t i);
void append_utf8(std::string& out, std::uint32_t cp);
std::string_view strip_view(std::string_view s, std::string_view chars = kWhitespace);
/// Parses Python float syntax (and inf/nan), overflowing to inf like Python's float().
bool parse_float(std::string_view s, double& out);

}  // namespace chanflow::expr
