// graph_spec_loader.cpp — graph files: YAML text -> GraphSpec, positions kept
// (docs/graph-format.md).
//
// yaml-cpp does the parsing; scalar typing is done here by the YAML 1.2 core schema, since
// yaml-cpp leaves plain scalars untyped (and its own conversions follow YAML 1.1, where
// `on` and `yes` are booleans).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chanflow/graph.hpp"
#include "graph_internal.hpp"
#include "yaml_guard.hpp"

namespace chanflow {
namespace {

const std::vector<std::string> kTopKeys = {"chanflow",  "name",     "description",
                                           "params",    "defaults", "channels",
                                           "processes", "plugins",  "gpu"};
const std::vector<std::string> kDefaultsKeys = {"capacity", "backend"};
const std::vector<std::string> kChannelKeys = {"capacity", "kind"};
const std::vector<std::string> kProcessKeys = {"node",    "with", "in", "out", "replicas",
                                               "ordered", "rank", "on", "gpu", "device"};
const std::vector<std::string> kBindingKeys = {"channel", "deliver"};
template <class Table>
std::vector<std::string> names_of(const Table& table) {
    std::vector<std::string> names;
    for (const auto& entry : table) names.emplace_back(entry.second);
    return names;
}
const std::vector<std::string> kKindNames = names_of(kChannelKinds);
const std::vector<std::string> kDeliverNames = names_of(kDeliverPolicies);
const std::vector<std::string> kPlacements = {"cpu", "gpu"};
const std::vector<std::string> kGpuModes = {"require", "prefer"};

bool contains(const std::vector<std::string>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// "a, b or c", for messages that list the accepted words.
std::string one_of(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
        out += names[i];
    }
    return out;
}

using detail::describe;
using detail::did_you_mean;

// ---- YAML 1.2 core schema ------------------------------------------------------------------

bool is_digit(char c, int base) {
    if (base == 8) return c >= '0' && c <= '7';
    if (base == 16) return std::isxdigit(static_cast<unsigned char>(c)) != 0;
    return c >= '0' && c <= '9';
}

enum class Scan { NotInt, Int, OutOfRange };

// [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
Scan scan_int(std::string_view s, std::int64_t& out) {
    int base = 10;
    bool negative = false;
    std::string_view digits = s;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        digits.remove_prefix(2);
    } else if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
        negative = digits[0] == '-';
        digits.remove_prefix(1);
    }
    if (digits.empty()) return Scan::NotInt;
    for (char c : digits)
        if (!is_digit(c, base)) return Scan::NotInt;
    std::uint64_t magnitude = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    const std::uint64_t limit =
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1 : 0);
    if (ec != std::errc() || magnitude > limit) return Scan::OutOfRange;
    out =
        negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
    return Scan::Int;
}

// [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE][-+]?[0-9]+ )?
bool is_core_float(std::string_view s) {
    std::size_t i = 0;
    const auto digits = [&] {
        std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        return i - start;
    };
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    std::size_t whole = digits();
    std::size_t fraction = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        fraction = digits();
    }
    if (whole == 0 && fraction == 0) return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
        if (digits() == 0) return false;
    }
    return i == s.size();
}

// The value of an untagged plain scalar, or an error message.
std::optional<Value> resolve_plain(const std::string& s, std::string& error) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Value();
    if (s == "true" || s == "True" || s == "TRUE") return Value(true);
    if (s == "false" || s == "False" || s == "FALSE") return Value(false);
    std::int64_t i = 0;
    switch (scan_int(s, i)) {
        case Scan::Int:
            return Value(static_cast<long long>(i));
        case Scan::OutOfRange:
            error = "integer " + s + " is out of range";
            return std::nullopt;
        case Scan::NotInt:
            break;
    }
    if (is_core_float(s)) return Value(std::strtod(s.c_str(), nullptr));
    std::string_view body = s;
    const bool negative = !body.empty() && body[0] == '-';
    if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.remove_prefix(1);
    if (body == ".inf" || body == ".Inf" || body == ".INF")
        return Value(negative ? -std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::infinity());
    if (s == ".nan" || s == ".NaN" || s == ".NAN")
        return Value(std::numeric_limits<double>::quiet_NaN());
    return Value(s);
}

