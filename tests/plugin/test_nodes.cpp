// A node library loaded at run time by a graph's `plugins:` list.
#include <chanflow/node.hpp>

#include <cstdlib>
#include <fstream>

namespace {
// A witness that the library was loaded: with CHANFLOW_TEST_PLUGIN_WITNESS set, loading
// writes that file (the tests of --no-plugins look for it).
const bool witnessed = [] {
    if (const char* path = std::getenv("CHANFLOW_TEST_PLUGIN_WITNESS"))
        std::ofstream(path) << "loaded\n";
    return true;
}();
}  // namespace

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

namespace {
// Passes its input on, and crashes the whole OS process (abort) on the value `at`: what a
// node with a memory error does. For the processes backend's crash tests.
chanflow::Task crash_at(chanflow::ProcessContext& ctx) {
    const std::int64_t at = ctx.param("at").as_int();
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) {
        if (x->as_int() == at) std::abort();
        co_await out.write(std::move(*x));
    }
}
CHANFLOW_NODE(
    {.name = "plugin.crash_at",
     .doc = "Passes its input on; calls abort() on the value `at` (from the test plugin).",
     .params = {chanflow::param("at", chanflow::ParamType::Int, "the value to crash on")},
     .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
     .body = crash_at});
}  // namespace
