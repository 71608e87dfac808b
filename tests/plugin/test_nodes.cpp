// A node library loaded at run time by a graph's `plugins:` list.
#include <chanflow/node.hpp>

namespace {
chanflow::Task triple(chanflow::ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) co_await out.write(x->as_int() * 3);
}
CHANFLOW_NODE({.name = "plugin.triple",
               .doc = "Emits 3x (from the test plugin).",
               .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
               .body = triple});
}  // namespace
