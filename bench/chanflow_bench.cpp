// chanflow_bench — chanflow side by side with the baselines that do the same work.
//
// Every benchmark interleaves chanflow and its baselines run by run (these virtual machines
// are shared and noisy) and reports the median of each and the median of the per-round
// ratios. Usage:
//   chanflow_bench [all|channel|pingpong|pipeline|commstime|ring|load] [--rounds N] [--scale F]
//                  [--workers N]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <tbb/concurrent_queue.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>

#include "bench_util.hpp"
#include "chanflow/chanflow.hpp"

namespace {

using chanflow::bench::Comparison;
using chanflow::bench::make;
using chanflow::bench::median;
using chanflow::bench::seconds_of;

struct Options {
    int rounds = 5;
    double scale = 1.0;
    unsigned workers = 2;
};

// ---- baselines -----------------------------------------------------------------------------

// A plain single-producer single-consumer ring with cache-padded indices, spinning when full
// or empty: the floor for moving ints between two threads.
struct alignas(64) SpscRing {
    static constexpr std::size_t kSize = 1024;
    alignas(64) std::atomic<std::size_t> head{0};
    alignas(64) std::atomic<std::size_t> tail{0};
    alignas(64) std::int64_t slots[kSize];
};

std::int64_t spsc_ring_transfer(std::int64_t n) {
    auto ring = std::make_unique<SpscRing>();
    std::int64_t sum = 0;
    std::thread consumer([&] {
        std::size_t h = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            while (ring->tail.load(std::memory_order_acquire) == h) {
            }
            sum += ring->slots[h % SpscRing::kSize];
            ring->head.store(++h, std::memory_order_release);
        }
    });
    std::size_t t = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        while (t - ring->head.load(std::memory_order_acquire) == SpscRing::kSize) {
        }
        ring->slots[t % SpscRing::kSize] = i;
        ring->tail.store(++t, std::memory_order_release);
    }
    consumer.join();
    return sum;
}

std::int64_t tbb_queue_transfer(std::int64_t n, std::size_t capacity) {
    tbb::concurrent_bounded_queue<std::int64_t> q;
    q.set_capacity(static_cast<std::ptrdiff_t>(capacity));
    std::int64_t sum = 0;
    std::thread consumer([&] {
        std::int64_t v = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            q.pop(v);
            sum += v;
        }
    });
    for (std::int64_t i = 0; i < n; ++i) q.push(i);
    consumer.join();
    return sum;
}

// Two threads bouncing a counter through one cache line each way, spinning: the fastest
// possible cross-thread round trip.
void spinning_pingpong(std::int64_t n) {
    alignas(64) std::atomic<std::int64_t> ping{-1};
    alignas(64) std::atomic<std::int64_t> pong{-1};
    std::thread other([&] {
        for (std::int64_t i = 0; i < n; ++i) {
            while (ping.load(std::memory_order_acquire) != i) {
            }
            pong.store(i, std::memory_order_release);
        }
    });
    for (std::int64_t i = 0; i < n; ++i) {
        ping.store(i, std::memory_order_release);
        while (pong.load(std::memory_order_acquire) != i) {
        }
    }
    other.join();
}

std::int64_t tbb_flow_pipeline(std::int64_t n) {
    using namespace tbb::flow;
    graph g;
    std::int64_t next = 0;
    std::int64_t sum = 0;
    input_node<std::int64_t> source(g, [&](tbb::flow_control& fc) -> std::int64_t {
        if (next >= n) {
            fc.stop();
            return 0;
        }
        return next++;
    });
    function_node<std::int64_t, std::int64_t> map(g, unlimited,
                                                  [](std::int64_t x) { return x * 2 + 1; });
    function_node<std::int64_t, continue_msg> reduce(g, serial, [&](std::int64_t x) {
        sum += x;
        return continue_msg();
    });
    make_edge(source, map);
    make_edge(map, reduce);
    source.activate();
    g.wait_for_all();
    return sum;
}

// ---- chanflow graphs -----------------------------------------------------------------------

chanflow::RunResult run_graph(const chanflow::Graph& g, unsigned workers) {
    chanflow::RunOptions o;
    o.workers = workers;
    auto r = chanflow::run(g.plan(), o);
    if (r.status != chanflow::RunStatus::Ok) {
        std::fprintf(stderr, "benchmark graph failed: %s\n", r.message.c_str());
        std::exit(1);
    }
    return r;
}

chanflow::Task ping_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    auto& out = ctx.out();
    auto& in = ctx.in();
    for (std::int64_t i = 0; i < n; ++i) {
        co_await out.write(i);
        co_await in.read();
    }
}