// A relative plugin path: in the graph file's folder, or for a bare file name not found
// there, in the first folder of CHANFLOW_PLUGIN_PATH (colon-separated) that has it.
std::filesystem::path plugin_file(const std::filesystem::path& graph_dir,
                                  const std::filesystem::path& name) {
    std::filesystem::path beside = graph_dir / name;
    std::error_code ec;
    if (std::filesystem::exists(beside, ec) || name.has_parent_path()) return beside;
    const char* search = std::getenv("CHANFLOW_PLUGIN_PATH");
    for (std::string_view rest = search ? search : ""; !rest.empty();) {
        const std::size_t colon = std::min(rest.find(':'), rest.size());
        const std::filesystem::path folder(rest.substr(0, colon));
        rest.remove_prefix(std::min(colon + 1, rest.size()));
        if (!folder.empty() && std::filesystem::exists(folder / name, ec)) return folder / name;
    }
    return beside;
}

bool is_plain(const YAML::Node& n) {
    return n.Tag() == "?";
}

// Explicit core-schema tags (!!str, !!int, ...) are honoured; a quoted scalar is "!".
bool is_string_tag(const std::string& tag) {
    return tag == "!" || tag == "tag:yaml.org,2002:str";
}

// ---- the loader ----------------------------------------------------------------------------

class Loader {
public:
    Loader(std::string_view text, const std::string& file, detail::LoadResult& out)
        : text_(text), file_(file), out_(out), spec_(out.spec) {}

    void load(const Overrides& overrides);

private:
    struct Entry {
        std::string key;
        SourcePos key_pos;
        YAML::Node value;
    };

    SourcePos at(const YAML::Mark& m) const {
        if (in_override_ || m.line < 0) return {};
        return {file_, m.line + 1, m.column + 1};
    }
    SourcePos at(const YAML::Node& n) const { return at(n.Mark()); }
    // A null value left empty (`key:`) has its mark on the following line: use the key's.
    SourcePos value_pos(const Entry& e) const {
        if (e.value.IsNull()) {
            const SourcePos p = at(e.value);
            if (p.line != e.key_pos.line) return e.key_pos;
            return p;
        }
        return at(e.value);
    }
    void error(SourcePos pos, std::string message) {
        if (in_override_) message = "--set: " + message;
        out_.diags.push_back({std::move(pos), std::move(message)});
    }
    bool quoted(const YAML::Node& n) const {
        const auto p = n.Mark().pos;
        return n.IsScalar() && p >= 0 && static_cast<std::size_t>(p) < text_.size() &&
               (text_[static_cast<std::size_t>(p)] == '"' ||
                text_[static_cast<std::size_t>(p)] == '\'');
    }

    std::vector<Entry> entries(const YAML::Node& map, const std::vector<std::string>* allowed);
    bool expect_map(const YAML::Node& n, SourcePos pos, const std::string& what);

    std::optional<Value> substitute(const std::string& text, const SourcePos& pos);
    std::optional<Value> scalar_value(const YAML::Node& n, bool substitute);
    std::optional<Value> value(const YAML::Node& n, bool substitute);
    // The value make() makes, or an error at n when it cannot be made (nested too deep).
    template <class Make>
    std::optional<Value> made(const YAML::Node& n, Make make) {
        try {
            return make();
        } catch (const ValueError& e) {
            error(at(n), e.what());
            return std::nullopt;
        }
    }
    std::optional<SpecValue> spec_value(const Entry& e);
    std::optional<std::string> text(const Entry& e, const std::string& what);
    std::optional<std::string> word(const Entry& e, const std::string& what,
                                    const std::vector<std::string>& allowed);

    void read_version(const std::vector<Entry>& top, const YAML::Node& root);
    void read_params(const Entry& e);
    void apply_overrides(const Overrides& overrides);
    void read_defaults(const Entry& e);
    void read_plugins(const Entry& e);
    void read_channels(const Entry& e);
    void read_processes(const Entry& e);
    void read_process(const Entry& e);
    void read_bindings(const Entry& e, ProcessSpec& p, std::vector<BindingSpec>& into);
    bool read_binding(const Entry& e, BindingSpec& b);
    bool read_channel_names(const YAML::Node& n, SourcePos pos, BindingSpec& b);

