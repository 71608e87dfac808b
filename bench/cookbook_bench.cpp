// cookbook_bench — the cookbook graphs of graphs/ against the programs users would write
// instead: a tight single-threaded C++ word count, Python's multiprocessing.Pool(2), two
// std::threads sampling pi, a C++ lambda instead of a map expression.
//
// Run from the source tree (it reads graphs/ and bench/python/):
//   build/bin/chanflow_cookbook_bench [all|wordcount|poolmap|pi|expr] [--rounds N]
//                                     [--workers N] [--mb N]
// chanflow runs in this process through the library (print goes to /dev/null); Python runs
// as a child process with its output to /dev/null. Rounds interleave the contenders.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_util.hpp"
#include "chanflow/chanflow.hpp"

namespace {

namespace fs = std::filesystem;
using chanflow::bench::make;
using chanflow::bench::seconds_of;

struct Options {
    int rounds = 3;
    unsigned workers = 2;
    int mb = 50;
    fs::path tools;  // where chanflow-textgen is (beside this program)
};

std::FILE* dev_null() {
    static std::FILE* f = std::fopen("/dev/null", "w");
    return f;
}

void run_file(const std::string& graph, const chanflow::Overrides& set, unsigned workers) {
    const chanflow::Plan plan = chanflow::load_plan(graph, set);
    chanflow::RunOptions o;
    o.workers = workers;
    o.output = dev_null();
    const auto r = chanflow::run(plan, o);
    if (r.status != chanflow::RunStatus::Ok) {
        std::fprintf(stderr, "%s failed: %s\n", graph.c_str(), r.message.c_str());
        std::exit(1);
    }
}

// Runs a command line through the shell, stdout to /dev/null; exits on failure.
void run_command(const std::string& command) {
    const std::string line = command + " > /dev/null";
    if (std::system(line.c_str()) != 0) {
        std::fprintf(stderr, "baseline failed: %s\n", command.c_str());
        std::exit(1);
    }
}

bool have_python() {
    return std::system("python3 -c 'import multiprocessing' > /dev/null 2>&1") == 0;
}

// ---- word count ----------------------------------------------------------------------------

// The tight single-threaded word count a C++ programmer writes: one pass over the file,
// words as text.words defines them (docs/nodes.md), counted in std::unordered_map, top 10.
std::vector<std::pair<std::string, long>> cpp_wordcount(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::unordered_map<std::string, long> counts;
    std::string line, word;
    auto space = [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    auto punct = [](unsigned char c) { return c < 128 && std::ispunct(c); };
    while (std::getline(in, line)) {
        const std::size_t n = line.size();
        std::size_t i = 0;
        while (i < n) {
            while (i < n && space(static_cast<unsigned char>(line[i]))) ++i;
            std::size_t j = i;
            while (j < n && !space(static_cast<unsigned char>(line[j]))) ++j;
            std::size_t b = i, e = j;
            while (b < e && punct(static_cast<unsigned char>(line[b]))) ++b;
            while (e > b && punct(static_cast<unsigned char>(line[e - 1]))) --e;
            if (b < e) {
                word.assign(line, b, e - b);
                for (char& c : word)
                    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
                ++counts[word];
            }
            i = j;
        }
    }
    std::vector<std::pair<std::string, long>> top(counts.begin(), counts.end());
    const auto k = std::min<std::size_t>(10, top.size());
    std::partial_sort(top.begin(), top.begin() + static_cast<long>(k), top.end(),
                      [](const auto& a, const auto& b) {
                          return a.second != b.second ? a.second > b.second : a.first < b.first;
                      });
    top.resize(k);
    return top;
}

void bench_wordcount(const Options& o) {
    const fs::path dir = fs::temp_directory_path() / ("chanflow-bench-" + std::to_string(getpid()));
    fs::create_directories(dir);
    const std::string text = (dir / "text.txt").string();
    run_command((o.tools / "chanflow-textgen").string() + " --mb " + std::to_string(o.mb) + " -o " +
                text);
    const std::function<void()> chanflow = [&] {
        run_file("graphs/wordcount.yaml", {{"path", text}}, o.workers);
    };
    const std::function<void()> per_word = [&] {
        run_file("bench/graphs/wordcount_per_word.yaml", {{"path", text}}, o.workers);
    };
    const std::function<void()> cpp = [&] { cpp_wordcount(text); };
    const std::function<void()> pool = [&] {
        run_command("python3 bench/python/wordcount_pool.py " + text);
    };
    // Two tables, each chanflow against one contestant round by round: a run right after a
    // Python pool's seconds of full load on both cores takes up to 50% more CPU on these
    // VMs (see bench/RESULTS.md), so the Python rounds come after the C++ ones, not between.
    const std::string title =
        "(g) word count of " + std::to_string(o.mb) + " MiB of generated text";
    auto c = make(title, "MiB", o.mb,
                  {"chanflow graphs/wordcount.yaml", "C++ std::unordered_map, 1 thread",
                   "chanflow without the combiner (a message per word)"});
    c.warm_up({chanflow, cpp, per_word});
    for (int r = 0; r < o.rounds; ++r)
        c.round(static_cast<std::size_t>(r), {chanflow, cpp, per_word},
                std::chrono::milliseconds(1500));
    c.print();
    if (have_python()) {
        auto p = make(title, "MiB", o.mb,
                      {"chanflow graphs/wordcount.yaml", "Python multiprocessing.Pool(2)"});
        p.warm_up({pool});
        for (int r = 0; r < o.rounds; ++r)
            p.round(static_cast<std::size_t>(r), {chanflow, pool}, std::chrono::milliseconds(1500));
        p.print();
    }
    fs::remove_all(dir);
}

// ---- pool map ------------------------------------------------------------------------------

void bench_poolmap(const Options& o) {
    constexpr std::int64_t n = 1'000'000;
    if (!have_python()) {
        std::printf("\n(h) pool map: skipped, python3 with multiprocessing not found\n");
        return;
    }
    auto c = make("(h) squares of 1 000 000 ints in input order, printed", "int", n,
                  {"chanflow graphs/pool_map.yaml (4 ordered replicas)",
                   "Python multiprocessing.Pool(2).map"});
    const std::vector<std::function<void()>> runs{
        [&] {
            run_file("graphs/pool_map.yaml", {{"n", std::to_string(n)}}, o.workers);
        },
        [&] { run_command("python3 bench/python/pool_map.py " + std::to_string(n)); }};
    c.warm_up(runs);
    for (int r = 0; r < o.rounds; ++r)
        c.round(static_cast<std::size_t>(r), runs, std::chrono::milliseconds(1500));
    c.print();
}

// ---- Monte Carlo pi ------------------------------------------------------------------------

// The sampling of pi.sample, written by hand: task t seeds SplitMix64 from (seed, t).
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() noexcept {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

std::int64_t sample_task(std::int64_t task, std::int64_t samples) {
    SplitMix64 mix{static_cast<std::uint64_t>(task) * 0xd1342543de82ef95ULL};
    SplitMix64 rng{mix.next()};
    std::int64_t inside = 0;
    for (std::int64_t i = 0; i < samples; ++i) {
        const double x = rng.uniform();
        const double y = rng.uniform();
        inside += x * x + y * y < 1.0;
    }
    return inside;
}

// Two std::threads, each taking every other task.
double threads_pi(std::int64_t tasks, std::int64_t samples) {
    std::int64_t inside[2] = {0, 0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            for (std::int64_t k = t; k < tasks; k += 2) inside[t] += sample_task(k, samples);
        });
    for (auto& th : threads) th.join();
    return 4.0 * static_cast<double>(inside[0] + inside[1]) / static_cast<double>(tasks * samples);
}

void bench_pi(const Options& o) {
    constexpr std::int64_t tasks = 100, samples = 1'000'000;
    auto c = make("(i) Monte Carlo pi, 1e8 samples in 100 tasks", "sample",
                  static_cast<double>(tasks * samples),
                  {"chanflow graphs/monte_carlo_pi.yaml (2 replicas)", "C++, 2 std::threads"});
    for (int r = 0; r < o.rounds; ++r) {
        c.add(0, seconds_of([&] {
                  run_file("graphs/monte_carlo_pi.yaml",
                           {{"tasks", std::to_string(tasks)},
                            {"samples", std::to_string(samples)},
                            {"workers", "2"}},
                           o.workers);
              }));
        volatile double pi = 0;
        c.add(1, seconds_of([&] { pi = threads_pi(tasks, samples); }));
    }
    c.print();
}

// ---- map expression against a lambda ------------------------------------------------------

void bench_expr(const Options& o) {
    constexpr std::int64_t n = 10'000'000;
    chanflow::register_function_node(
        "bench.lambda", "Emits x * 2 + 1, compiled C++.",
        [](const chanflow::Value& x) { return chanflow::Value(x.as_int() * 2 + 1); });
    auto graph = [](const char* node, bool expr) {
        chanflow::Graph g("expr");
        g.process("src", "range").with("stop", n).out("out", "a");
        auto p = g.process("f", node);
        if (expr) p.with("expr", "x * 2 + 1");
        p.in("in", "a").out("out", "b");
        g.process("sink", "discard").in("in", "b");
        return g.plan();
    };
    const chanflow::Plan with_expr = graph("map", true);
    const chanflow::Plan with_lambda = graph("bench.lambda", false);
    auto run_plan = [&](const chanflow::Plan& p) {
        chanflow::RunOptions ro;
        ro.workers = o.workers;
        chanflow::run(p, ro);
    };
    auto c = make("(j) range -> f -> discard, f = x * 2 + 1", "msg", n,
                  {"map with expr \"x * 2 + 1\"", "function node, C++ lambda"});
    for (int r = 0; r < o.rounds; ++r) {
        c.add(0, seconds_of([&] { run_plan(with_expr); }));
        c.add(1, seconds_of([&] { run_plan(with_lambda); }));
    }
    c.print();

    // The evaluation alone, per message, without channels.
    const chanflow::Expr e = chanflow::Expr::compile("x * 2 + 1");
    auto lambda = [](const chanflow::Value& x) { return chanflow::Value(x.as_int() * 2 + 1); };
    auto d = make("(j) the evaluation alone, x * 2 + 1 on an int Value", "eval", n,
                  {"compiled expression", "C++ lambda"});
    for (int r = 0; r < o.rounds; ++r) {
        std::int64_t sink = 0;
        d.add(0, seconds_of([&] {
                  for (std::int64_t i = 0; i < n; ++i) sink += e(chanflow::Value(i)).as_int();
              }));
        d.add(1, seconds_of([&] {
                  for (std::int64_t i = 0; i < n; ++i) {
                      const chanflow::Value x(i);
                      asm volatile("" : : "r"(&x) : "memory");  // keep the call per value
                      sink += lambda(x).as_int();
                  }
              }));
        if (sink == 42) std::printf(" ");
    }
    d.print();
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    o.tools = fs::absolute(argv[0]).parent_path();
    std::string which = "all";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--rounds" && i + 1 < argc)
            o.rounds = std::atoi(argv[++i]);
        else if (a == "--workers" && i + 1 < argc)
            o.workers = static_cast<unsigned>(std::atoi(argv[++i]));
        else if (a == "--mb" && i + 1 < argc)
            o.mb = std::atoi(argv[++i]);
        else
            which = a;
    }
    if (!fs::exists("graphs/wordcount.yaml")) {
        std::fprintf(stderr, "run me from the chanflow source tree (graphs/ not found)\n");
        return 2;
    }
    std::printf("chanflow %s, %u workers, %u cores\n", chanflow::version(), o.workers,
                std::thread::hardware_concurrency());
    if (which == "all" || which == "wordcount") bench_wordcount(o);
    if (which == "all" || which == "poolmap") bench_poolmap(o);
    if (which == "all" || which == "pi") bench_pi(o);
    if (which == "all" || which == "expr") bench_expr(o);
    return 0;
}