// The classic commstime consumer: reads n values, then stops (retiring its input).
chanflow::Task consume_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    auto& in = ctx.in();
    for (std::int64_t i = 0; i < n; ++i)
        if (!co_await in.read()) break;
}

// Writes 0..n-1 one write at a time (range sends batches): the channel's per-message cost.
chanflow::Task count_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    auto& out = ctx.out();
    for (std::int64_t i = 0; i < n; ++i) co_await out.write(i);
}

void register_bench_nodes() {
    chanflow::NodeRegistry::global().add(
        {.name = "bench.count",
         .doc = "Writes 0..n-1, one write each.",
         .params = {chanflow::param("n", chanflow::ParamType::Int, "values to write")},
         .ports = {chanflow::out_port("out")},
         .body = count_body});
    chanflow::NodeRegistry::global().add(
        {.name = "bench.consume",
         .doc = "Reads n values, then stops.",
         .params = {chanflow::param("n", chanflow::ParamType::Int, "values to read")},
         .ports = {chanflow::in_port("in")},
         .body = consume_body});
    chanflow::NodeRegistry::global().add(
        {.name = "bench.ping",
         .doc = "Writes 0..n-1, waiting for each reply.",
         .params = {chanflow::param("n", chanflow::ParamType::Int, "round trips")},
         .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
         .body = ping_body});
}

void bench_channel(const Options& o) {
    const auto n = static_cast<std::int64_t>(10'000'000 * o.scale);
    chanflow::Graph g("channel");
    g.process("src", "bench.count").with("n", n).out("out", "c");
    g.process("sink", "discard").in("in", "c");
    g.channel("c", 64);
    auto c = make("(a) one2one buffered channel, capacity 64", "msg", static_cast<double>(n),
                  {"chanflow count -> discard (single writes)", "plain SPSC ring (1024, spinning)",
                   "oneTBB concurrent_bounded_queue (64)"});
    for (int r = 0; r < o.rounds; ++r) {
        c.add(0, seconds_of([&] { run_graph(g, o.workers); }));
        c.add(1, seconds_of([&] { spsc_ring_transfer(n); }));
        c.add(2, seconds_of([&] { tbb_queue_transfer(n / 10, 64); }) * 10);
    }
    c.print();
}

void bench_pingpong(const Options& o) {
    const auto n = static_cast<std::int64_t>(1'000'000 * o.scale);
    chanflow::Graph g("pingpong");
    g.process("ping", "bench.ping").with("n", n).out("out", "there").in("in", "back");
    g.process("pong", "map").with("expr", "x").in("in", "there").out("out", "back");
    g.channel("there", 0).channel("back", 0);
    auto c = make("(b) rendezvous ping-pong", "round trip", static_cast<double>(n),
                  {"chanflow ping <-> pong (capacity 0)", "spinning ping-pong, 2 threads"});
    for (int r = 0; r < o.rounds; ++r) {
        c.add(0, seconds_of([&] { run_graph(g, o.workers); }));
        c.add(1, seconds_of([&] { spinning_pingpong(n); }));
    }
    c.print();
}

void bench_pipeline(const Options& o) {
    const auto n = static_cast<std::int64_t>(10'000'000 * o.scale);
    chanflow::Graph g("pipeline");
    g.process("src", "range").with("stop", n).out("out", "a");
    g.process("map", "map").with("expr", "x * 2 + 1").in("in", "a").out("out", "b");
    g.process("sum", "reduce").with("op", "sum").in("in", "b").out("out", "total");
    g.process("keep", "collect").in("in", "total");
    auto c = make("(c) 3-stage pipeline range -> map(x*2+1) -> reduce(sum)", "msg",
                  static_cast<double>(n), {"chanflow graph", "oneTBB flow graph"});
    for (int r = 0; r < o.rounds; ++r) {
        c.add(0, seconds_of([&] {
                  auto res = run_graph(g, o.workers);
                  if (res.collected["keep"].at(0).as_int() != n * n) std::exit(1);
              }));
        c.add(1, seconds_of([&] {
                     if (tbb_flow_pipeline(n / 10) != (n / 10) * (n / 10)) std::exit(1);
                 }) * 10);
    }
    c.print();
}

