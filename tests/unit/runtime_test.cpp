// The library API as an embedding program uses it: graphs built in code, custom node types
// (coroutines, plain functions, own-thread nodes), collected results, failures, deadlocks.
#include <doctest/doctest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "chanflow/chanflow.hpp"

using namespace chanflow;

namespace {

std::vector<std::int64_t> ints(const std::vector<Value>& vs) {
    std::vector<std::int64_t> out;
    for (const auto& v : vs) out.push_back(v.as_int());
    return out;
}

std::atomic<std::thread::id> own_thread_id;
std::atomic<std::thread::id> pool_thread_id;

Task blocking_sleeper(ProcessContext& ctx) {
    own_thread_id = std::this_thread::get_id();
    auto& out = ctx.out();
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // foreign blocking code
        co_await out.write(i);
    }
}

Task note_thread(ProcessContext& ctx) {
    pool_thread_id = std::this_thread::get_id();
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) co_await out.write(std::move(*x));
}

Task throw_at_three(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) {
        if (x->as_int() == 3) throw std::runtime_error("three is not allowed");
        co_await out.write(std::move(*x));
    }
}

// Emits x % 4 copies of x, spinning a while for some inputs, so that replicas finish their
// inputs out of turn and the ordered merge has something to put right.
Task uneven_copies(ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) {
        const std::int64_t v = x->as_int();
        volatile std::int64_t spin = 0;
        for (std::int64_t i = 0; i < (v % 7) * 2000; ++i) spin = spin + i;
        for (std::int64_t k = 0; k < v % 4; ++k) co_await out.write(v);
    }
}

// Emits, for k = 0..2, the int64 tensor [0, 1, 2] * (k + 1) (or a 2x2 one last, with
// `mismatch`): MPI's Reduce example.
Task rank_tensors(ProcessContext& ctx) {
    const bool mismatch = ctx.param("mismatch").as_bool();
    auto& out = ctx.out();
    for (std::int64_t k = 0; k < 3; ++k) {
        Tensor t;
        t.dtype = DType::I64;
        t.shape =
            mismatch && k == 2 ? std::vector<std::int64_t>{2, 2} : std::vector<std::int64_t>{3};
        t.data.resize(t.size() * sizeof(std::int64_t));
        for (std::size_t i = 0; i < t.size(); ++i) {
            const std::int64_t v = static_cast<std::int64_t>(i) * (k + 1);
            std::memcpy(t.data.data() + i * sizeof v, &v, sizeof v);
        }
        co_await out.write(Value(std::move(t)));
    }
}

// Computes (without yielding) for 200 ms of the clock, then writes once.
Task compute_200ms(ProcessContext& ctx) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    volatile std::uint64_t spin = 0;
    while (std::chrono::steady_clock::now() < until) spin = spin + 1;
    co_await ctx.out().write(Value(std::int64_t{1}));
}

template <class T>
std::vector<T> elements(const Value& v) {
    const Tensor& t = v.as_tensor();
    std::vector<T> out(t.size());
    std::memcpy(out.data(), t.data.data(), t.data.size());
    return out;
}

const bool registered = [] {
    NodeRegistry::global().add(
        {.name = "test.rank_tensors",
         .doc = "Emits [0, 1, 2] * (k + 1) as int64 tensors, k = 0..2.",
         .params = {param("mismatch", ParamType::Bool, "last of 2x2", false)},
         .ports = {out_port("out")},
         .body = rank_tensors});
    NodeRegistry::global().add({.name = "test.compute_200ms",
                                .doc = "Computes for 200 ms, then writes 1.",
                                .ports = {out_port("out")},
                                .body = compute_200ms});
    NodeRegistry::global().add({.name = "test.uneven_copies",
                                .doc = "Emits x % 4 copies of x after uneven work.",
                                .ports = {in_port("in"), out_port("out")},
                                .body = uneven_copies});
    NodeRegistry::global().add({.name = "test.sleeper",
                                .doc = "Blocks its thread between writes.",
                                .ports = {out_port("out")},
                                .body = blocking_sleeper,
                                .own_thread = true});
    NodeRegistry::global().add({.name = "test.note_thread",
                                .doc = "Forwards, noting its thread.",
                                .ports = {in_port("in"), out_port("out")},
                                .body = note_thread});
    NodeRegistry::global().add({.name = "test.throw_at_three",
                                .doc = "Fails on the value 3.",
                                .ports = {in_port("in"), out_port("out")},
                                .body = throw_at_three});
    register_function_node("test.negate", "Emits -x.",
                           [](const Value& x) { return Value(-x.as_int()); });
    return true;
}();

}  // namespace

