// Routing nodes of occam and CSP: merge, delta, prefix.
#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task merge_body(ProcessContext& ctx) {
    Alternation alt(ctx.param("priority").as_bool());
    for (InPort* in : ctx.ins("in")) alt.add_input(*in);
    auto& out = ctx.out();
    for (;;) {
        AltResult r = co_await alt.select();
        if (r.kind == AltResult::End) break;
        co_await out.write(std::move(r.value));
    }
}

CHANFLOW_NODE({.name = "merge",
               .doc = "Forwards messages from all inputs as they come, by fair alternation "
                      "(or by input order with priority).",
               .params = {param("priority", ParamType::Bool,
                                "prefer earlier inputs instead of fair choice", false)},
               .ports = {in_ports("in", "the inputs (a list)"),
                         out_port("out", "the merged stream")},
               .body = merge_body});

Task delta_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto outs = ctx.outs("out");
    while (auto x = co_await in.read())
        for (OutPort* out : outs) co_await out->write(*x);
}

CHANFLOW_NODE({.name = "delta",
               .doc = "Copies each input to every output, in order (occam Delta); stops when "
                      "any output has no reader left.",
               .ports = {in_port("in", "the stream"), out_ports("out", "the copies (a list)")},
               .body = delta_body});

Task prefix_body(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    co_await out.write(ctx.param("value"));
    while (auto x = co_await in.read()) co_await out.write(std::move(*x));
}

CHANFLOW_NODE({.name = "prefix",
               .doc = "Emits value, then copies its input to its output (occam Prefix).",
               .params = {param("value", ParamType::Any, "the first message", 0)},
               .ports = {in_port("in", "the stream"), out_port("out", "value, then the stream")},
               .body = prefix_body});

}  // namespace
}  // namespace chanflow
