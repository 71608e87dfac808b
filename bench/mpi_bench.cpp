// chanflow_mpi_bench — a channel across two MPI ranks (the MPI backend) against plain MPI
// doing the same with MPI_Send/MPI_Recv, and against mpi4py's comm.send/recv of a Python
// int. Side by side, round by round, every contestant a fresh `mpirun -np 2`.
//
//   build/bin/chanflow_mpi_bench [pingpong|tensors|all|latency] [--rounds R] [--scale S]
//
// Run plainly, it is the driver: it starts each contestant under mpirun (this program again
// with --rank CONTESTANT N, or bench/python/mpi4py_pingpong.py) and reads the seconds that
// rank 0 measured around the exchange alone, not MPI's start-up.
//
// The ping-pong is also run in pairs, plain MPI then chanflow (or the other way round) in one
// mpirun: from one mpirun to the next the machine's speed moves by up to 2x, the same for
// both contestants of a pair.
//
// `latency` (not part of `all`) times every round trip of the chanflow and plain MPI
// ping-pongs (one steady_clock read per round trip in both) and shows how they spread: the
// median, the slow end, and the share of the time spent in round trips ten times the median
// or more (the process stopped by an interrupt or by another thread on its core).
#include <mpi.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "chanflow/chanflow.hpp"
#include "chanflow/mpi.hpp"

