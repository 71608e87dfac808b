// Builds a graph in code with its own node types (a coroutine and a plain function),
// runs it, and prints what the sink collected.
#include <chanflow/chanflow.hpp>
#include <iostream>

namespace {
chanflow::Task scale(chanflow::ProcessContext& ctx) {
    const auto k = ctx.param("k").as_int();
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) co_await out.write(x->as_int() * k);
}
CHANFLOW_NODE({.name = "consumer.scale",
               .doc = "Multiplies each input by k.",
               .params = {chanflow::param("k", chanflow::ParamType::Int, "the factor", 2)},
               .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
               .body = scale});
}  // namespace

int main() {
    chanflow::register_function_node("consumer.negate", "Emits -x.", [](const chanflow::Value& x) {
        return chanflow::Value(-x.as_int());
    });
    chanflow::Graph g("consumer");
    g.process("numbers", "range").with("stop", 4).out("out", "a");
    g.process("scale", "consumer.scale").with("k", 10).in("in", "a").out("out", "b");
    g.process("negate", "consumer.negate").in("in", "b").out("out", "c");
    g.process("sink", "collect").in("in", "c");
    g.channel("a", 0);
    const chanflow::RunResult r = chanflow::run(g.plan());
    if (r.status != chanflow::RunStatus::Ok) {
        std::cerr << r.message << '\n';
        return 1;
    }
    for (const auto& v : r.collected.at("sink")) std::cout << chanflow::to_printed(v) << '\n';
    return 0;
}