TEST_CASE("runtime: a graph built in code runs and its sink collects the output") {
    for (unsigned workers : {1u, 2u, 4u}) {
        Graph g("squares");
        g.process("numbers", "range").with("stop", 5).out("out", "nums");
        g.process("square", "map").with("expr", "x * x").in("in", "nums").out("out", "sq");
        g.process("negate", "test.negate").in("in", "sq").out("out", "neg");
        g.process("sink", "collect").in("in", "neg");
        g.channel("nums", 0);
        RunResult r = run(g.plan(), {.workers = workers});
        CHECK(r.status == RunStatus::Ok);
        CHECK(r.exit_code() == 0);
        CHECK(ints(r.collected["sink"]) == std::vector<std::int64_t>{0, -1, -4, -9, -16});
    }
}

// range 0..n-1 -> `node` with `replicas` ordered replicas -> collect, on every worker count
// and capacity given; the collected values must equal `expected`.
static void check_ordered(const char* node, std::int64_t n,
                          const std::vector<std::int64_t>& expected,
                          std::initializer_list<int> replica_counts,
                          std::initializer_list<std::size_t> capacities) {
    for (int replicas : replica_counts)
        for (unsigned workers : {1u, 2u, 4u})
            for (std::size_t capacity : capacities) {
                CAPTURE(node);
                CAPTURE(replicas);
                CAPTURE(workers);
                CAPTURE(capacity);
                Graph g("ordered");
                g.process("numbers", "range").with("stop", n).out("out", "nums");
                g.process("work", node)
                    .replicas(replicas)
                    .ordered()
                    .in("in", "nums")
                    .out("out", "results");
                g.process("sink", "collect").in("in", "results");
                g.channel("nums", capacity).channel("results", capacity);
                const Plan plan = g.plan();
                CHECK(std::any_of(plan.processes.begin(), plan.processes.end(),
                                  [](const PlanProcess& p) { return p.hidden; }));
                RunResult r = run(plan, {.workers = workers});
                CHECK(r.status == RunStatus::Ok);
                CHECK(ints(r.collected["sink"]) == expected);
            }
}

TEST_CASE("runtime: ordered replicas keep the input order at any replica and worker count") {
    constexpr std::int64_t n = 3000;
    std::vector<std::int64_t> expected;
    for (std::int64_t v = 0; v < n; ++v)
        for (std::int64_t k = 0; k < v % 4; ++k) expected.push_back(v);
    check_ordered("test.uneven_copies", n, expected, {2, 3, 8}, {0, 1, 64});
}

TEST_CASE("runtime: ordered one-to-one replicas (no marks) keep the input order") {
    constexpr std::int64_t n = 5000;
    std::vector<std::int64_t> expected;
    for (std::int64_t v = 0; v < n; ++v) expected.push_back(-v);
    check_ordered("test.negate", n, expected, {2, 5}, {0, 3, 64});
}

TEST_CASE("runtime: an ordered fan-out stops cleanly when a replica fails") {
    Graph g("ordered failing");
    g.process("numbers", "range").with("stop", 100).out("out", "nums");
    g.process("check", "test.throw_at_three")
        .replicas(3)
        .ordered()
        .in("in", "nums")
        .out("out", "ok");
    g.process("sink", "collect").in("in", "ok");
    RunResult r = run(g.plan(), {.workers = 2});
    CHECK(r.status == RunStatus::Failed);
    CHECK(r.exit_code() == 1);
    CHECK(r.message == "process 'check[0]' failed: three is not allowed");
}

