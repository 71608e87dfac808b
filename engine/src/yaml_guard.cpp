// yaml_guard.cpp — nesting, alias expansion and documents of a YAML text (yaml_guard.hpp).
#include "yaml_guard.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <vector>

namespace chanflow::detail {
namespace {

// Thrown from an event to stop the parse at the first problem.
struct Stop {
    YamlProblem problem;
};

YamlProblem problem_at(const YAML::Mark& m, std::string message) {
    YamlProblem p;
    p.message = std::move(message);
    if (m.line >= 0) {
        p.line = m.line + 1;
        p.column = m.column + 1;
    }
    return p;
}

// Counts nodes as they would be if every alias were a copy of its anchor's node.
class Counter final : public YAML::EventHandler {
public:
    explicit Counter(std::string_view text) : text_(text) {}

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor); }
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  const std::string&) override {
        leaf(anchor);
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        const auto it = sizes_.find(anchor);
        // An alias of a collection that is still open (a cycle) cannot be expanded at all.
        const std::size_t size = it == sizes_.end() ? kMaxAliasExpansion + 1 : it->second;
        added_ += size;
        nodes_ += size;
        if (added_ > kMaxAliasExpansion)
            throw Stop{problem_at(mark, "alias '" + alias_name(mark) +
                                            "' takes what aliases repeat past " +
                                            std::to_string(kMaxAliasExpansion) + " values")};
    }
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        open(anchor);
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        open(anchor);
    }
    void OnMapEnd() override { close(); }

private:
    struct Open {
        YAML::anchor_t anchor;
        std::size_t nodes_before;
    };

    void leaf(YAML::anchor_t anchor) {
        ++nodes_;
        if (anchor != YAML::NullAnchor) sizes_[anchor] = 1;
    }
    void open(YAML::anchor_t anchor) {
        open_.push_back({anchor, nodes_});
        ++nodes_;
    }
    void close() {
        const Open o = open_.back();
        open_.pop_back();
        if (o.anchor != YAML::NullAnchor) sizes_[o.anchor] = nodes_ - o.nodes_before;
    }
    // "*name" at the alias's place in the text.
    std::string alias_name(const YAML::Mark& mark) const {
        if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text_.size()) return "?";
        std::string_view s = text_.substr(static_cast<std::size_t>(mark.pos));
        const std::size_t end = s.find_first_of(" \t\r\n,[]{}");
        return std::string(s.substr(0, std::min<std::size_t>(end, 64)));
    }

    std::string_view text_;
    std::vector<Open> open_;
    std::unordered_map<YAML::anchor_t, std::size_t> sizes_;  // expanded nodes of each anchor
    std::size_t nodes_ = 0;                                  // expanded nodes so far
    std::size_t added_ = 0;                                  // of those, through aliases
};

// The first alias that takes the text past kMaxAliasExpansion, if any.
std::optional<YamlProblem> check_aliases(std::string_view text) {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    Counter counter(text);
    try {
        parser.HandleNextDocument(counter);  // a second document is refused anyway
    } catch (const Stop& s) {
        return s.problem;
    } catch (const YAML::Exception&) {
        // Syntax errors are reported by the load that follows, the same with or without
        // anchors.
    }
    return std::nullopt;
}

bool blank_or_comment(std::string_view line) {
    const std::size_t first = line.find_first_not_of(" \t");
    return first == std::string_view::npos || line[first] == '#';
}

// The line (1-based) where a second document starts, or 0. A document marker ("---" or
// "...") stands at the start of a line and means nothing else there, whatever the document
// holds, so a look at the lines finds it. (yaml-cpp's LoadAll could be asked instead, but
// it loops for ever on some malformed texts, such as a lone ",".)
int second_document_line(std::string_view text) {
    bool content = false, ended = false;
    int line = 0;
    for (std::size_t at = 0; at < text.size();) {
        ++line;
        const std::size_t end = std::min(text.find('\n', at), text.size());
        std::string_view l = text.substr(at, end - at);
        at = end + 1;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        const auto marker = [&l](std::string_view m) {
            return l.substr(0, 3) == m && (l.size() == 3 || l[3] == ' ' || l[3] == '\t');
        };
        if (marker("---")) {
            if (content || ended) return line;
            content = !blank_or_comment(l.substr(3));
        } else if (marker("...")) {
            ended = ended || content;
        } else if (!blank_or_comment(l) && !(l[0] == '%' && !content && !ended)) {
            if (ended) return line;
            content = true;
        }
    }
    return 0;
}

}  // namespace

YamlDocument read_yaml(std::string_view text) {
    YamlDocument doc;
    if (const int line = second_document_line(text); line > 0) {
        doc.problem = YamlProblem{"a second YAML document ('---'): only one is read", line, 1};
        return doc;
    }
    if (text.find('&') != std::string_view::npos) {  // no anchor, no alias
        doc.problem = check_aliases(text);
        if (doc.problem) return doc;
    }
    try {
        doc.root = YAML::Load(std::string(text));
    } catch (const YAML::DeepRecursion& e) {
        doc.problem = problem_at(e.mark, "lists and mappings nested too deeply");
    } catch (const YAML::Exception& e) {
        doc.problem = problem_at(e.mark, "YAML syntax error: " + e.msg);
        doc.problem->syntax = true;
    }
    return doc;
}

}  // namespace chanflow::detail