namespace {

using chanflow::bench::Clock;
using chanflow::bench::make;

constexpr std::size_t kMiB = 1 << 20;

double now_s() {
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// ---- the contestants, one rank each --------------------------------------------------------

// With --trips, rank 0 notes when each round trip of a ping-pong starts (and when the last
// ends), and prints how long they took.
bool g_trips_on = false;
std::vector<std::int64_t> g_trip_starts;  // steady_clock ns

void mark_trip() {
    if (g_trips_on)
        g_trip_starts.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
                .count());
}

// "trips MEAN P50 P90 P99 P999 SLOW": nanoseconds, and the share of the whole time spent in
// round trips at least ten times the median.
void print_trips() {
    if (g_trip_starts.size() < 2) return;
    std::vector<std::int64_t> d;
    for (std::size_t i = 1; i < g_trip_starts.size(); ++i)
        d.push_back(g_trip_starts[i] - g_trip_starts[i - 1]);
    const double total = static_cast<double>(g_trip_starts.back() - g_trip_starts.front());
    std::sort(d.begin(), d.end());
    const auto at = [&](double q) {
        return static_cast<double>(
            d[static_cast<std::size_t>(q * static_cast<double>(d.size() - 1))]);
    };
    double slow = 0;
    for (const std::int64_t x : d)
        if (static_cast<double>(x) >= 10 * at(0.5)) slow += static_cast<double>(x);
    std::printf("trips %.1f %.1f %.1f %.1f %.1f %.4f\n", total / static_cast<double>(d.size()),
                at(0.5), at(0.9), at(0.99), at(0.999), slow / total);
}

// Plain MPI: n round trips of one int64.
double plain_pingpong(int rank, std::int64_t n) {
    std::int64_t v = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now_s();
    for (std::int64_t i = 0; i < n; ++i) {
        if (rank == 0) {
            mark_trip();
            v = i;
            MPI_Send(&v, 1, MPI_INT64_T, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(&v, 1, MPI_INT64_T, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(&v, 1, MPI_INT64_T, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(&v, 1, MPI_INT64_T, 0, 0, MPI_COMM_WORLD);
        }
    }
    if (rank == 0) mark_trip();
    return now_s() - t0;
}

// Plain MPI: n messages of 1 MiB from rank 0 to rank 1, then an acknowledgement.
double plain_tensors(int rank, std::int64_t n) {
    std::vector<unsigned char> buf(kMiB, 1);
    char ack = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now_s();
    for (std::int64_t i = 0; i < n; ++i) {
        if (rank == 0)
            MPI_Send(buf.data(), static_cast<int>(kMiB), MPI_BYTE, 1, 0, MPI_COMM_WORLD);
        else
            MPI_Recv(buf.data(), static_cast<int>(kMiB), MPI_BYTE, 0, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
    }
    if (rank == 0)
        MPI_Recv(&ack, 1, MPI_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    else
        MPI_Send(&ack, 1, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
    return now_s() - t0;
}

// chanflow: the first and last moment of the exchange, on the host's one clock.
std::atomic<double> g_first{0}, g_last{0};

chanflow::Task ping_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    auto& there = ctx.out();
    auto& back = ctx.in();
    g_first = now_s();
    for (std::int64_t i = 0; i < n; ++i) {
        mark_trip();
        co_await there.write(i);
        if (!co_await back.read()) break;
    }
    mark_trip();
    g_last = now_s();
}

chanflow::Task pong_body(chanflow::ProcessContext& ctx) {
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto x = co_await in.read()) co_await out.write(std::move(*x));
}

chanflow::Task tensors_body(chanflow::ProcessContext& ctx) {
    const std::int64_t n = ctx.param("n").as_int();
    const chanflow::Value v = chanflow::bench::one_mib_tensor();
    auto& out = ctx.out();
    g_first = now_s();
    for (std::int64_t i = 0; i < n; ++i) co_await out.write(v);
}

chanflow::Task sink_body(chanflow::ProcessContext& ctx) {
    auto& in = ctx.in();
    std::size_t bytes = 0;
    while (auto x = co_await in.read()) bytes += x->as_tensor().data.size();
    g_last = now_s();
    if (bytes == 0) throw std::runtime_error("no tensor arrived");
}

void register_nodes() {
    using chanflow::ParamType;
    auto& reg = chanflow::NodeRegistry::global();
    reg.add({.name = "bench.ping",
             .doc = "Writes i, waits for it back, n times.",
             .params = {chanflow::param("n", ParamType::Int, "round trips")},
             .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
             .body = ping_body});
    reg.add({.name = "bench.pong",
             .doc = "Sends back what comes.",
             .ports = {chanflow::in_port("in"), chanflow::out_port("out")},
             .body = pong_body});
    reg.add({.name = "bench.tensors",
             .doc = "Writes one 1 MiB tensor n times.",
             .params = {chanflow::param("n", ParamType::Int, "tensors to write")},
             .ports = {chanflow::out_port("out")},
             .body = tensors_body});
    reg.add({.name = "bench.tensor_sink",
             .doc = "Reads tensors to the end.",
             .ports = {chanflow::in_port("in")},
             .body = sink_body});
}

double chanflow_run(const chanflow::MpiSession& mpi, const std::string& what, std::int64_t n) {
    chanflow::Graph g(what);
    if (what == "pingpong") {
        g.process("ping", "bench.ping").with("n", n).rank(0).in("in", "back").out("out", "there");
        g.process("pong", "bench.pong").rank(1).in("in", "there").out("out", "back");
        g.channel("there", 0);
        g.channel("back", 0);
    } else {
        g.process("src", "bench.tensors").with("n", n).rank(0).out("out", "c");
        g.process("sink", "bench.tensor_sink").rank(1).in("in", "c");
        g.channel("c", 4);
    }
    const chanflow::Plan plan = g.plan();
    chanflow::RunOptions o;
    o.workers = 1;
    const auto r = chanflow::run_mpi(mpi, plan, chanflow::place(plan, mpi.size()), o);
    if (r.status != chanflow::RunStatus::Ok) {
        std::fprintf(stderr, "chanflow run failed: %s\n", r.message.c_str());
        std::exit(1);
    }
    double span[2] = {-g_first.load(), g_last.load()}, out[2];
    for (double& s : span)
        if (s == 0) s = -1e300;  // not this rank's to say
    MPI_Allreduce(span, out, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return out[1] + out[0];
}

// Plain MPI and chanflow in turn in one mpirun (which goes first alternates), kPairs times:
// "pair PLAIN CHANFLOW" in seconds. The ratio of a pair does not depend on where this
// mpirun's ranks landed, which moves both contestants alike.
constexpr int kPairs = 4;

void pingpong_pairs(const chanflow::MpiSession& mpi, std::int64_t n) {
    for (int k = 0; k < kPairs; ++k) {
        double plain = 0, ours = 0;
        if (k % 2 == 0) {
            plain = plain_pingpong(mpi.rank(), n);
            ours = chanflow_run(mpi, "pingpong", n);
        } else {
            ours = chanflow_run(mpi, "pingpong", n);
            plain = plain_pingpong(mpi.rank(), n);
        }
        if (mpi.rank() == 0) std::printf("pair %.9f %.9f\n", plain, ours);
    }
}

int rank_main(int argc, char** argv, const std::string& contestant, std::int64_t n) {
    register_nodes();
    g_trips_on = argc >= 5 && std::string(argv[4]) == "--trips";
    if (g_trips_on) g_trip_starts.reserve(static_cast<std::size_t>(n) + 1);
    chanflow::MpiSession mpi(argc, argv);
    if (contestant == "pingpong-pairs") {
        pingpong_pairs(mpi, n);
        return 0;
    }
    double s = 0;
    if (contestant == "plain-pingpong")
        s = plain_pingpong(mpi.rank(), n);
    else if (contestant == "plain-tensors")
        s = plain_tensors(mpi.rank(), n);
    else
        s = chanflow_run(mpi, contestant, n);
    if (mpi.rank() == 0) {
        std::printf("seconds %.9f\n", s);
        print_trips();
    }
    return 0;
}

// ---- the driver ----------------------------------------------------------------------------

std::string self_path, mpirun = "mpirun";

// Runs a command; returns the numbers of each line it printed that starts with `key` and a
// space. A command that fails ends the benchmark.
std::vector<std::vector<double>> lines_from(const std::vector<std::string>& args,
                                            const std::string& key) {
    std::string cmd;
    for (const auto& a : args) cmd += "'" + a + "' ";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) std::exit(1);
    std::vector<std::vector<double>> found;
    char line[256];
    while (std::fgets(line, sizeof line, p)) {
        if (std::strncmp(line, (key + " ").c_str(), key.size() + 1) != 0) continue;
        std::vector<double>& numbers = found.emplace_back();
        char* at = line + key.size() + 1;
        for (char* end = at;; at = end) {
            const double x = std::strtod(at, &end);
            if (end == at) break;
            numbers.push_back(x);
        }
    }
    if (pclose(p) != 0 || found.empty()) {
        std::fprintf(stderr, "failed: %s\n", cmd.c_str());
        std::exit(1);
    }
    return found;
}

// The seconds a contestant printed ("seconds X").
double seconds_from(const std::vector<std::string>& args) {
    return lines_from(args, "seconds").front().at(0);
}

std::vector<std::string> under_mpirun(std::vector<std::string> command) {
    std::vector<std::string> a{mpirun, "--oversubscribe", "-np", "2"};
    if (geteuid() == 0) a.push_back("--allow-run-as-root");
    a.insert(a.end(), command.begin(), command.end());
    return a;
}

void compare(const std::string& title, const std::string& unit, std::int64_t n,
             const std::vector<std::pair<std::string, std::vector<std::string>>>& contestants,
             int rounds) {
    std::vector<std::string> labels;
    for (const auto& c : contestants) labels.push_back(c.first);
    auto table = make(title, unit, static_cast<double>(n), labels);
    for (int r = 0; r < rounds; ++r)
        for (std::size_t k = 0; k < contestants.size(); ++k) {
            const std::size_t i = (static_cast<std::size_t>(r) + k) % contestants.size();
            table.add(i, seconds_from(contestants[i].second));
        }
    table.print();
}

// chanflow against plain MPI with both in each mpirun: the median of the pairs' ratios.
void pingpong_in_one_run(std::int64_t n, int rounds) {
    std::vector<double> ratios;
    for (int r = 0; r < rounds; ++r)
        for (const std::vector<double>& pair : lines_from(
                 under_mpirun({self_path, "--rank", "pingpong-pairs", std::to_string(n)}), "pair"))
            ratios.push_back(pair.at(0) / pair.at(1));
    std::sort(ratios.begin(), ratios.end());
    std::printf(
        "  chanflow against plain MPI in the same mpirun, %zu pairs: median x%.2f"
        " (lowest x%.2f, highest x%.2f)\n",
        ratios.size(), chanflow::bench::median(ratios), ratios.front(), ratios.back());
}

// Every round trip timed, both ping-pongs alternately: per contestant the medians over the
// rounds of each column of its "trips" line.
void latency(std::int64_t n, int rounds) {
    const std::string ns = std::to_string(n);
    const std::vector<std::pair<std::string, std::string>> contestants = {
        {"chanflow (mpi backend, rendezvous channels)", "pingpong"},
        {"plain MPI_Send/MPI_Recv", "plain-pingpong"}};
    std::vector<std::vector<std::vector<double>>> columns(contestants.size(),
                                                          std::vector<std::vector<double>>(6));
    for (int r = 0; r < rounds; ++r)
        for (std::size_t k = 0; k < contestants.size(); ++k) {
            const std::size_t i = (static_cast<std::size_t>(r) + k) % contestants.size();
            const std::vector<double> trips = lines_from(
                under_mpirun({self_path, "--rank", contestants[i].second, ns, "--trips"}),
                "trips")[0];
            for (std::size_t c = 0; c < 6; ++c) columns[i][c].push_back(trips.at(c));
        }
    std::printf("\nround trips of an int across 2 ranks  (%lld per run, medians of %d rounds)\n",
                static_cast<long long>(n), rounds);
    std::printf("  %-45s %8s %8s %8s %8s %8s  %s\n", "", "mean", "p50", "p90", "p99", "p99.9",
                "time in trips >= 10x p50");
    for (std::size_t i = 0; i < contestants.size(); ++i) {
        std::printf("  %-45s", contestants[i].first.c_str());
        for (std::size_t c = 0; c < 5; ++c)
            std::printf(" %5.2f us", chanflow::bench::median(columns[i][c]) / 1000);
        std::printf("  %5.1f%%\n", 100 * chanflow::bench::median(columns[i][5]));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::string(argv[1]) == "--rank")
        return rank_main(argc, argv, argv[2], std::atoll(argv[3]));
    self_path = chanflow::bench::self_path(argv[0]);
    const auto [which, rounds, scale] = chanflow::bench::parse_args(argc, argv);
    if (const char* m = std::getenv("MPIRUN")) mpirun = m;
    const std::string source = CHANFLOW_SOURCE_DIR;
    std::printf("chanflow_mpi_bench: 2 ranks on this machine, %d rounds\n", rounds);
    if (which == "all" || which == "pingpong") {
        const auto n = static_cast<std::int64_t>(100000 * scale);
        const std::string ns = std::to_string(n);
        compare(
            "ping-pong of an int across 2 ranks", "round trip", n,
            {{"chanflow (mpi backend, rendezvous channels)",
              under_mpirun({self_path, "--rank", "pingpong", ns})},
             {"plain MPI_Send/MPI_Recv", under_mpirun({self_path, "--rank", "plain-pingpong", ns})},
             {"mpi4py comm.send/recv of a Python int",
              under_mpirun({"/usr/bin/python3", source + "/bench/python/mpi4py_pingpong.py", ns})}},
            rounds);
        pingpong_in_one_run(n, rounds);
    }
    if (which == "latency") latency(static_cast<std::int64_t>(100000 * scale), rounds);
    if (which == "all" || which == "tensors") {
        const auto n = static_cast<std::int64_t>(2000 * scale);
        const std::string ns = std::to_string(n);
        compare("1 MiB tensors from rank 0 to rank 1", "MiB", n,
                {{"chanflow (mpi backend)", under_mpirun({self_path, "--rank", "tensors", ns})},
                 {"plain MPI_Send/MPI_Recv of 1 MiB",
                  under_mpirun({self_path, "--rank", "plain-tensors", ns})}},
                rounds);
    }
    return 0;
}