TEST_CASE("runtime: reduce combines tensors element-wise, as MPI's Reduce") {
    auto reduce_with = [](const char* op, bool mismatch = false) {
        Graph g("tensors");
        g.process("ranks", "test.rank_tensors").with("mismatch", mismatch).out("out", "t");
        g.process("reduce", "reduce").with("op", op).in("in", "t").out("out", "r");
        g.process("sink", "collect").in("in", "r");
        return run(g.plan(), {.workers = 2});
    };
    RunResult sum = reduce_with("sum");
    REQUIRE(sum.status == RunStatus::Ok);
    REQUIRE(sum.collected["sink"].size() == 1);
    const Value& total = sum.collected["sink"][0];
    CHECK(total.as_tensor().dtype == DType::I64);
    CHECK(total.as_tensor().shape == std::vector<std::int64_t>{3});
    CHECK(elements<std::int64_t>(total) == std::vector<std::int64_t>{0, 6, 12});
    CHECK(to_printed(total) == "[0, 6, 12]");

    RunResult max = reduce_with("max");
    CHECK(elements<std::int64_t>(max.collected["sink"].at(0)) ==
          std::vector<std::int64_t>{0, 3, 6});
    RunResult mean = reduce_with("mean");
    CHECK(mean.collected["sink"].at(0).as_tensor().dtype == DType::F64);
    CHECK(elements<double>(mean.collected["sink"].at(0)) == std::vector<double>{0.0, 2.0, 4.0});

    RunResult bad = reduce_with("sum", true);
    CHECK(bad.status == RunStatus::Failed);
    CHECK(bad.message ==
          "process 'reduce' failed: reduce: tensors of different shapes (3,) and (2, 2)");
}

TEST_CASE("runtime: an own-thread node blocks its own thread, not a worker") {
    Graph g("blocking");
    g.process("sleeper", "test.sleeper").out("out", "a");
    g.process("fwd", "test.note_thread").in("in", "a").out("out", "b");
    g.process("sink", "collect").in("in", "b");
    // A second, independent pipeline must keep flowing on the single worker meanwhile.
    g.process("numbers", "range").with("stop", 1000).out("out", "c");
    g.process("sink2", "collect").in("in", "c");
    RunResult r = run(g.plan(), {.workers = 1});
    CHECK(r.status == RunStatus::Ok);
    CHECK(ints(r.collected["sink"]) == std::vector<std::int64_t>{0, 1, 2});
    CHECK(r.collected["sink2"].size() == 1000);
    CHECK(own_thread_id.load() != pool_thread_id.load());
}

TEST_CASE("runtime: a failing process stops the run with its name and reason") {
    Graph g("failing");
    g.process("numbers", "range").with("stop", 1000000000).out("out", "a");
    g.process("check", "test.throw_at_three").in("in", "a").out("out", "b");
    g.process("sink", "collect").in("in", "b");
    g.channel("b", 0);
    RunResult r = run(g.plan(), {.workers = 2});
    CHECK(r.status == RunStatus::Failed);
    CHECK(r.exit_code() == 1);
    CHECK(r.message == "process 'check' failed: three is not allowed");
    CHECK(ints(r.collected["sink"]) == std::vector<std::int64_t>{0, 1, 2});
}

TEST_CASE("runtime: a deadlocked graph is reported, not hung") {
    Graph g("stuck");
    g.process("a", "map").with("expr", "x").in("in", "ba").out("out", "ab");
    g.process("b", "map").with("expr", "x").in("in", "ab").out("out", "ba");
    RunResult r = run(g.plan(), {.workers = 2});
    CHECK(r.status == RunStatus::Deadlock);
    CHECK(r.exit_code() == 3);
    REQUIRE(r.blocked.size() == 2);
    CHECK(r.blocked[0].rfind("'a' waits to read 'ba'", 0) == 0);
    CHECK(r.blocked[1].rfind("'b' waits to read 'ab'", 0) == 0);
}

TEST_CASE("runtime: a failure wins over a deadlock") {
    // One part fails; another part is stuck in a cycle. The run reports the failure.
    Graph g("fail-and-stuck");
    g.process("numbers", "values").with("items", Value(List{1, 3})).out("out", "a");
    g.process("check", "test.throw_at_three").in("in", "a").out("out", "b");
    g.process("sink", "collect").in("in", "b");
    g.process("x", "map").with("expr", "x").in("in", "yx").out("out", "xy");
    g.process("y", "map").with("expr", "x").in("in", "xy").out("out", "yx");
    RunResult r = run(g.plan(), {.workers = 1});
    CHECK(r.status == RunStatus::Failed);
    CHECK(r.message == "process 'check' failed: three is not allowed");
}