    std::string_view text_;
    const std::string& file_;
    detail::LoadResult& out_;
    GraphSpec& spec_;
    std::vector<std::string> param_names_;  // in declaration order, for suggestions
    bool in_override_ = false;
};

// The entries of a mapping, reporting non-scalar, duplicate and (given `allowed`) unknown keys.
std::vector<Loader::Entry> Loader::entries(const YAML::Node& map,
                                           const std::vector<std::string>* allowed) {
    std::vector<Entry> result;
    if (!map.IsMap()) return result;
    result.reserve(map.size());
    std::unordered_set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        const YAML::Node key = it->first;  // a copy: the iterator hands out a temporary
        const SourcePos pos = at(key);
        if (!key.IsScalar()) {
            error(pos, "a key must be a name");
            continue;
        }
        const std::string& name = key.Scalar();
        if (allowed && !contains(*allowed, name)) {
            error(pos, "unknown key '" + name + "'" + did_you_mean(name, *allowed));
            continue;
        }
        if (!seen.insert(name).second) {
            error(pos, "duplicate key '" + name + "'");
            continue;
        }
        result.push_back({name, pos, it->second});
    }
    return result;
}

bool Loader::expect_map(const YAML::Node& n, SourcePos pos, const std::string& what) {
    if (n.IsMap() || n.IsNull()) return true;  // an empty section is written `key:`
    error(std::move(pos), what + " must be a mapping");
    return false;
}

// Replaces every ${name} in text; a text that is exactly one ${name} takes the parameter's
// value, with its type. `$${` stands for a literal `${`.
std::optional<Value> Loader::substitute(const std::string& text, const SourcePos& pos) {
    if (text.find("${") == std::string::npos) return Value(text);
    std::string result;
    bool ok = true;
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t start = text.find("${", i);
        if (start == std::string::npos) {
            result.append(text, i, std::string::npos);
            break;
        }
        if (start > 0 && text[start - 1] == '$') {
            result.append(text, i, start - 1 - i);
            result += "${";
            i = start + 2;
            continue;
        }
        result.append(text, i, start - i);
        const std::size_t end = text.find('}', start + 2);
        if (end == std::string::npos) {
            error(pos, "unterminated '${' in '" + text + "'");
            return std::nullopt;
        }
        const std::string name = text.substr(start + 2, end - start - 2);
        const auto found = spec_.params.find(name);
        if (found == spec_.params.end()) {
            error(pos, "unknown parameter '${" + name + "}'" + did_you_mean(name, param_names_));
            ok = false;
        } else {
            if (start == 0 && end + 1 == text.size()) return found->second;
            append_printed(result, found->second);
        }
        i = end + 1;
    }
    if (!ok) return std::nullopt;
    return Value(std::move(result));
}

std::optional<Value> Loader::scalar_value(const YAML::Node& n, bool substitute_params) {
    if (n.IsNull() || !n.IsDefined()) return Value();
    const std::string& s = n.Scalar();
    const std::string& tag = n.Tag();
    const bool plain = is_plain(n);
    if (substitute_params && s.find("${") != std::string::npos && (plain || is_string_tag(tag))) {
        auto v = substitute(s, at(n));
        // `!!str ${n}` asks for the printed form even of a whole-scalar reference.
        if (v && !v->is_string() && tag == "tag:yaml.org,2002:str") return Value(to_printed(*v));
        return v;
    }
    if (is_string_tag(tag)) return Value(s);
    if (!plain && tag != "tag:yaml.org,2002:int" && tag != "tag:yaml.org,2002:float" &&
        tag != "tag:yaml.org,2002:bool" && tag != "tag:yaml.org,2002:null") {
        error(at(n), "unsupported tag '" + tag + "'");
        return std::nullopt;
    }
    std::string problem;
    auto v = resolve_plain(s, problem);
    if (!v) error(at(n), problem);
    return v;
}

