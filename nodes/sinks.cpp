// Sink nodes: consume a stream.
#include "../engine/src/runtime_impl.hpp"
#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task print_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& runtime = *ctx.state().runtime;
    std::string line;
    while (auto x = co_await in.read()) {
        line.clear();
        append_printed(line, *x);
        runtime.write_line(line);
    }
}

CHANFLOW_NODE({.name = "print",
               .doc = "Writes each input in printed form (SPEC §3) to stdout, one per line.",
               .ports = {in_port("in", "the values to print")},
               .body = print_body});

Task discard_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    while (co_await in.read()) {
    }
}

CHANFLOW_NODE({.name = "discard",
               .doc = "Consumes every input and drops it.",
               .ports = {in_port("in", "the values to drop")},
               .body = discard_body});

Task collect_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    while (auto x = co_await in.read()) ctx.collect(std::move(*x));
}

CHANFLOW_NODE({.name = "collect",
               .doc = "Keeps every input for the embedding program (RunResult::collected).",
               .ports = {in_port("in", "the values to keep")},
               .body = collect_body});

}  // namespace
}  // namespace chanflow
