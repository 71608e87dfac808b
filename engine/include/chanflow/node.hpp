// chanflow/node.hpp — node types: what a node is called, takes and does, declared once.
//
// One declaration feeds `chanflow check` (parameters and ports are validated against it),
// `chanflow nodes` (its documentation) and the runtime (its body):
//
//   chanflow::Task scale(chanflow::ProcessContext& ctx) {
//       const auto k = ctx.param("k").as_int();
//       while (auto x = co_await ctx.in().read()) co_await ctx.out().write(x->as_int() * k);
//   }
//   CHANFLOW_NODE({.name = "scale", .doc = "Multiplies each input by k.",
//                  .params = {chanflow::param("k", chanflow::ParamType::Int, "the factor", 2)},
//                  .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
//                  .body = scale});
//
// A plain function works too, as a node that emits f(x) for every input x:
//   chanflow::register_function_node("negate", "Emits -x.", [](const chanflow::Value& x) {
//       return chanflow::Value(-x.as_int());
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chanflow/process.hpp"
#include "chanflow/value.hpp"

namespace chanflow {

enum class ParamType : std::uint8_t { Any, Int, Float, Number, Bool, String, List, Expr };
const char* param_type_name(ParamType t) noexcept;

struct ParamSpec {
    std::string name;
    ParamType type = ParamType::Any;
    std::string doc;
    std::optional<Value> default_value;  // none: the parameter is required
    /// An Int parameter's smallest and largest value, checked with the graph
    /// (`chanflow check`): a node body never sees an int outside them.
    std::int64_t min = std::numeric_limits<std::int64_t>::min();
    std::int64_t max = std::numeric_limits<std::int64_t>::max();

    bool required() const noexcept { return !default_value; }
    /// "" when any int will do, else "an int >= 0" or "an int from 1 to 100".
    std::string range_text() const;
    /// This parameter, taking only ints from lo to hi:
    ///   param("count", ParamType::Int, "how many").within(0)
    ParamSpec within(std::int64_t lo,
                     std::int64_t hi = std::numeric_limits<std::int64_t>::max()) && {
        min = lo;
        max = hi;
        return std::move(*this);
    }
};

enum class PortDir : std::uint8_t { In, Out };

struct PortSpec {
    std::string name;
    PortDir dir = PortDir::In;
    bool multi = false;    // takes a list of channels
    bool required = true;  // must be bound
    std::string doc;
};

/// A required parameter.
inline ParamSpec param(std::string name, ParamType type, std::string doc) {
    ParamSpec p;
    p.name = std::move(name);
    p.type = type;
    p.doc = std::move(doc);
    return p;
}
/// A parameter with a default.
inline ParamSpec param(std::string name, ParamType type, std::string doc, Value dflt) {
    ParamSpec p = param(std::move(name), type, std::move(doc));
    p.default_value = std::move(dflt);
    return p;
}
inline PortSpec in_port(std::string name, std::string doc = {}) {
    return PortSpec{std::move(name), PortDir::In, false, true, std::move(doc)};
}
inline PortSpec out_port(std::string name, std::string doc = {}) {
    return PortSpec{std::move(name), PortDir::Out, false, true, std::move(doc)};
}
inline PortSpec in_ports(std::string name, std::string doc = {}) {
    return PortSpec{std::move(name), PortDir::In, true, true, std::move(doc)};
}
inline PortSpec out_ports(std::string name, std::string doc = {}) {
    return PortSpec{std::move(name), PortDir::Out, true, true, std::move(doc)};
}

using NodeBody = std::function<Task(ProcessContext&)>;
using NodeFunction = std::function<Value(const Value&)>;

struct NodeType {
    std::string name;
    std::string doc;
    std::vector<ParamSpec> params;
    std::vector<PortSpec> ports;
    NodeBody body;
    /// The node blocks in foreign code: run its process on a thread of its own.
    bool own_thread = false;
    /// For nodes made from a plain function (register_function_node).
    NodeFunction function;
    /// Writes exactly one message per input, in order, and nothing else (map-like): an
    /// ordered fan-out of it needs no boundary marks between inputs.
    bool one_to_one = false;
    /// Its ports are named by the graph: any name under `in:` is an input and any under
    /// `out:` an output, each of one channel (`ports` then lists none).
    bool open_ports = false;

    const ParamSpec* find_param(std::string_view n) const noexcept;
    const PortSpec* find_port(std::string_view n) const noexcept;
};

/// Every node type known to this program: built-ins, plugins and embedder's own.
class NodeRegistry {
public:
    static NodeRegistry& global();
    /// Adds a node type; a second type of the same name replaces the first.
    void add(NodeType type);
    const NodeType* find(std::string_view name) const noexcept;
    /// All node types, sorted by name.
    std::vector<const NodeType*> all() const;

private:
    std::vector<std::unique_ptr<NodeType>> types_;
};

/// Registers a node that emits f(x) for each input x (ports `in` and `out`).
void register_function_node(std::string name, std::string doc, NodeFunction f);

namespace detail {
struct NodeRegistrar {
    explicit NodeRegistrar(NodeType t) { NodeRegistry::global().add(std::move(t)); }
};
}  // namespace detail

}  // namespace chanflow

#define CHANFLOW_CONCAT_(a, b) a##b
#define CHANFLOW_CONCAT(a, b) CHANFLOW_CONCAT_(a, b)
/// Registers a node type when the program (or plugin) is loaded.
#define CHANFLOW_NODE(...)                                          \
    static const ::chanflow::detail::NodeRegistrar CHANFLOW_CONCAT( \
        chanflow_node_, __LINE__)(::chanflow::NodeType __VA_ARGS__)
