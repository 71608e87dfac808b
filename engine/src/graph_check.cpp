// graph_check.cpp — GraphSpec -> Plan: node types, parameters, ports, replicas, channel kinds.
//
// Every problem is collected with its place in the file and reported at once, like a
// compiler; the plan is only handed out when nothing was found.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chanflow/expr.hpp"
#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "gpu_module.hpp"
#include "graph_internal.hpp"

namespace chanflow {
namespace {

using detail::describe;
using detail::did_you_mean;

const std::vector<std::string> kBackends = {"threads", "processes", "mpi"};
constexpr std::int64_t kMaxReplicas = 1'000'000;

// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("stpo").
std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::size_t> prev2(m + 1), prev(m + 1), row(m + 1);
    for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        row[0] = i;
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            row[j] = std::min({prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                row[j] = std::min(row[j], prev2[j - 2] + 1);
        }
        std::swap(prev2, prev);
        std::swap(prev, row);
    }
    return prev[m];
}

ChannelKind kind_of(std::size_t writers, std::size_t readers) {
    if (writers <= 1) return readers <= 1 ? ChannelKind::One2One : ChannelKind::One2Any;
    return readers <= 1 ? ChannelKind::Any2One : ChannelKind::Any2Any;
}

std::string count_of(std::size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// What a parameter type accepts, as said in "must be ...".
const char* expected_name(ParamType t) {
    switch (t) {
        case ParamType::Any:
            return "any value";
        case ParamType::Int:
            return "int";
        case ParamType::Float:
            return "float";
        case ParamType::Number:
            return "int or float";
        case ParamType::Bool:
            return "bool";
        case ParamType::String:
            return "str";
        case ParamType::List:
            return "list";
        case ParamType::Expr:
            return "str (an expression)";
    }
    return "?";
}

bool accepts(const ParamSpec& p, const Value& v) {
    // An optional parameter (default null) may be given as null explicitly.
    if (v.is_null() && p.default_value && p.default_value->is_null()) return true;
    switch (p.type) {
        case ParamType::Any:
            return true;
        case ParamType::Int:
            return v.is_int();
        case ParamType::Float:
        case ParamType::Number:
            return v.is_number();
        case ParamType::Bool:
            return v.is_bool();
        case ParamType::String:
        case ParamType::Expr:
            return v.is_string();
        case ParamType::List:
            return v.is_list();
    }
    return false;
}

class Checker {
public:
    Checker(const GraphSpec& spec, std::vector<Diagnostic>& diags,
            const detail::CheckContext& context)
        : spec_(spec), diags_(diags), context_(context) {}

    Plan run();

private:
    // What the checker learns about a channel beyond its PlanChannel.
    struct ChannelInfo {
        const ChannelSpec* decl = nullptr;
        SourcePos first_use;
        std::optional<std::pair<Deliver, SourcePos>> deliver;
    };

    void error(SourcePos pos, std::string message, const ProcessSpec* context = nullptr) {
        // Graphs built in code have no positions: name the process instead.
        if (context && pos.line == 0) message = "process '" + context->name + "': " + message;
        diags_.push_back({std::move(pos), std::move(message)});
    }
    bool damaged(const ProcessSpec& p) const {
        return context_.damaged && context_.damaged->count(p.name) > 0;
    }

    void load_plugins();
    void check_backend();
    std::optional<std::size_t> capacity(const SpecValue& v);
    void declare_channels();
    std::optional<std::size_t> use_channel(const std::string& name, const SourcePos& pos);
    void check_process(const ProcessSpec& p);
    int replicas_of(const ProcessSpec& p);
    void check_params(const ProcessSpec& p, const NodeType& type, PlanProcess& out);
    void place_on_gpu(const ProcessSpec& p, const NodeType* type, PlanProcess& out);
    void check_gpu_kernels(const ProcessSpec& p, const PlanProcess& proto);
    std::optional<Expr> compile(const ProcessSpec& p, const std::string& name, const Value& v,
                                const SpecValue* written);
    std::vector<PlanPort> bind(const ProcessSpec& p, const NodeType* type,
                               const std::vector<BindingSpec>& bindings, PortDir dir);
    void finish_channels();
    void check_ordered();

    const GraphSpec& spec_;
    std::vector<Diagnostic>& diags_;
    const detail::CheckContext& context_;
    Plan plan_;
    std::vector<ChannelInfo> info_;  // parallel to plan_.channels
    std::unordered_map<std::string, std::size_t> channel_index_;
    std::unordered_set<std::string> process_names_;
    // Replicated `ordered: true` processes: as written, and the index of replica 0.
    std::vector<std::pair<const ProcessSpec*, std::size_t>> ordered_;
    std::size_t default_capacity_ = kDefaultCapacity;
};

void Checker::load_plugins() {
    if (!context_.options.plugins) return;
    for (std::size_t i = 0; i < spec_.plugins.size(); ++i) {
        try {
            load_plugin(spec_.plugins[i]);
        } catch (const std::exception& e) {
            error(i < spec_.plugin_pos.size() ? spec_.plugin_pos[i] : SourcePos{}, e.what());
        }
    }
}

void Checker::check_backend() {
    if (std::find(kBackends.begin(), kBackends.end(), spec_.backend) != kBackends.end()) return;
    std::string hint = did_you_mean(spec_.backend, kBackends);
    if (hint.empty()) hint = " (expected threads, processes or mpi)";
    error(spec_.backend_pos, "unknown backend '" + spec_.backend + "'" + hint);
}

std::optional<std::size_t> Checker::capacity(const SpecValue& v) {
    if (v.value.is_int() && v.value.as_int() >= 0)
        return static_cast<std::size_t>(v.value.as_int());
    error(v.pos, "capacity must be an int >= 0, got " + describe(v.value));
    return std::nullopt;
}

void Checker::declare_channels() {
    for (const auto& c : spec_.channels) {
        if (!detail::is_valid_name(c.name)) {
            error(c.pos, "invalid channel name '" + c.name + "' (" + detail::kNameRule + ")");
            continue;
        }
        if (channel_index_.count(c.name)) {
            error(c.pos, "channel '" + c.name + "' is declared twice");
            continue;
        }
        channel_index_.emplace(c.name, plan_.channels.size());
        PlanChannel ch;
        ch.name = c.name;
        plan_.channels.push_back(std::move(ch));
        info_.push_back({&c, c.pos, std::nullopt});
    }
}

// The channel a binding names, created with defaults when it was not declared.
std::optional<std::size_t> Checker::use_channel(const std::string& name, const SourcePos& pos) {
    if (auto it = channel_index_.find(name); it != channel_index_.end()) return it->second;
    if (!detail::is_valid_name(name)) {
        error(pos, "invalid channel name '" + name + "' (" + detail::kNameRule + ")");
        return std::nullopt;
    }
    const std::size_t index = plan_.channels.size();
    channel_index_.emplace(name, index);
    PlanChannel ch;
    ch.name = name;
    plan_.channels.push_back(std::move(ch));
    info_.push_back({nullptr, pos, std::nullopt});
    return index;
}

int Checker::replicas_of(const ProcessSpec& p) {
    if (!p.replicas) return 1;
    const Value& v = p.replicas->value;
    if (v.is_int() && v.as_int() >= 1 && v.as_int() <= kMaxReplicas)
        return static_cast<int>(v.as_int());
    if (v.is_int() && v.as_int() > kMaxReplicas)
        error(p.replicas->pos,
              "replicas must be at most " + std::to_string(kMaxReplicas) + ", got " + describe(v),
              &p);
    else
        error(p.replicas->pos, "replicas must be an int >= 1, got " + describe(v), &p);
    return 1;
}

std::optional<Expr> Checker::compile(const ProcessSpec& p, const std::string& name, const Value& v,
                                     const SpecValue* written) {
    const std::string_view source = v.as_string();
    try {
        return Expr::compile(source);
    } catch (const ExprSyntaxError& e) {
        const SourcePos pos = written ? detail::position_in(*written, e.offset()) : p.pos;
        error(pos, std::string("syntax error in expression: ") + e.what(), &p);
    } catch (const std::exception& e) {
        error(written ? written->pos : p.pos,
              "invalid expression for parameter '" + name + "': " + e.what(), &p);
    }
    return std::nullopt;
}

void Checker::check_params(const ProcessSpec& p, const NodeType& type, PlanProcess& out) {
    std::vector<std::string> names;
    for (const auto& ps : type.params) names.push_back(ps.name);
    for (const auto& [name, written] : p.with) {
        const ParamSpec* ps = type.find_param(name);
        if (!ps) {
            const auto key = p.with_key_pos.find(name);
            error(key != p.with_key_pos.end() ? key->second : written.pos,
                  "unknown parameter '" + name + "' for node '" + type.name + "'" +
                      did_you_mean(name, names),
                  &p);
            continue;
        }
        if (!accepts(*ps, written.value)) {
            error(written.pos,
                  "parameter '" + name + "' of node '" + type.name + "' must be " +
                      expected_name(ps->type) + ", got " + type_name(written.value.type()),
                  &p);
            continue;
        }
        if (written.value.is_int() &&
            (written.value.as_int() < ps->min || written.value.as_int() > ps->max)) {
            error(written.pos,
                  "parameter '" + name + "' of node '" + type.name + "' must be " +
                      ps->range_text() + ", got " + std::to_string(written.value.as_int()),
                  &p);
            continue;
        }
        Value v = written.value;
        if (ps->type == ParamType::Float && v.is_int()) v = Value(static_cast<double>(v.as_int()));
        if (ps->type == ParamType::Expr && v.is_string()) {
            if (auto e = compile(p, name, v, &written)) out.exprs[name] = std::move(*e);
        }
        out.params[name] = std::move(v);
    }
    for (const auto& ps : type.params) {
        if (out.params.count(ps.name)) continue;
        const bool given = std::any_of(p.with.begin(), p.with.end(),
                                       [&](const auto& w) { return w.first == ps.name; });
        if (given) continue;  // given but wrong: already reported
        if (ps.required()) {
            if (!damaged(p))
                error(p.pos, "missing parameter '" + ps.name + "' for node '" + type.name + "'",
                      &p);
            continue;
        }
        Value v = *ps.default_value;
        if (ps.type == ParamType::Float && v.is_int()) v = Value(static_cast<double>(v.as_int()));
        if (ps.type == ParamType::Expr && v.is_string()) {
            if (auto e = compile(p, ps.name, v, nullptr)) out.exprs[ps.name] = std::move(*e);
        }
        out.params[ps.name] = std::move(v);
    }
}

std::vector<PlanPort> Checker::bind(const ProcessSpec& p, const NodeType* type,
                                    const std::vector<BindingSpec>& bindings, PortDir dir) {
    std::vector<PlanPort> ports;
    ports.reserve(bindings.size());
    std::vector<std::string> same_dir;
    if (type)
        for (const auto& ps : type->ports)
            if (ps.dir == dir) same_dir.push_back(ps.name);
    std::unordered_set<std::string> bound;
    for (const auto& b : bindings) {
        const PortSpec* port = type ? type->find_port(b.port) : nullptr;
        PortSpec named;  // a port of a node whose ports the graph names
        if (type && type->open_ports) {
            named = PortSpec{b.port, dir, false, true, {}};
            port = &named;
        }
        if (type && (!port || port->dir != dir)) {
            std::string hint = did_you_mean(b.port, same_dir);
            if (hint.empty() && port)
                hint = port->dir == PortDir::Out ? " (it is an output port)"
                                                 : " (it is an input port)";
            error(b.pos, "unknown port '" + b.port + "' of node '" + type->name + "'" + hint, &p);
            port = nullptr;
        } else if (port && b.list && !port->multi) {
            error(
                b.pos,
                "port '" + b.port + "' of node '" + type->name + "' takes one channel, got a list",
                &p);
        } else if (port && port->required && b.channels.empty()) {
            error(b.pos, "port '" + b.port + "' of process '" + p.name + "' is not bound");
        }
        if (!bound.insert(b.port).second)
            error(b.pos, "port '" + b.port + "' of process '" + p.name + "' is bound twice");
        if (dir == PortDir::Out && b.deliver)
            error(b.deliver->second,
                  "'deliver' belongs on a reading binding (under 'in'), not on output port '" +
                      b.port + "'",
                  &p);

        PlanPort planned{b.port, {}};
        for (const auto& [name, pos] : b.channels) {
            const auto index = use_channel(name, pos);
            if (!index) continue;
            planned.channels.push_back(*index);
            if (dir != PortDir::In || !b.deliver) continue;
            auto& stated = info_[*index].deliver;
            if (!stated) {
                stated = b.deliver;
            } else if (stated->first != b.deliver->first) {
                error(b.deliver->second, std::string("conflicting deliver policies for channel '") +
                                             name + "': " + deliver_name(stated->first) + " and " +
                                             deliver_name(b.deliver->first));
            }
        }
        ports.push_back(std::move(planned));
    }
    if (type && !damaged(p))
        for (const auto& ps : type->ports)
            if (ps.dir == dir && ps.required && !bound.count(ps.name))
                error(p.pos, "port '" + ps.name + "' of process '" + p.name + "' is not bound");
    return ports;
}

// `on: gpu` and `gpu: require|prefer` (docs/gpu.md).
void Checker::place_on_gpu(const ProcessSpec& p, const NodeType* type, PlanProcess& out) {
    out.gpu = p.gpu;
    out.gpu_pos = p.gpu_pos;
    out.gpu_mode = context_.options.gpu ? *context_.options.gpu
                   : p.gpu_mode         ? *p.gpu_mode
                   : spec_.gpu_mode     ? *spec_.gpu_mode
                                        : GpuMode::Require;
    const auto& only = gpu_only_node_types();
    const bool gpu_only = type && std::find(only.begin(), only.end(), type->name) != only.end();
    if (!p.gpu && gpu_only)
        error(p.node_pos.line > 0 ? p.node_pos : p.pos,
              "node type '" + type->name + "' runs only on a GPU: add 'on: gpu' to process '" +
                  p.name + "'",
              &p);
    out.device = p.device;
    if (!p.gpu && p.device)
        error(p.device_pos,
              "'device' picks the GPU of a process placed on one, but process '" + p.name +
                  "' has no 'on: gpu'",
              &p);
    if (!p.gpu) {
        if (p.gpu_mode)
            error(p.gpu_mode_pos,
                  "'gpu' says what a process placed on a GPU does where none can be used, but "
                  "process '" +
                      p.name + "' has no 'on: gpu'",
                  &p);
        return;
    }
    const auto& types = gpu_node_types();
    if (type && std::find(types.begin(), types.end(), type->name) == types.end()) {
        std::string names;
        for (const auto& t : types) names += (names.empty() ? "" : ", ") + t;
        error(p.gpu_pos,
              "node type '" + type->name + "' has no GPU version (these have one: " + names + ")",
              &p);
        return;
    }
    std::string why;
    if (!detail::gpu_module(&why) && (out.gpu_mode == GpuMode::Require || gpu_only))
        error(p.gpu_pos,
              "process '" + p.name + "' needs a GPU: " + why +
                  (gpu_only ? " (" + type->name + " has no CPU version)"
                            : " (with 'gpu: prefer' it runs on the CPU)"),
              &p);
}

void Checker::check_gpu_kernels(const ProcessSpec& p, const PlanProcess& proto) {
    if (detail::GpuModule* module = detail::gpu_module())
        module->check(p, proto, context_.options.gpu_arch, diags_);
}

void Checker::check_process(const ProcessSpec& p) {
    const std::size_t errors_before = diags_.size();
    if (!detail::is_valid_name(p.name))
        error(p.pos, "invalid process name '" + p.name + "' (" + detail::kNameRule + ")");
    else if (!process_names_.insert(p.name).second)
        error(p.pos, "process '" + p.name + "' is defined twice");

    const NodeType* type = NodeRegistry::global().find(p.node);
    if (!type && !(p.node.empty() && damaged(p))) {
        std::vector<std::string> names;
        for (const NodeType* t : NodeRegistry::global().all()) names.push_back(t->name);
        error(p.node_pos.line > 0 ? p.node_pos : p.pos,
              "unknown node type '" + p.node + "'" + did_you_mean(p.node, names) +
                  (context_.options.plugins || spec_.plugins.empty()
                       ? ""
                       : " (the file's plugins were not loaded)"),
              &p);
    }
    const int replicas = replicas_of(p);
    if (p.ordered && replicas > 1) ordered_.push_back({&p, plan_.processes.size()});

    PlanProcess proto;
    proto.group = p.name;
    proto.replicas = replicas;
    proto.type = type;
    proto.pos = p.pos;
    proto.ordered = p.ordered;
    proto.rank = p.rank;
    proto.rank_pos = p.rank_pos;
    place_on_gpu(p, type, proto);
    if (type) check_params(p, *type, proto);
    proto.inputs = bind(p, type, p.inputs, PortDir::In);
    proto.outputs = bind(p, type, p.outputs, PortDir::Out);
    if (proto.gpu && type && diags_.size() == errors_before) check_gpu_kernels(p, proto);

    // Every replica is a process of its own and one more end on each of its channels.
    for (int r = 0; r < replicas; ++r) {
        const std::size_t index = plan_.processes.size();
        for (const auto& port : proto.inputs)
            for (std::size_t c : port.channels)
                plan_.channels[c].readers.push_back({index, port.port});
        for (const auto& port : proto.outputs)
            for (std::size_t c : port.channels)
                plan_.channels[c].writers.push_back({index, port.port});
        PlanProcess copy = r + 1 == replicas ? std::move(proto) : proto;
        copy.replica = r;
        copy.name = replicas > 1 ? p.name + "[" + std::to_string(r) + "]" : p.name;
        plan_.processes.push_back(std::move(copy));
    }
}

void Checker::finish_channels() {
    for (std::size_t i = 0; i < plan_.channels.size(); ++i) {
        PlanChannel& ch = plan_.channels[i];
        const ChannelInfo& info = info_[i];
        const std::size_t writers = ch.writers.size();
        const std::size_t readers = ch.readers.size();
        ch.kind = kind_of(writers, readers);
        ch.deliver = info.deliver ? info.deliver->first : Deliver::Any;
        ch.capacity = default_capacity_;
        if (info.decl && info.decl->capacity) {
            if (auto c = capacity(*info.decl->capacity)) ch.capacity = *c;
        }
        // With parts of the graph dropped by the loader, end counts prove nothing.
        if (context_.lenient) continue;
        const SourcePos& where = info.decl ? info.decl->pos : info.first_use;
        if (writers == 0 && readers == 0) {
            error(where, "channel '" + ch.name + "' has no writer and no reader");
        } else if (writers == 0) {
            error(where, "channel '" + ch.name + "' has no writer");
        } else if (readers == 0) {
            error(where, "channel '" + ch.name + "' has no reader");
        } else if (info.decl && info.decl->kind && info.decl->kind->first != ch.kind) {
            error(info.decl->kind->second, "channel '" + ch.name + "' is declared " +
                                               channel_kind_name(info.decl->kind->first) +
                                               " but has " + count_of(writers, "writer") + " and " +
                                               count_of(readers, "reader") + " (" +
                                               channel_kind_name(ch.kind) + ")");
        }
    }
}

// An ordered fan-out needs a well-defined input order: one input channel, dealt out
// round-robin (or `any`, which it then deals round-robin), from one writer (an ordered
// fan-out upstream counts as one: its merge is the writer).
void Checker::check_ordered() {
    for (const auto& [p, first] : ordered_) {
        if (damaged(*p)) continue;
        std::vector<std::size_t> inputs;
        for (const auto& port : plan_.processes[first].inputs)
            inputs.insert(inputs.end(), port.channels.begin(), port.channels.end());
        if (inputs.size() != 1) {
            error(p->pos,
                  "'ordered: true' needs exactly one input channel, process '" + p->name +
                      "' has " + std::to_string(inputs.size()),
                  p);
            continue;
        }
        const PlanChannel& ch = plan_.channels[inputs[0]];
        const ChannelInfo& info = info_[inputs[0]];
        if (ch.deliver == Deliver::Hash || ch.deliver == Deliver::Broadcast) {
            error(info.deliver ? info.deliver->second : p->pos,
                  "'ordered: true' on process '" + p->name +
                      "' needs deliver any or round_robin on channel '" + ch.name + "', not " +
                      deliver_name(ch.deliver),
                  p);
            continue;
        }
        if (context_.lenient || ch.writers.empty()) continue;
        const PlanProcess& writer = plan_.processes[ch.writers.front().process];
        const bool one_writer =
            ch.writers.size() == 1 ||
            (writer.ordered && std::all_of(ch.writers.begin(), ch.writers.end(), [&](auto& e) {
                 return plan_.processes[e.process].group == writer.group;
             }));
        if (!one_writer)
            error(p->pos,
                  "'ordered: true' on process '" + p->name + "' needs one writer on channel '" +
                      ch.name + "', it has " + count_of(ch.writers.size(), "writer") +
                      " (their interleaving leaves the input order open)",
                  p);
    }
}

Plan Checker::run() {
    plan_.name = spec_.name;
    plan_.file = spec_.file;
    plan_.backend = spec_.backend;
    // Plugins first: they add the node types that the processes name.
    load_plugins();
    check_backend();
    if (spec_.default_capacity) {
        if (auto c = capacity(*spec_.default_capacity)) default_capacity_ = *c;
    }
    declare_channels();
    plan_.processes.reserve(spec_.processes.size());
    for (const auto& p : spec_.processes) check_process(p);
    finish_channels();
    check_ordered();
    if (diags_.empty()) detail::expand_ordered_fanout(plan_);
    return std::move(plan_);
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
    const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
    std::string best;
    std::size_t best_distance = limit + 1;
    for (const auto& c : candidates) {
        const std::size_t gap =
            c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
        if (gap >= best_distance) continue;  // cannot beat the best so far
        const std::size_t d = edit_distance(word, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

namespace detail {

Plan check_graph_into(const GraphSpec& spec, std::vector<Diagnostic>& diags,
                      const CheckContext& context) {
    return Checker(spec, diags, context).run();
}

void sort_diagnostics(std::vector<Diagnostic>& diags) {
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
    });
}

}  // namespace detail

Plan check_graph(const GraphSpec& spec, const CheckOptions& options) {
    std::vector<Diagnostic> diags;
    detail::CheckContext context;
    context.options = options;
    Plan plan = detail::check_graph_into(spec, diags, context);
    if (!diags.empty()) {
        detail::sort_diagnostics(diags);
        throw GraphError(std::move(diags));
    }
    return plan;
}

}  // namespace chanflow
