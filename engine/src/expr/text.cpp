// UTF-8 and number syntax, as Python reads them.
#include "expr/text.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

namespace chanflow::expr {

std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += !is_continuation(c);
    return n;
}

/// Byte offset of code point i (0 <= i <= code_points(s)).
std::size_t byte_offset(std::string_view s, std::size_t i) {
    std::size_t pos = 0;
    for (; i > 0; --i) {
        ++pos;
        while (pos < s.size() && is_continuation(static_cast<unsigned char>(s[pos]))) ++pos;
    }
    return pos;
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string_view strip_view(std::string_view s, std::string_view chars) {
    const auto b = s.find_first_not_of(chars);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

namespace {

/// The power of ten of a decimal number's leading digit ("123.4" 2, "0.05e3" 1), for telling
/// an overflow from an underflow. Digits only, no sign.
long decimal_exponent(std::string_view s) {
    const std::size_t e = s.find_first_of("eE");
    long exp = 0;
    if (e != std::string_view::npos) {
        std::string_view digits = s.substr(e + 1);
        const bool neg = !digits.empty() && digits[0] == '-';
        if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
        // Beyond any double either way; kept small so that adding the place cannot overflow.
        if (std::from_chars(digits.data(), digits.data() + digits.size(), exp).ec != std::errc() ||
            exp > 1'000'000)
            exp = 1'000'000;
        if (neg) exp = -exp;
        s = s.substr(0, e);
    }
    const std::size_t dot = std::min(s.find('.'), s.size());
    const std::size_t first = s.find_first_not_of("0.");
    if (first == std::string_view::npos) return exp;  // zero never overflows anyway
    const long place =
        first < dot ? static_cast<long>(dot - first - 1) : -static_cast<long>(first - dot);
    return place + exp;
}

}  // namespace

/// Parses Python float syntax (and inf/nan), overflowing to inf like Python's float().
bool parse_float(std::string_view s, double& out) {
    bool neg = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.empty() || s[0] == '+' || s[0] == '-') return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ptr != s.data() + s.size()) return false;
    if (ec == std::errc::result_out_of_range) {
        out = decimal_exponent(s) >= 0 ? HUGE_VAL : 0.0;  // as Python: 1e999 is inf
    } else if (ec != std::errc()) {
        return false;
    }
    if (neg) out = -out;
    return true;
}

}  // namespace chanflow::expr