// A scalar, list or record, with ${...} replaced when asked.
std::optional<Value> Loader::value(const YAML::Node& n, bool substitute_params) {
    if (n.IsSequence()) {
        List items;
        items.reserve(n.size());
        bool ok = true;
        for (auto it = n.begin(); it != n.end(); ++it) {
            auto v = value(*it, substitute_params);
            if (v) items.push_back(std::move(*v));
            ok = ok && v.has_value();
        }
        if (!ok) return std::nullopt;
        return made(n, [&] { return Value(std::move(items)); });
    }
    if (n.IsMap()) {
        Record fields;
        bool ok = true;
        for (auto& e : entries(n, nullptr)) {
            auto v = value(e.value, substitute_params);
            if (v) fields.emplace_back(e.key, std::move(*v));
            ok = ok && v.has_value();
        }
        if (!ok) return std::nullopt;
        return made(n, [&] { return Value(std::move(fields)); });
    }
    return scalar_value(n, substitute_params);
}

std::optional<SpecValue> Loader::spec_value(const Entry& e) {
    auto v = value(e.value, true);
    if (!v) return std::nullopt;
    return SpecValue{std::move(*v), value_pos(e), quoted(e.value)};
}

// A scalar taken as text (a name, a path); non-strings are taken in their printed form.
std::optional<std::string> Loader::text(const Entry& e, const std::string& what) {
    if (!e.value.IsScalar()) {
        error(value_pos(e), what + " must be a string");
        return std::nullopt;
    }
    auto v = scalar_value(e.value, true);
    if (!v) return std::nullopt;
    if (v->is_list() || v->is_record()) {
        error(value_pos(e), what + " must be a string, got " + type_name(v->type()));
        return std::nullopt;
    }
    return v->is_string() ? std::string(v->as_string()) : to_printed(*v);
}

// One of a few words (a kind, a policy); reports others with a suggestion.
std::optional<std::string> Loader::word(const Entry& e, const std::string& what,
                                        const std::vector<std::string>& allowed) {
    auto w = text(e, what);
    if (!w) return std::nullopt;
    if (contains(allowed, *w)) return w;
    std::string hint = did_you_mean(*w, allowed);
    if (hint.empty()) hint = " (expected " + one_of(allowed) + ")";
    error(value_pos(e), "unknown " + what + " '" + *w + "'" + hint);
    return std::nullopt;
}

void Loader::read_version(const std::vector<Entry>& top, const YAML::Node& root) {
    const auto it =
        std::find_if(top.begin(), top.end(), [](const Entry& e) { return e.key == "chanflow"; });
    if (it == top.end()) {
        SourcePos pos = at(root);
        if (pos.line == 0) pos = {file_, 1, 1};
        error(pos, "missing key 'chanflow' (the format version, 1)");
        return;
    }
    auto v = value(it->value, false);
    if (!v) return;
    if (v->is_int() && v->as_int() == 1) return;
    error(value_pos(*it), "unknown graph format version " + describe(*v) + " (expected 1)");
}

void Loader::read_params(const Entry& e) {
    if (!expect_map(e.value, value_pos(e), "'params'")) return;
    for (auto& p : entries(e.value, nullptr)) {
        if (!detail::is_valid_name(p.key)) {
            error(p.key_pos, "invalid parameter name '" + p.key + "' (" + detail::kNameRule + ")");
            continue;
        }
        // Parameters are the source of substitution, so they are taken literally.
        auto v = value(p.value, false);
        if (!v) continue;
        spec_.params[p.key] = std::move(*v);
        param_names_.push_back(p.key);
    }
}

void Loader::apply_overrides(const Overrides& overrides) {
    in_override_ = true;
    for (const auto& [name, raw] : overrides) {
        if (!spec_.params.count(name)) {
            error({}, "unknown parameter '" + name + "'" + did_you_mean(name, param_names_));
            continue;
        }
        const detail::YamlDocument doc = detail::read_yaml(raw);
        if (doc.problem) {
            error({}, "cannot read the value of '" + name + "': " + doc.problem->message);
            continue;
        }
        auto v = value(doc.root, false);
        if (v) spec_.params[name] = std::move(*v);
    }
    in_override_ = false;
}

