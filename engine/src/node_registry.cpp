#include <algorithm>
#include <limits>
#include <mutex>

#include "chanflow/node.hpp"

namespace chanflow {

const char* param_type_name(ParamType t) noexcept {
    switch (t) {
        case ParamType::Any:
            return "any";
        case ParamType::Int:
            return "int";
        case ParamType::Float:
            return "float";
        case ParamType::Number:
            return "number";
        case ParamType::Bool:
            return "bool";
        case ParamType::String:
            return "string";
        case ParamType::List:
            return "list";
        case ParamType::Expr:
            return "expr";
    }
    return "?";
}

std::string ParamSpec::range_text() const {
    constexpr auto lowest = std::numeric_limits<std::int64_t>::min();
    constexpr auto highest = std::numeric_limits<std::int64_t>::max();
    if (min == lowest && max == highest) return "";
    if (max == highest) return "an int >= " + std::to_string(min);
    if (min == lowest) return "an int <= " + std::to_string(max);
    return "an int from " + std::to_string(min) + " to " + std::to_string(max);
}

const ParamSpec* NodeType::find_param(std::string_view n) const noexcept {
    for (const auto& p : params)
        if (p.name == n) return &p;
    return nullptr;
}

const PortSpec* NodeType::find_port(std::string_view n) const noexcept {
    for (const auto& p : ports)
        if (p.name == n) return &p;
    return nullptr;
}

namespace {
std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
}  // namespace

NodeRegistry& NodeRegistry::global() {
    static NodeRegistry registry;
    return registry;
}

void NodeRegistry::add(NodeType type) {
    std::lock_guard lock(registry_mutex());
    for (auto& t : types_)
        if (t->name == type.name) {
            *t = std::move(type);
            return;
        }
    types_.push_back(std::make_unique<NodeType>(std::move(type)));
}

const NodeType* NodeRegistry::find(std::string_view name) const noexcept {
    std::lock_guard lock(registry_mutex());
    for (const auto& t : types_)
        if (t->name == name) return t.get();
    return nullptr;
}

std::vector<const NodeType*> NodeRegistry::all() const {
    std::lock_guard lock(registry_mutex());
    std::vector<const NodeType*> out;
    for (const auto& t : types_) out.push_back(t.get());
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name < b->name; });
    return out;
}

namespace {
Task function_node_body(ProcessContext& ctx) {
    const NodeFunction& f = ctx.node_type().function;
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) co_await out.write(f(*x));
}
}  // namespace

void register_function_node(std::string name, std::string doc, NodeFunction f) {
    NodeType t;
    t.name = std::move(name);
    t.doc = std::move(doc);
    t.ports = {in_port("in"), out_port("out")};
    t.body = function_node_body;
    t.function = std::move(f);
    t.one_to_one = true;
    NodeRegistry::global().add(std::move(t));
}

}  // namespace chanflow
