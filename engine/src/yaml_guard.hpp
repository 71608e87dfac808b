// yaml_guard.hpp — how chanflow reads YAML text that comes from outside (a graph file, a
// --set value), with limits on what the text can make the loader do.
//
// yaml-cpp shares an aliased node instead of copying it, but whoever walks the tree walks
// every alias again: a few hundred bytes of nested aliases expand into billions of values.
// A text with anchors is therefore counted first, as if every alias were a copy, in one pass
// over yaml-cpp's events (time and memory in proportion to the text); a text without anchors
// has no aliases and skips that pass. Nesting is bounded by yaml-cpp's own parser, and a text
// holds one document (a second one would otherwise be dropped without a word).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace chanflow::detail {

/// Aliases may add at most this many nodes (scalars and collections) to a text.
inline constexpr std::size_t kMaxAliasExpansion = 1'000'000;

/// What is wrong with a YAML text, and where (1-based; line 0 when it has no place).
struct YamlProblem {
    std::string message;
    int line = 0;
    int column = 0;
    bool syntax = false;  // the text is not YAML (else: a limit, a second document)
};

/// The one document of a YAML text, or what is wrong with the text: a syntax error,
/// nesting deeper than the parser follows, aliases that expand beyond kMaxAliasExpansion,
/// or a second document.
struct YamlDocument {
    YAML::Node root;
    std::optional<YamlProblem> problem;
};
YamlDocument read_yaml(std::string_view text);

}  // namespace chanflow::detail