void Loader::read_defaults(const Entry& e) {
    if (!expect_map(e.value, value_pos(e), "'defaults'")) return;
    for (auto& d : entries(e.value, &kDefaultsKeys)) {
        if (d.key == "capacity") {
            if (auto v = spec_value(d)) spec_.default_capacity = std::move(*v);
        } else if (auto b = text(d, "backend")) {
            spec_.backend = *b;  // checked against the known backends by check_graph
            spec_.backend_pos = value_pos(d);
        }
    }
}

void Loader::read_plugins(const Entry& e) {
    std::vector<YAML::Node> items;
    if (e.value.IsSequence()) {
        for (auto it = e.value.begin(); it != e.value.end(); ++it) items.push_back(*it);
    } else if (e.value.IsScalar()) {
        items.push_back(e.value);
    } else if (!e.value.IsNull()) {
        error(value_pos(e), "'plugins' must be a list of paths");
        return;
    }
    // In the graph file's folder or below it (a bare name not found there: in the folders of
    // CHANFLOW_PLUGIN_PATH); made absolute so that dlopen does not search its own path.
    const std::filesystem::path dir = std::filesystem::path(file_).parent_path();
    for (const auto& item : items) {
        // What is loaded is written in the file, never chosen by a parameter (`--set`).
        if (item.IsScalar() && item.Scalar().find("${") != std::string::npos) {
            error(at(item),
                  "a plugin path takes no ${...}: a parameter must not choose the "
                  "code that runs");
            continue;
        }
        auto path = text({"plugins", at(item), item}, "a plugin path");
        if (!path) continue;
        const std::filesystem::path p(*path);
        const bool climbs =
            std::any_of(p.begin(), p.end(), [](const auto& c) { return c == ".."; });
        if (p.empty() || p.is_absolute() || climbs) {
            error(at(item), "plugin '" + *path +
                                "': a plugin lies in the graph file's folder or below it, or in "
                                "a folder of CHANFLOW_PLUGIN_PATH (write its file name)");
            continue;
        }
        spec_.plugins.push_back(
            std::filesystem::absolute(plugin_file(dir, p)).lexically_normal().string());
        spec_.plugin_pos.push_back(at(item));
    }
}

void Loader::read_channels(const Entry& e) {
    if (!expect_map(e.value, value_pos(e), "'channels'")) {
        out_.partial = true;
        return;
    }
    for (auto& c : entries(e.value, nullptr)) {
        ChannelSpec ch;
        ch.name = c.key;
        ch.pos = c.key_pos;
        if (!expect_map(c.value, value_pos(c), "channel '" + c.key + "'")) continue;
        for (auto& field : entries(c.value, &kChannelKeys)) {
            if (field.key == "capacity") {
                if (auto v = spec_value(field)) ch.capacity = std::move(*v);
            } else if (auto k = word(field, "channel kind", kKindNames)) {
                ch.kind = std::pair{*value_in(kChannelKinds, *k), value_pos(field)};
            }
        }
        spec_.channels.push_back(std::move(ch));
    }
}

void Loader::read_processes(const Entry& e) {
    if (!expect_map(e.value, value_pos(e), "'processes'")) {
        out_.partial = true;
        return;
    }
    auto list = entries(e.value, nullptr);
    spec_.processes.reserve(list.size());
    for (auto& p : list) read_process(p);
}

