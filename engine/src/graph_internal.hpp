// graph_internal.hpp — what the graph loader, checker and builder share (private).
//
// The public functions throw as soon as their own stage found a problem; load_plan instead
// runs both stages and reports the loader's and the checker's problems together, which is
// why the stages are also available here in a collecting form.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "chanflow/graph.hpp"

namespace chanflow::detail {

/// Names of processes, channels and parameters: [A-Za-z_][A-Za-z0-9_.-]*
inline bool is_valid_name(std::string_view s) noexcept {
    const auto alpha = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    };
    if (s.empty() || !alpha(s[0])) return false;
    for (char c : s.substr(1))
        if (!alpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-') return false;
    return true;
}
inline constexpr const char* kNameRule = "names match [A-Za-z_][A-Za-z0-9_.-]*";

/// " (did you mean 'x'?)", or "" when no candidate is close.
inline std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
    std::string best = closest_match(word, candidates);
    return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

/// How a value is shown in a message: numbers as written, strings quoted, else the type.
inline std::string describe(const Value& v) {
    if (v.is_string()) return "'" + std::string(v.as_string()) + "'";
    if (v.is_null() || v.is_bool() || v.is_int() || v.is_float()) return to_printed(v);
    return type_name(v.type());
}

/// Where character `offset` of an expression written as `written` stands in the file: the
/// value's column, past an opening quote, plus the offset (when the expression is written
/// on one line; else the value's position).
inline SourcePos position_in(const SpecValue& written, std::size_t offset) {
    SourcePos pos = written.pos;
    if (!written.value.is_string()) return pos;
    const std::string_view source = written.value.as_string();
    offset = std::min(offset, source.size());
    if (pos.line > 0 && source.find('\n') >= offset)
        pos.column += (written.quoted ? 1 : 0) + static_cast<int>(offset);
    return pos;
}

struct LoadResult {
    GraphSpec spec;
    std::vector<Diagnostic> diags;
    /// Nothing usable was read (unreadable file, YAML syntax error, not a mapping).
    bool fatal = false;
    /// Processes the loader could not read completely: checks that would only repeat the
    /// loader's complaint (missing parameter, unbound port) are skipped for them.
    std::unordered_set<std::string> damaged;
    /// Something that may hold channel ends was dropped (a damaged process, an unknown
    /// top-level key that may be a misspelt section): channel end counts prove nothing.
    bool partial = false;
};

LoadResult read_graph_text(std::string_view yaml, const std::string& file,
                           const Overrides& overrides);
LoadResult read_graph_file(const std::string& path, const Overrides& overrides);

struct CheckContext {
    const std::unordered_set<std::string>* damaged = nullptr;
    /// The loader dropped parts of the graph (LoadResult::partial): skip the checks of
    /// channel ends, whose counts could be wrong only because of what was dropped.
    bool lenient = false;
    chanflow::CheckOptions options;
};

/// Checks spec, appending every problem to diags; the plan is complete only when no
/// problem was found.
Plan check_graph_into(const GraphSpec& spec, std::vector<Diagnostic>& diags,
                      const CheckContext& context = {});

/// Rewrites each replicated `ordered: true` process into lanes and a merge process
/// (ordered_fanout.cpp); the plan must be free of errors.
void expand_ordered_fanout(Plan& plan);
/// The node type of those merge processes (not in the registry).
const NodeType& ordered_merge_type();

/// Orders diagnostics by position (those without one first), keeping equal ones in order.
void sort_diagnostics(std::vector<Diagnostic>& diags);

}  // namespace chanflow::detail
