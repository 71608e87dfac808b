// Completion: a process waits for work finished on a thread of its own, the way a GPU
// process waits for its stream, and is no part of a deadlock meanwhile.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "chanflow/chanflow.hpp"

using namespace chanflow;

namespace {

// Doubles each input on a thread of its own; `delay` ms before completing (0: at once, so
// that complete() often comes before the wait: the wait must then pass).
Task double_elsewhere(ProcessContext& ctx) {
    const auto delay = std::chrono::milliseconds(ctx.param("delay").as_int());
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) {
        Completion done;
        std::int64_t result = 0;
        const std::int64_t v = x->as_int();
        std::thread worker([&done, &result, v, delay] {
            if (delay.count()) std::this_thread::sleep_for(delay);
            result = 2 * v;
            done.complete();
        });
        co_await wait_for(done);
        worker.join();
        CHECK(done.done());
        co_await out.write(result);
    }
}

const bool registered = [] {
    NodeRegistry::global().add({.name = "test.double_elsewhere",
                                .doc = "Doubles each input on a thread of its own.",
                                .params = {param("delay", ParamType::Int, "ms before done", 0)},
                                .ports = {in_port("in"), out_port("out")},
                                .body = double_elsewhere});
    return true;
}();

RunResult run_doubling(std::int64_t n, std::int64_t delay, unsigned workers) {
    Graph g("elsewhere");
    g.process("numbers", "range").with("stop", n).out("out", "a");
    g.process("double", "test.double_elsewhere").with("delay", delay).in("in", "a").out("out", "b");
    g.process("sum", "reduce").in("in", "b").out("out", "c");
    g.process("sink", "collect").in("in", "c");
    return run(g.plan(), {.workers = workers});
}

}  // namespace

TEST_CASE("completion: a process waiting on work elsewhere is no deadlock, and is woken") {
    REQUIRE(registered);
    // With one worker and everything else blocked on the waiting process, only the pending
    // completion keeps this from being a deadlock.
    for (unsigned workers : {1u, 2u}) {
        const RunResult slow = run_doubling(5, 20, workers);
        CHECK(slow.status == RunStatus::Ok);
        REQUIRE(slow.collected.at("sink").size() == 1);
        CHECK(slow.collected.at("sink")[0].as_int() == 20);
        // Completed at once: complete() races the wait, often winning.
        const RunResult fast = run_doubling(2000, 0, workers);
        CHECK(fast.status == RunStatus::Ok);
        REQUIRE(fast.collected.at("sink").size() == 1);
        CHECK(fast.collected.at("sink")[0].as_int() == 1999 * 2000);
    }
}

TEST_CASE("completion: complete() before the wait lets it pass, and reset() starts a new round") {
    Completion c;
    CHECK(!c.done());
    c.complete();
    CHECK(c.done());
    c.complete();  // twice is once
    CHECK(c.done());
    c.reset();
    CHECK(!c.done());
}
