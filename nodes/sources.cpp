// Source nodes: emit a sequence and retire.
#include <vector>

#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task range_body(ProcessContext& ctx) {
    const std::int64_t start = ctx.param("start").as_int();
    const std::int64_t stop = ctx.param("stop").as_int();
    const std::int64_t step = ctx.param("step").as_int();
    if (step == 0) throw std::invalid_argument("range: step must not be 0");
    auto& out = ctx.out();
    // Sent in batches of up to 64 (one channel lock per batch); each batch waits for room
    // as single writes would, so a rendezvous or a small buffer still paces the range.
    constexpr std::int64_t kBatch = 64;
    std::vector<Value> batch;
    batch.reserve(kBatch);
    auto more = [&](std::int64_t i) { return step > 0 ? i < stop : i > stop; };
    if (more(start)) {  // how many: ceil((stop - start) / step), in unsigned arithmetic
        const auto span =
            step > 0 ? static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start)
                     : static_cast<std::uint64_t>(start) - static_cast<std::uint64_t>(stop);
        const std::uint64_t stride =
            step > 0 ? static_cast<std::uint64_t>(step) : 0 - static_cast<std::uint64_t>(step);
        ctx.progress_total(span / stride + (span % stride != 0));
    }
    std::uint64_t sent = 0;
    for (std::int64_t i = start; more(i);) {
        for (std::int64_t k = 0; k < kBatch && more(i); ++k) {
            batch.emplace_back(i);
            if (__builtin_add_overflow(i, step, &i)) i = stop;  // the next one would overflow
        }
        sent += batch.size();
        co_await out.write_all(batch);
        ctx.progress_done(sent);
    }
}

CHANFLOW_NODE({.name = "range",
               .doc = "Emits the ints start, start+step, ... up to (not including) stop.",
               .params = {param("start", ParamType::Int, "first value", 0),
                          param("stop", ParamType::Int, "end of the range (excluded)"),
                          param("step", ParamType::Int, "increment (may be negative)", 1)},
               .ports = {out_port("out", "the numbers")},
               .body = range_body});

Task values_body(ProcessContext& ctx) {
    const Value items = ctx.param("items");
    auto& out = ctx.out();
    for (const Value& v : items.as_list()) co_await out.write(v);
}

CHANFLOW_NODE({.name = "values",
               .doc = "Emits each item of a list, in order.",
               .params = {param("items", ParamType::List, "the messages to emit")},
               .ports = {out_port("out", "the items")},
               .body = values_body});

// A day: longer periods are surely mistakes (and past 2^63 ns, the clock overflows).
constexpr std::int64_t kMaxTickerPeriodMs = 24 * 60 * 60 * 1000;

Task ticker_body(ProcessContext& ctx) {
    const auto period = std::chrono::milliseconds(ctx.param("period_ms").as_int());
    const std::int64_t count = ctx.param("count").as_int();
    auto& out = ctx.out();
    for (std::int64_t i = 0; i < count; ++i) {
        co_await sleep_for(period);
        co_await out.write(i);
    }
}

CHANFLOW_NODE({.name = "ticker",
               .doc = "Emits 0..count-1, one every period_ms milliseconds.",
               .params = {param("period_ms", ParamType::Int, "milliseconds between messages")
                              .within(0, kMaxTickerPeriodMs),
                          param("count", ParamType::Int, "how many messages").within(0)},
               .ports = {out_port("out", "the tick numbers")},
               .body = ticker_body});

}  // namespace
}  // namespace chanflow