void Loader::read_process(const Entry& e) {
    if (!e.value.IsMap()) {
        error(value_pos(e), "process '" + e.key + "' must be a mapping with at least 'node'");
        out_.damaged.insert(e.key);
        out_.partial = true;
        return;
    }
    const std::size_t errors_before = out_.diags.size();
    ProcessSpec p;
    p.name = e.key;
    p.pos = e.key_pos;
    bool has_node = false;
    for (auto& f : entries(e.value, &kProcessKeys)) {
        if (f.key == "node") {
            has_node = true;
            if (auto t = text(f, "node")) {
                p.node = *t;
                p.node_pos = value_pos(f);
            }
        } else if (f.key == "with") {
            if (!expect_map(f.value, value_pos(f), "'with'")) continue;
            for (auto& w : entries(f.value, nullptr)) {
                p.with_key_pos[w.key] = w.key_pos;
                if (auto v = spec_value(w)) p.with.emplace_back(w.key, std::move(*v));
            }
        } else if (f.key == "in") {
            read_bindings(f, p, p.inputs);
        } else if (f.key == "out") {
            read_bindings(f, p, p.outputs);
        } else if (f.key == "replicas") {
            if (auto v = spec_value(f)) p.replicas = std::move(*v);
        } else if (f.key == "ordered") {
            auto v = spec_value(f);
            if (v && v->value.is_bool())
                p.ordered = v->value.as_bool();
            else if (v)
                error(v->pos, "ordered must be true or false, got " + describe(v->value));
        } else if (f.key == "rank") {
            auto v = spec_value(f);
            if (v && v->value.is_int() && v->value.as_int() >= 0 &&
                v->value.as_int() <= std::numeric_limits<int>::max()) {
                p.rank = static_cast<int>(v->value.as_int());
                p.rank_pos = v->pos;
            } else if (v)
                error(v->pos, "rank must be an int >= 0, got " + describe(v->value));
        } else if (f.key == "on") {
            if (auto where = word(f, "placement", kPlacements)) {
                p.gpu = *where == "gpu";
                p.gpu_pos = value_pos(f);
            }
        } else if (f.key == "device") {
            auto v = spec_value(f);
            if (v && v->value.is_int() && v->value.as_int() >= 0 && v->value.as_int() <= 1023) {
                p.device = static_cast<int>(v->value.as_int());
                p.device_pos = v->pos;
            } else if (v)
                error(v->pos, "device must be an int from 0 to 1023, got " + describe(v->value));
        } else if (f.key == "gpu") {
            if (auto mode = word(f, "gpu mode", kGpuModes)) {
                p.gpu_mode = gpu_mode_named(*mode);
                p.gpu_mode_pos = value_pos(f);
            }
        }
    }
    if (!has_node) error(e.key_pos, "missing key 'node' in process '" + e.key + "'");
    if (out_.diags.size() != errors_before) {
        out_.damaged.insert(p.name);
        out_.partial = true;
    }
    spec_.processes.push_back(std::move(p));
}

void Loader::read_bindings(const Entry& e, ProcessSpec& p, std::vector<BindingSpec>& into) {
    if (!expect_map(e.value, value_pos(e), "'" + e.key + "' of process '" + p.name + "'")) return;
    for (auto& b : entries(e.value, nullptr)) {
        BindingSpec binding;
        binding.port = b.key;
        binding.pos = b.key_pos;
        if (read_binding(b, binding)) into.push_back(std::move(binding));
    }
}

// `port: channel`, `port: [a, b]` or `port: {channel: NAME, deliver: POLICY}`.
bool Loader::read_binding(const Entry& e, BindingSpec& b) {
    if (!e.value.IsMap()) return read_channel_names(e.value, value_pos(e), b);
    bool has_channel = false;
    bool ok = true;
    for (auto& f : entries(e.value, &kBindingKeys)) {
        if (f.key == "channel") {
            has_channel = true;
            ok = read_channel_names(f.value, value_pos(f), b) && ok;
        } else if (auto d = word(f, "deliver policy", kDeliverNames)) {
            b.deliver = std::pair{*value_in(kDeliverPolicies, *d), value_pos(f)};
        } else {
            ok = false;
        }
    }
    if (!has_channel) {
        error(value_pos(e), "missing key 'channel' in the binding of port '" + b.port + "'");
        return false;
    }
    return ok;
}

bool Loader::read_channel_names(const YAML::Node& n, SourcePos pos, BindingSpec& b) {
    std::vector<YAML::Node> names;
    if (n.IsSequence()) {
        b.list = true;
        for (auto it = n.begin(); it != n.end(); ++it) names.push_back(*it);
    } else if (n.IsScalar()) {
        names.push_back(n);
    } else {
        error(std::move(pos), "port '" + b.port + "' must be bound to a channel name or a list");
        return false;
    }
    bool ok = true;
    for (const auto& item : names) {
        auto name = text({b.port, at(item), item}, "a channel name");
        if (name)
            b.channels.emplace_back(std::move(*name), at(item));
        else
            ok = false;
    }
    return ok;
}

