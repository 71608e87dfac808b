// chanflow/graph.hpp — graphs: loaded from YAML or built in code, then checked into a Plan.
//
//   // from a file (docs/graph-format.md)
//   chanflow::Plan plan = chanflow::load_plan("graphs/commstime.yaml", {{"n", "100"}});
//
//   // or in code
//   chanflow::Graph g("squares");
//   g.process("src", "range").with("stop", 10).out("out", "nums");
//   g.process("sq", "map").with("expr", "x * x").in("in", "nums").out("out", "sq");
//   g.process("sink", "collect").in("in", "sq");
//   chanflow::Plan plan = g.plan();
//
// Both throw GraphError holding every problem found (compiler-style diagnostics).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chanflow/channel_types.hpp"
#include "chanflow/expr.hpp"
#include "chanflow/gpu.hpp"
#include "chanflow/value.hpp"

namespace chanflow {

struct NodeType;  // chanflow/node.hpp

/// A place in a graph file; line and column are 1-based (0 when unknown).
struct SourcePos {
    std::string file;
    int line = 0;
    int column = 0;
};

struct Diagnostic {
    SourcePos pos;
    std::string message;
    /// "file:line:col: error: message" (parts without a position are left out), with
    /// control characters escaped (printable()).
    std::string str() const;
};

/// Text that may come from a stranger's file, safe to show on a terminal: control
/// characters other than newline and tab (C0, DEL and C1, which could move the cursor or
/// retitle the window) written as \xNN; everything else as it is.
std::string printable(std::string_view text);

/// Thrown when a graph cannot be loaded or checked; holds every problem found, in file order.
class GraphError : public std::runtime_error {
public:
    explicit GraphError(std::vector<Diagnostic> diags);
    const std::vector<Diagnostic>& diagnostics() const noexcept { return diags_; }

private:
    std::vector<Diagnostic> diags_;
};

// ---- the graph as written -----------------------------------------------------------------

/// A value from the graph file, with where it stood. `quoted` scalars were written in
/// quotes (their text starts one column after pos).
struct SpecValue {
    Value value;
    SourcePos pos;
    bool quoted = false;
};

struct BindingSpec {
    std::string port;
    SourcePos pos;  // of the port key
    std::vector<std::pair<std::string, SourcePos>> channels;
    std::optional<std::pair<Deliver, SourcePos>> deliver;
    bool list = false;  // written as a list: only a port that takes several channels accepts it
};

struct ProcessSpec {
    std::string name;
    SourcePos pos;  // of the process key
    std::string node;
    SourcePos node_pos;                                   // of the node type's value
    std::vector<std::pair<std::string, SpecValue>> with;  // parameter name -> value
    std::map<std::string, SourcePos> with_key_pos;
    std::optional<SpecValue> replicas;
    std::vector<BindingSpec> inputs, outputs;
    bool ordered = false;
    std::optional<int> rank;
    SourcePos rank_pos;               // of rank's value
    bool gpu = false;                 // on: gpu
    SourcePos gpu_pos;                // of on's value
    std::optional<GpuMode> gpu_mode;  // gpu: require|prefer
    SourcePos gpu_mode_pos;           // of gpu's value
    std::optional<int> device;        // device: N, the GPU it runs on
    SourcePos device_pos;
};

struct ChannelSpec {
    std::string name;
    SourcePos pos;
    std::optional<SpecValue> capacity;
    std::optional<std::pair<ChannelKind, SourcePos>> kind;
};

/// A graph as written, before checking: what the YAML loader and the Graph builder produce.
struct GraphSpec {
    std::string file;  // for diagnostics; empty for graphs built in code
    std::string name;
    std::string description;
    std::map<std::string, Value> params;
    std::optional<SpecValue> default_capacity;
    std::string backend = "threads";
    SourcePos backend_pos;
    std::optional<GpuMode> gpu_mode;  // gpu: require|prefer at the top level
    SourcePos gpu_mode_pos;
    std::vector<std::string> plugins;   // resolved paths
    std::vector<SourcePos> plugin_pos;  // where each plugin was named (parallel to plugins)
    std::vector<ChannelSpec> channels;
    std::vector<ProcessSpec> processes;
};

// ---- the checked graph ---------------------------------------------------------------------

/// One end of a channel: process index and the port's position among its channels.
struct EndRef {
    std::size_t process = 0;
    std::string port;
};

struct PlanChannel {
    std::string name;
    ChannelKind kind = ChannelKind::One2One;
    std::size_t capacity = kDefaultCapacity;
    Deliver deliver = Deliver::Any;
    std::vector<EndRef> writers, readers;  // replicas counted one by one
    bool hidden = false;                   // added by the engine: a lane of an ordered fan-out
};

struct PlanPort {
    std::string port;
    std::vector<std::size_t> channels;  // indices into Plan::channels
};

/// A map fused into the process before it on a GPU (fuse_gpu_maps): its name and expression.
struct FusedMap {
    std::string name;
    Expr expr;
};

struct PlanProcess {
    std::string name;   // "split[1]" for a replica
    std::string group;  // the process as written: "split"
    int replica = 0;
    int replicas = 1;
    const NodeType* type = nullptr;
    std::map<std::string, Value, std::less<>> params;  // given or defaulted
    std::map<std::string, Expr, std::less<>> exprs;    // compiled Expr parameters
    std::vector<PlanPort> inputs, outputs;
    SourcePos pos;
    bool ordered = false;
    std::optional<int> rank;
    SourcePos rank_pos;
    bool gpu = false;  // on: gpu (until settle_gpu_placement moves it to the CPU)
    GpuMode gpu_mode = GpuMode::Require;
    SourcePos gpu_pos;          // of on's value
    std::optional<int> device;  // device: N; else the node-local rank's
    /// The GPU maps that follow this one, fused into it: their expressions apply in turn.
    std::vector<FusedMap> fused;
    bool hidden = false;  // added by the engine: the merge of an ordered fan-out
};

/// A checked graph, ready to run: parameters substituted, replicas expanded, channel kinds
/// inferred, node types resolved.
struct Plan {
    std::string name;
    std::string file;
    std::string backend = "threads";
    std::vector<PlanProcess> processes;
    std::vector<PlanChannel> channels;
};

/// Parameter overrides: name -> text parsed as a YAML scalar (`--set`, docs/cli.md).
using Overrides = std::vector<std::pair<std::string, std::string>>;

/// What checking a graph may do beyond reading it.
struct CheckOptions {
    /// Load the native libraries a graph file names under `plugins:` (a file that names
    /// plugins is code; docs/security.md). false: none is loaded, and a node type that only
    /// a plugin would define is reported as unknown, saying so.
    bool plugins = true;
    /// What every `on: gpu` process does where no GPU can be used (`--gpu`); wins over the
    /// graph file's `gpu:`. Unset: as the file says, else require.
    std::optional<GpuMode> gpu;
    /// The architecture kernels are compiled for at check time, as in sm_90 (`--gpu-arch`);
    /// 0: 90. A run compiles for the device it runs on.
    int gpu_arch = 0;
};

/// Reads a graph file into a GraphSpec (YAML syntax, unknown keys, `${param}`, `--set`).
GraphSpec load_graph_spec(const std::string& path, const Overrides& overrides = {});
/// Parses graph text; `file` names it in diagnostics.
GraphSpec parse_graph_spec(std::string_view yaml, const std::string& file,
                           const Overrides& overrides = {});
/// Checks a GraphSpec against the node registry and builds the Plan (loads plugins first,
/// unless told not to).
Plan check_graph(const GraphSpec& spec, const CheckOptions& options = {});
/// load_graph_spec + check_graph.
Plan load_plan(const std::string& path, const Overrides& overrides = {},
               const CheckOptions& options = {});

/// Builds a graph in C++ code (the same checks apply as for a file).
class Graph {
public:
    class ProcessRef {
    public:
        ProcessRef& with(std::string param, Value v);
        ProcessRef& in(std::string port, std::string channel, Deliver deliver = Deliver::Any);
        ProcessRef& in(std::string port, std::vector<std::string> channels);
        ProcessRef& out(std::string port, std::string channel);
        ProcessRef& out(std::string port, std::vector<std::string> channels);
        ProcessRef& replicas(int n);
        ProcessRef& ordered(bool on = true);
        /// Pins the process (every replica) to partition k of the processes and MPI backends.
        ProcessRef& rank(int k);
        /// Places the process (every replica) on a GPU (docs/gpu.md).
        ProcessRef& gpu(GpuMode mode = GpuMode::Require);

    private:
        friend class Graph;
        ProcessRef(Graph& g, std::size_t i) : graph_(&g), index_(i) {}
        ProcessSpec& spec();
        Graph* graph_;
        std::size_t index_;
    };

    explicit Graph(std::string name = "graph");
    ProcessRef process(std::string name, std::string node_type);
    /// Declares a channel's capacity (0 = rendezvous); undeclared channels get
    /// kDefaultCapacity (64).
    Graph& channel(std::string name, std::size_t capacity);
    Plan plan() const;
    const GraphSpec& spec() const noexcept { return spec_; }

private:
    GraphSpec spec_;
};

/// "did you mean" helper: the closest candidate within a small edit distance, or "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

/// Loads a node library (dlopen); its CHANFLOW_NODE registrations join the registry. Refuses
/// (std::runtime_error) a library that is not a regular file owned by this user or root,
/// that others than its owner may write, or that lies in a folder others may write (without
/// the sticky bit): whoever can change the library could run code as this user. The file
/// checked is the file loaded.
void load_plugin(const std::string& path);

}  // namespace chanflow
