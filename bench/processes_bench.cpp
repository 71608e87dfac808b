// chanflow_processes_bench — a channel between two OS processes (the processes backend)
// against the same channel inside one process, pipes and socketpairs moving the same
// messages, and memcpy for large tensors. Side by side, round by round.
//
//   build/bin/chanflow_processes_bench [ints|tensors|all] [--rounds R] [--scale S]
//
// The graph is built in code and run across two partitions with one call, as an embedding
// program would (chanflow::run_processes forks them; start-up is in the time).
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "chanflow/chanflow.hpp"

namespace {

using chanflow::bench::make;
using chanflow::bench::seconds_of;

constexpr std::size_t kMiB = 1 << 20;

// Writes 0..n-1, one write each: the channel's cost per message.
chanflow::Task count_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    auto& out = ctx.out();
    for (std::int64_t i = 0; i < n; ++i) co_await out.write(i);
}

// Writes the same 1 MiB float64 tensor n times (sharing it: in one process no byte moves).
chanflow::Task tensors_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    const chanflow::Value v = chanflow::bench::one_mib_tensor();
    auto& out = ctx.out();
    for (std::int64_t i = 0; i < n; ++i) co_await out.write(v);
}

void register_nodes() {
    auto& reg = chanflow::NodeRegistry::global();
    reg.add({.name = "bench.count",
             .doc = "Writes 0..n-1, one write each.",
             .params = {chanflow::param("n", chanflow::ParamType::Int, "values to write")},
             .ports = {chanflow::out_port("out")},
             .body = count_body});
    reg.add({.name = "bench.tensors",
             .doc = "Writes one 1 MiB tensor n times.",
             .params = {chanflow::param("n", chanflow::ParamType::Int, "tensors to write")},
             .ports = {chanflow::out_port("out")},
             .body = tensors_body});
}

// source (partition 0) -> c -> discard (partition 1).
chanflow::Plan plan_of(const std::string& graph, std::int64_t n) {
    chanflow::Graph g(graph);
    g.process("src", graph == "ints" ? "bench.count" : "bench.tensors")
        .with("n", n)
        .rank(0)
        .out("out", "c");
    g.process("sink", "discard").rank(1).in("in", "c");
    g.channel("c", graph == "ints" ? 64 : 4);
    return g.plan();
}

void run_threads(const std::string& graph, std::int64_t n) {
    chanflow::RunOptions o;
    o.workers = 2;
    if (chanflow::run(plan_of(graph, n), o).status != chanflow::RunStatus::Ok) std::exit(1);
}

void run_processes(const std::string& graph, std::int64_t n) {
    const chanflow::Plan plan = plan_of(graph, n);
    chanflow::RunOptions o;
    o.workers = 1;
    const auto result = chanflow::run_processes(plan, chanflow::place(plan, 2), o);
    if (result.status != chanflow::RunStatus::Ok) {
        std::fprintf(stderr, "failed: %s\n", result.message.c_str());
        std::exit(1);
    }
}

// n 8-byte messages from a child process to this one over `fds`, `per_write` at a time.
void transfer(int fds[2], std::int64_t n, std::size_t per_write) {
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        std::vector<std::int64_t> buf(per_write);
        for (std::int64_t i = 0; i < n;) {
            std::size_t k = 0;
            for (; k < per_write && i < n; ++k) buf[k] = i++;
            const char* p = reinterpret_cast<const char*>(buf.data());
            for (std::size_t left = k * 8; left > 0;) {
                const ssize_t w = write(fds[1], p, left);
                if (w <= 0) _exit(1);
                p += w;
                left -= static_cast<std::size_t>(w);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    std::vector<std::int64_t> buf(per_write);
    std::int64_t got = 0;
    for (std::size_t bytes = 0;;) {
        const ssize_t r = read(fds[0], reinterpret_cast<char*>(buf.data()) + bytes % 8,
                               per_write * 8 - bytes % 8);
        if (r <= 0) break;
        bytes += static_cast<std::size_t>(r);
        got = static_cast<std::int64_t>(bytes / 8);
    }
    close(fds[0]);
    waitpid(pid, nullptr, 0);
    if (got != n) std::exit(1);
}

void socketpair_transfer(std::int64_t n, std::size_t per_write) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::exit(1);
    transfer(fds, n, per_write);
}

void pipe_transfer(std::int64_t n, std::size_t per_write) {
    int fds[2];
    if (pipe(fds) != 0) std::exit(1);
    transfer(fds, n, per_write);
}

void bench_ints(int rounds, double scale) {
    const auto n = static_cast<std::int64_t>(5'000'000 * scale);
    const std::int64_t one_by_one = n / 10;  // a system call per message is slow: fewer
    auto c = make("(k) one2one int channel between two OS processes", "msg", static_cast<double>(n),
                  {"chanflow --backend processes (2 partitions)",
                   "chanflow threads (both ends in one process)",
                   "socketpair, one message per write", "pipe, 8 KiB writes (1024 messages)"});
    for (int r = 0; r < rounds; ++r)
        c.round(static_cast<std::size_t>(r),
                {[&] { run_processes("ints", n); }, [&] { run_threads("ints", n); },
                 [&] { socketpair_transfer(one_by_one, 1); }, [&] { pipe_transfer(n, 1024); }});
    // The socketpair row moved a tenth of the messages: scale its times up.
    for (double& s : c.secs[2]) s *= static_cast<double>(n) / static_cast<double>(one_by_one);
    c.print();
}

void bench_tensors(int rounds, double scale) {
    const auto n = static_cast<std::int64_t>(2000 * scale);
    std::vector<unsigned char> from(64 * kMiB, 1), to(64 * kMiB);
    auto c = make(
        "(l) 1 MiB tensors between two OS processes", "MiB", static_cast<double>(n),
        {"chanflow --backend processes (2 partitions)", "memcpy of 1 MiB blocks (64 MiB apart)"});
    for (int r = 0; r < rounds; ++r)
        c.round(static_cast<std::size_t>(r),
                {[&] { run_processes("tensors", n); },
                 [&] {
                     for (std::int64_t i = 0; i < n; ++i) {
                         const std::size_t at = static_cast<std::size_t>(i % 64) * kMiB;
                         std::memcpy(to.data() + at, from.data() + at, kMiB);
                     }
                 }});
    c.print();
}

}  // namespace

int main(int argc, char** argv) {
    register_nodes();
    const auto args = chanflow::bench::parse_args(argc, argv);
    std::printf("chanflow %s, processes backend\n", chanflow::version());
    if (args.which == "all" || args.which == "ints") bench_ints(args.rounds, args.scale);
    if (args.which == "all" || args.which == "tensors") bench_tensors(args.rounds, args.scale);
    return 0;
}
