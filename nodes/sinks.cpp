// Sink nodes: consume a stream.
#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task print_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    // Lines gather while the input port holds messages, and go to the output in one piece
    // (one lock) before a read that may wait.
    std::string lines;
    while (auto x = co_await in.read()) {
        append_printed(lines, *x);
        lines += '\n';
        if (lines.size() >= 4096 || !in.has_held()) {
            ctx.write_lines(lines);
            lines.clear();
        }
    }
}

CHANFLOW_NODE({.name = "print",
               .doc = "Writes each input to stdout, one per line: strings as they are, numbers "
                      "as Python prints them, lists and records as JSON.",
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
