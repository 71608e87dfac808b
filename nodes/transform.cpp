// Per-message transforms driven by expressions.
#include <exception>
#include <vector>

#include "chanflow/expr.hpp"
#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task map_body(ProcessContext& ctx) {
    const Expr& f = ctx.expr("expr");
    auto& in = ctx.in();
    auto& out = ctx.out();
    // While the input port holds messages (taken from the channel at once), the results
    // gather and go out in one write_all: one lock of the output channel per batch. They
    // go before any read that may wait, and before a failure is passed on.
    constexpr std::size_t kBatch = 256;
    std::vector<Value> results;
    while (auto x = co_await in.read()) {
        std::exception_ptr failed;
        try {
            results.push_back(f(*x));
        } catch (...) {
            failed = std::current_exception();
        }
        if (failed || results.size() >= kBatch || in.marks_boundaries() || !in.has_held())
            co_await out.write_all(results);
        if (failed) std::rethrow_exception(failed);
    }
}

CHANFLOW_NODE({.name = "map",
               .doc = "Emits expr(x) for every input x.",
               .params = {param("expr", ParamType::Expr, "expression over the message x")},
               .ports = {in_port("in"), out_port("out")},
               .body = map_body,
               .one_to_one = true});

Task filter_body(ProcessContext& ctx) {
    const Expr& keep = ctx.expr("expr");
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read())
        if (truthy(keep(*x))) co_await out.write(std::move(*x));
}

CHANFLOW_NODE({.name = "filter",
               .doc = "Emits the inputs x for which expr(x) is true.",
               .params = {param("expr", ParamType::Expr, "condition over the message x")},
               .ports = {in_port("in"), out_port("out")},
               .body = filter_body});

Task take_body(ProcessContext& ctx) {
    const std::int64_t count = ctx.param("count").as_int();
    auto& in = ctx.in();
    auto& out = ctx.out();
    for (std::int64_t i = 0; i < count; ++i) {
        auto x = co_await in.read();
        if (!x) break;
        co_await out.write(std::move(*x));
    }
}

CHANFLOW_NODE({.name = "take",
               .doc = "Forwards the first count messages, then retires (upstream writers see "
                      "the end).",
               .params = {param("count", ParamType::Int, "how many messages to forward").within(0)},
               .ports = {in_port("in"), out_port("out")},
               .body = take_body});

}  // namespace
}  // namespace chanflow
