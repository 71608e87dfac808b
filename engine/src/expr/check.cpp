#include "expr/check.hpp"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

namespace chanflow::expr {
namespace {

/// Edit distance counting a swap of neighbours as one edit (ture -> true).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t w = b.size() + 1;
    std::vector<std::size_t> d((a.size() + 1) * w);
    for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t v = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1,
                                      d[(i - 1) * w + j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                v = std::min(v, d[(i - 2) * w + j - 2] + 1);
            d[i * w + j] = v;
        }
    return d.back();
}

/// " (did you mean 'sqrt'?)" for a close misspelling of one of the candidates, else "".
template <class Names>
std::string suggestion(std::string_view name, const Names& candidates) {
    if (name.size() < 3) return "";
    const std::size_t limit = name.size() <= 4 ? 1 : 2;
    std::string_view best;
    std::size_t best_d = limit + 1;
    for (std::string_view c : candidates) {
        const std::size_t d = edit_distance(name, c);
        if (d < best_d) {
            best = c;
            best_d = d;
        }
    }
    return best.empty() ? "" : " (did you mean '" + std::string(best) + "'?)";
}

}  // namespace

bool is_keyword(std::string_view name) {
    static constexpr std::string_view keywords[] = {"and", "or", "not", "if", "else", "in", "is"};
    return std::find(std::begin(keywords), std::end(keywords), name) != std::end(keywords);
}

Ast resolve_name(std::string_view name, std::size_t offset) {
    if (name == "x") return Ast::of(Ast::Kind::Message, offset);
    if (name == "true" || name == "True") return Ast::constant(Value(true), offset);
    if (name == "false" || name == "False") return Ast::constant(Value(false), offset);
    if (name == "null" || name == "None") return Ast::constant(Value(), offset);
    if (find_builtin(name))
        throw ExprSyntaxError("function '" + std::string(name) + "' must be called", offset);
    static constexpr std::string_view names[] = {"x",    "true",  "false", "null",
                                                 "True", "False", "None"};
    throw ExprSyntaxError("unknown name '" + std::string(name) + "'" + suggestion(name, names),
                          offset);
}

const Builtin& resolve_function(std::string_view name, std::size_t offset) {
    if (const Builtin* fn = find_builtin(name)) return *fn;
    std::vector<std::string_view> names;
    for (const Builtin& b : builtins()) names.push_back(b.name);
    throw ExprSyntaxError("unknown function '" + std::string(name) + "'" + suggestion(name, names),
                          offset);
}

void check_arity(const Builtin& fn, std::size_t args, std::size_t offset) {
    if (args >= fn.min_args && args <= fn.max_args) return;
    std::string s = "function '" + std::string(fn.name) + "' takes ";
    if (fn.max_args == kVariadic)
        s += "at least " + std::to_string(fn.min_args);
    else if (fn.max_args == fn.min_args)
        s += std::to_string(fn.min_args);
    else
        s += std::to_string(fn.min_args) + " or " + std::to_string(fn.max_args);
    const bool one = fn.min_args == 1 && (fn.max_args == 1 || fn.max_args == kVariadic);
    throw ExprSyntaxError(s + (one ? " argument" : " arguments"), offset);
}

}  // namespace chanflow::expr
