#include "expr/lexer.hpp"

#include <charconv>
#include <string>

#include "expr/text.hpp"

namespace chanflow::expr {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || is_digit(c);
}

int hex_digit(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Lexer {
public:
    explicit Lexer(std::string_view src) : src_(src) {}

    std::vector<Token> run() {
        std::vector<Token> out;
        while (true) {
            while (pos_ < src_.size() && kWhitespace.find(src_[pos_]) != std::string_view::npos)
                ++pos_;
            Token t;
            t.pos = pos_;
            if (pos_ == src_.size()) {
                out.push_back(std::move(t));
                return out;
            }
            const char c = src_[pos_];
            if (is_digit(c) || (c == '.' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1])))
                number(t);
            else if (c == '"' || c == '\'')
                string(t);
            else if (is_name_start(c))
                name(t);
            else
                op(t);
            t.text = src_.substr(t.pos, pos_ - t.pos);
            out.push_back(std::move(t));
        }
    }

private:
    [[noreturn]] void error(const std::string& what, std::size_t at) const {
        throw ExprSyntaxError(what, at);
    }

    char at(std::size_t i) const { return i < src_.size() ? src_[i] : '\0'; }

    void digits(std::string& out) {
        while (is_digit(at(pos_)) || (at(pos_) == '_' && is_digit(at(pos_ + 1)))) {
            if (src_[pos_] != '_') out += src_[pos_];
            ++pos_;
        }
    }

    void number(Token& t) {
        std::string text;  // without underscores
        digits(text);
        bool is_float = false;
        if (at(pos_) == '.') {
            is_float = true;
            text += '.';
            ++pos_;
            digits(text);
        }
        const char e = at(pos_);
        if ((e == 'e' || e == 'E') &&
            (is_digit(at(pos_ + 1)) ||
             ((at(pos_ + 1) == '+' || at(pos_ + 1) == '-') && is_digit(at(pos_ + 2))))) {
            is_float = true;
            text += 'e';
            ++pos_;
            if (src_[pos_] == '+' || src_[pos_] == '-') text += src_[pos_++];
            digits(text);
        }
        if (is_float) {
            t.kind = Tok::Float;
            parse_float(text, t.f);
            return;
        }
        t.kind = Tok::Int;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), t.i);
        if (ec != std::errc() || ptr != text.data() + text.size())
            error("integer literal too large", t.pos);
    }

    void name(Token& t) {
        t.kind = Tok::Name;
        while (is_name_char(at(pos_))) ++pos_;
    }

    void string(Token& t) {
        t.kind = Tok::String;
        const char quote = src_[pos_++];
        while (true) {
            if (pos_ >= src_.size() || src_[pos_] == '\n') error("unterminated string", t.pos);
            const char c = src_[pos_++];
            if (c == quote) return;
            if (c != '\\') {
                t.str += c;
                continue;
            }
            escape(t.str);
        }
    }

    // Python's escapes; an unknown one keeps its backslash, as Python does.
    void escape(std::string& out) {
        const std::size_t start = pos_ - 1;
        if (pos_ >= src_.size()) error("unterminated string", start);
        const char c = src_[pos_++];
        switch (c) {
            case '\n':
                return;  // line continuation
            case '\\':
                out += '\\';
                return;
            case '\'':
                out += '\'';
                return;
            case '"':
                out += '"';
                return;
            case 'n':
                out += '\n';
                return;
            case 't':
                out += '\t';
                return;
            case 'r':
                out += '\r';
                return;
            case 'a':
                out += '\a';
                return;
            case 'b':
                out += '\b';
                return;
            case 'f':
                out += '\f';
                return;
            case 'v':
                out += '\v';
                return;
            case 'x':
                append_utf8(out, hex_escape(2, start));
                return;
            case 'u':
                append_utf8(out, hex_escape(4, start));
                return;
            case 'U':
                append_utf8(out, hex_escape(8, start));
                return;
            default:
                break;
        }
        if (c >= '0' && c <= '7') {
            unsigned v = static_cast<unsigned>(c - '0');
            for (int k = 0; k < 2 && at(pos_) >= '0' && at(pos_) <= '7'; ++k)
                v = v * 8 + static_cast<unsigned>(src_[pos_++] - '0');
            append_utf8(out, v);
            return;
        }
        out += '\\';
        out += c;
    }

    std::uint32_t hex_escape(int n, std::size_t start) {
        std::uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
            const int d = hex_digit(at(pos_));
            if (d < 0) error("invalid \\" + std::string(1, src_[start + 1]) + " escape", start);
            v = v * 16 + static_cast<std::uint32_t>(d);
            ++pos_;
        }
        if (v > 0x10FFFF) error("invalid \\U escape", start);
        return v;
    }

    void op(Token& t) {
        t.kind = Tok::Op;
        static constexpr std::string_view two[] = {"**", "//", "==", "!=", "<=", ">="};
        for (std::string_view o : two)
            if (src_.substr(pos_, 2) == o) {
                pos_ += 2;
                return;
            }
        const char c = src_[pos_];
        if (std::string_view("+-*/%<>()[]{},:.").find(c) != std::string_view::npos) {
            ++pos_;
            return;
        }
        // Anything else is an error; name the whole UTF-8 character, with a hint for the
        // usual slips from other languages.
        std::size_t end = pos_ + 1;
        while (end < src_.size() && is_continuation(static_cast<unsigned char>(src_[end]))) ++end;
        std::string what = "unexpected '" + std::string(src_.substr(pos_, end - pos_)) + "'";
        if (c == '=') what += " (did you mean '=='?)";
        if (c == '!') what += " (use 'not')";
        if (c == '&') what += " (use 'and')";
        if (c == '|') what += " (use 'or')";
        error(what, pos_);
    }

    std::string_view src_;
    std::size_t pos_ = 0;
};

}  // namespace

std::vector<Token> tokenize(std::string_view src) {
    return Lexer(src).run();
}

}  // namespace chanflow::expr