void bench_commstime(const Options& o) {
    const auto n = static_cast<std::int64_t>(1'000'000 * o.scale);
    chanflow::Graph g("commstime");
    g.process("prefix", "prefix").with("value", 0).in("in", "c").out("out", "a");
    g.process("delta", "delta").in("in", "a").out("out", std::vector<std::string>{"b", "d"});
    g.process("succ", "map").with("expr", "x + 1").in("in", "b").out("out", "c");
    g.process("consumer", "bench.consume").with("n", n).in("in", "d");
    for (const char* ch : {"a", "b", "c", "d"}) g.channel(ch, 0);
    auto c = make("(d) commstime (4 rendezvous communications per cycle)", "comm",
                  static_cast<double>(n) * 4,
                  {"chanflow commstime", "spinning ping-pong round trip, per comm"});
    for (int r = 0; r < o.rounds; ++r) {
        c.add(0, seconds_of([&] { run_graph(g, o.workers); }));
        c.add(1, seconds_of([&] { spinning_pingpong(n); }) * 4);
    }
    c.print();
}

// Runs in a child process so that its peak memory is its own.
void bench_ring_child(const Options& o) {
    const int n = 100'000;
    const int turns = std::max(1, static_cast<int>(3 * o.scale));
    chanflow::Graph g("ring");
    auto link = [](int i) { return "r" + std::to_string(i); };
    g.process("p0", "prefix").with("value", 0).in("in", link(n - 1)).out("out", link(0));
    for (int i = 1; i < n - 1; ++i)
        g.process("p" + std::to_string(i), "map")
            .with("expr", "x + 1")
            .in("in", link(i - 1))
            .out("out", link(i));
    g.process("last", "take").with("count", turns).in("in", link(n - 2)).out("out", link(n - 1));
    chanflow::Plan plan;
    const double build = seconds_of([&] { plan = g.plan(); });
    const double secs = seconds_of([&] {
        chanflow::RunOptions opt;
        opt.workers = o.workers;
        chanflow::run(plan, opt);
    });
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("\n(e) token ring of %d processes, %d turns\n", n, turns);
    std::printf("  plan built in %.3f s; run %.3f s; %.1f ns per hop; peak memory %.1f MiB\n",
                build, secs, secs / (double(n) * turns) * 1e9, ru.ru_maxrss / 1024.0);
}

// Loading and checking a graph file of 10 000 processes (a chain of maps).
void bench_load(const Options& o) {
    const int n = 10'000;
    char dir_template[] = "/tmp/chanflow-bench-XXXXXX";
    const std::string dir = mkdtemp(dir_template);
    const std::string path = dir + "/chain.yaml";
    {
        std::FILE* f = std::fopen(path.c_str(), "w");
        std::fprintf(
            f, "chanflow: 1\nprocesses:\n  p0: {node: range, with: {stop: 10}, out: {out: c0}}\n");
        for (int i = 1; i < n - 1; ++i)
            std::fprintf(f,
                         "  p%d: {node: map, with: {expr: \"x * 2 + %d\"}, in: {in: c%d}, out: "
                         "{out: c%d}}\n",
                         i, i, i - 1, i);
        std::fprintf(f, "  sink: {node: discard, in: {in: c%d}}\n", n - 2);
        std::fclose(f);
    }
    std::vector<double> secs;
    for (int r = 0; r < o.rounds; ++r)
        secs.push_back(seconds_of([&] { chanflow::load_plan(path); }));
    std::remove(path.c_str());
    rmdir(dir.c_str());
    std::printf("\n(f) load + check a graph file of %d processes: median %.3f s (best %.3f s)\n", n,
                median(secs), *std::min_element(secs.begin(), secs.end()));
}

void bench_ring(const Options& o, const char* self) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        bench_ring_child(o);
        std::fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    (void)self;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string which = "all";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rounds" && i + 1 < argc)
            o.rounds = std::atoi(argv[++i]);
        else if (a == "--scale" && i + 1 < argc)
            o.scale = std::atof(argv[++i]);
        else if (a == "--workers" && i + 1 < argc)
            o.workers = static_cast<unsigned>(std::atoi(argv[++i]));
        else
            which = a;
    }
    // The ring runs first, in a forked child, before any thread exists in this process.
    if (which == "all" || which == "ring") bench_ring(o, argv[0]);
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, o.workers);
    register_bench_nodes();
    std::printf("chanflow %s, %u workers, %u cores\n", chanflow::version(), o.workers,
                std::thread::hardware_concurrency());
    if (which == "all" || which == "channel") bench_channel(o);
    if (which == "all" || which == "pingpong") bench_pingpong(o);
    if (which == "all" || which == "pipeline") bench_pipeline(o);
    if (which == "all" || which == "commstime") bench_commstime(o);
    if (which == "all" || which == "load") bench_load(o);
    return 0;
}