void Loader::load(const Overrides& overrides) {
    spec_.file = file_;
    spec_.name = std::filesystem::path(file_).stem().string();
    if (spec_.name.empty()) spec_.name = "graph";

    detail::YamlDocument doc = detail::read_yaml(text_);
    if (doc.problem) {
        std::string message = std::move(doc.problem->message);
        // A plain ${...} ends at `}` inside [ ] and { }: say how to write it.
        if (doc.problem->syntax && doc.problem->line > 0) {
            std::size_t begin = 0;
            for (int line = 1; line < doc.problem->line && begin != std::string::npos; ++line) {
                begin = text_.find('\n', begin);
                if (begin != std::string::npos) ++begin;
            }
            if (begin != std::string::npos &&
                text_.substr(begin, text_.find('\n', begin) - begin).find("${") !=
                    std::string_view::npos)
                message += " (inside [ ] or { }, write \"${name}\" in quotes)";
        }
        SourcePos pos;
        if (doc.problem->line > 0) pos = {file_, doc.problem->line, doc.problem->column};
        error(std::move(pos), std::move(message));
        out_.fatal = true;
        return;
    }
    const YAML::Node root = doc.root;
    if (!root.IsMap() && !root.IsNull()) {
        error(at(root), "a graph file must be a mapping (chanflow, params, channels, processes)");
        out_.fatal = true;
        return;
    }
    const std::size_t errors_before = out_.diags.size();
    const auto top = entries(root, &kTopKeys);
    if (out_.diags.size() != errors_before) out_.partial = true;  // maybe a misspelt section
    read_version(top, root);
    if (root.IsNull()) {
        out_.fatal = true;
        return;
    }
    // Parameters first: every other section may refer to them.
    for (const auto& e : top)
        if (e.key == "params") read_params(e);
    apply_overrides(overrides);
    for (const auto& e : top) {
        if (e.key == "name") {
            if (auto t = text(e, "name")) spec_.name = *t;
        } else if (e.key == "description") {
            if (auto t = text(e, "description")) spec_.description = *t;
        } else if (e.key == "defaults") {
            read_defaults(e);
        } else if (e.key == "plugins") {
            read_plugins(e);
        } else if (e.key == "gpu") {
            if (auto mode = word(e, "gpu mode", kGpuModes)) {
                spec_.gpu_mode = gpu_mode_named(*mode);
                spec_.gpu_mode_pos = value_pos(e);
            }
        } else if (e.key == "channels") {
            read_channels(e);
        } else if (e.key == "processes") {
            read_processes(e);
        }
    }
}

[[noreturn]] void throw_sorted(std::vector<Diagnostic> diags) {
    detail::sort_diagnostics(diags);
    throw GraphError(std::move(diags));
}

}  // namespace

namespace detail {

LoadResult read_graph_text(std::string_view yaml, const std::string& file,
                           const Overrides& overrides) {
    LoadResult result;
    Loader(yaml, file, result).load(overrides);
    return result;
}

LoadResult read_graph_file(const std::string& path, const Overrides& overrides) {
    std::string text;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    int error = f ? 0 : errno;
    if (f) {
        char buffer[65536];
        std::size_t n = 0;
        while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
        if (std::ferror(f)) error = errno ? errno : EIO;
        std::fclose(f);
    }
    if (error != 0) {
        LoadResult result;
        result.spec.file = path;
        Diagnostic d;  // built in steps: GCC 12 -O3 warns on the aggregate form
        d.message = "cannot read graph file '" + path + "': " + std::strerror(error);
        result.diags.push_back(std::move(d));
        result.fatal = true;
        return result;
    }
    return read_graph_text(text, path, overrides);
}

}  // namespace detail

GraphSpec load_graph_spec(const std::string& path, const Overrides& overrides) {
    auto result = detail::read_graph_file(path, overrides);
    if (!result.diags.empty()) throw_sorted(std::move(result.diags));
    return std::move(result.spec);
}

GraphSpec parse_graph_spec(std::string_view yaml, const std::string& file,
                           const Overrides& overrides) {
    auto result = detail::read_graph_text(yaml, file, overrides);
    if (!result.diags.empty()) throw_sorted(std::move(result.diags));
    return std::move(result.spec);
}

}  // namespace chanflow