TEST_CASE("runtime: replicas each run the whole process, ticker paces with timers") {
    Graph g("replicas");
    g.process("numbers", "range").with("stop", 3).replicas(3).out("out", "a");
    g.process("sink", "collect").in("in", "a");
    g.process("tick", "ticker").with("period_ms", 5).with("count", 3).out("out", "t");
    g.process("ticks", "collect").in("in", "t");
    RunResult r = run(g.plan(), {.workers = 2});
    CHECK(r.status == RunStatus::Ok);
    auto got = ints(r.collected["sink"]);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::int64_t>{0, 0, 0, 1, 1, 1, 2, 2, 2});
    CHECK(ints(r.collected["ticks"]) == std::vector<std::int64_t>{0, 1, 2});
}

TEST_CASE("runtime: the statistics' times add up for a process that computes and one that waits") {
    // Their clock is refreshed every 1 to 4 ms: a 200 ms stretch is measured within a tick or
    // two, and nothing is counted twice or beyond the run's wall time.
    Graph g("times");
    g.process("work", "test.compute_200ms").out("out", "c");
    g.process("wait", "collect").in("in", "c");
    const RunResult r = run(g.plan(), {.workers = 2});
    REQUIRE(r.status == RunStatus::Ok);
    const auto of = [&](const std::string& name) {
        const auto it = std::find_if(r.stats.processes.begin(), r.stats.processes.end(),
                                     [&](const ProcessStats& p) { return p.name == name; });
        REQUIRE(it != r.stats.processes.end());
        return *it;
    };
    const ProcessStats work = of("work"), wait = of("wait");
    CAPTURE(work.busy);
    CAPTURE(wait.blocked_read);
    CAPTURE(r.stats.wall);
    CHECK(work.busy >= 0.19);
    CHECK(wait.blocked_read >= 0.19);
    CHECK(wait.busy < 0.05);
    CHECK(work.busy + work.blocked_read + work.blocked_write + work.ready <= r.stats.wall + 0.01);
    CHECK(wait.busy + wait.blocked_read + wait.blocked_write + wait.ready <= r.stats.wall + 0.01);
}

TEST_CASE("runtime: 10 000 processes built in code run on a few threads") {
    Graph g("chain");
    const int n = 10000;
    g.process("p0", "range").with("stop", 5).out("out", "c0");
    for (int i = 1; i < n - 1; ++i)
        g.process("p" + std::to_string(i), "map")
            .with("expr", "x + 1")
            .in("in", "c" + std::to_string(i - 1))
            .out("out", "c" + std::to_string(i));
    g.process("sink", "collect").in("in", "c" + std::to_string(n - 2));
    RunResult r = run(g.plan(), {.workers = 2});
    CHECK(r.status == RunStatus::Ok);
    CHECK(ints(r.collected["sink"]) == std::vector<std::int64_t>{n - 2, n - 1, n, n + 1, n + 2});
}

TEST_CASE("runtime: the default worker count follows the cores the process may run on") {
    cpu_set_t all;
    CPU_ZERO(&all);
    REQUIRE(sched_getaffinity(0, sizeof all, &all) == 0);
    CHECK(usable_cores() == static_cast<unsigned>(CPU_COUNT(&all)));
    int first = 0;
    while (!CPU_ISSET(first, &all)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);  // as `taskset -c K` or mpirun's binding
    struct Restore {  // the other tests run on every core again, whatever happens here
        cpu_set_t& set;
        ~Restore() { sched_setaffinity(0, sizeof set, &set); }
    } restore{all};
    CHECK(usable_cores() == 1);
    // The run still works on one core with the default worker count.
    Graph g("one_core");
    g.process("src", "range").with("stop", 100).out("out", "c");
    g.process("sink", "collect").in("in", "c");
    const RunResult r = run(g.plan(), {});
    CHECK(r.status == RunStatus::Ok);
    CHECK(r.collected.at("sink").size() == 100);
}
