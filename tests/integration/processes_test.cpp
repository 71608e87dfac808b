// The processes backend: failures, crashes, kills and interrupts in any partition end the
// run at once with exit 1 and a message naming them; deadlocks exit 3 as on threads; and
// nothing is left behind, neither processes nor shared memory.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "run_cli.hpp"
#include "split_graphs.hpp"
#include "text_util.hpp"

namespace fs = std::filesystem;
using chanflow::test::run_cli;
using Clock = std::chrono::steady_clock;
using chanflow::test::kPromptly;
using Graph = chanflow::test::GraphFile;

namespace {

// Processes whose command line holds `needle` (a run's launcher and its partitions).
std::vector<pid_t> processes_with(const std::string& needle) {
    std::vector<pid_t> out;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream f(entry.path() / "cmdline");
        std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        for (char& c : cmdline)
            if (c == '\0') c = ' ';
        if (cmdline.find(needle) != std::string::npos) out.push_back(std::stoi(name));
    }
    return out;
}

// The partitions of a run: processes whose command line names its graph file (each test's
// own) and that are named as partitions.
std::vector<pid_t> partitions_of(const std::string& graph) {
    std::vector<pid_t> out;
    for (pid_t p : processes_with(graph))
        if (chanflow::test::partition_number(p) >= 0) out.push_back(p);
    return out;
}

// A run in the background: its launcher's pid, then its result.
struct Background {
    pid_t pid = -1;
    int out_fd = -1, err_fd = -1;
    std::string graph;  // the graph file: args[1]
    explicit Background(const std::vector<std::string>& args) : graph(args.at(1)) {
        pid = chanflow::test::spawn_cli(args, out_fd, err_fd);
    }
    // Waits for `n` partitions to be up.
    std::vector<pid_t> partitions(std::size_t n) {
        for (int i = 0; i < 500; ++i) {
            auto found = partitions_of(graph);
            if (found.size() >= n) return found;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        FAIL("the partitions did not start");
        return {};
    }
    // Nothing of the run is left: no partition, and nothing in /dev/shm under the name
    // the launcher's segment had.
    void check_nothing_left() const {
        CHECK(partitions_of(graph).empty());
        const std::string segment = "chanflow." + std::to_string(pid) + ".";
        for (const auto& entry : fs::directory_iterator("/dev/shm"))
            CHECK_MESSAGE(entry.path().filename().string().rfind(segment, 0) != 0, entry.path());
    }
    chanflow::test::CliResult finish() {
        chanflow::test::CliResult r;
        auto drain = [](int fd, std::string& into) {
            char buf[4096];
            for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
                into.append(buf, static_cast<std::size_t>(n));
            close(fd);
        };
        drain(out_fd, r.out);
        drain(err_fd, r.err);
        int status = 0;
        waitpid(pid, &status, 0);
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return r;
    }
};

}  // namespace

TEST_CASE("processes: a node failing in partition 1 ends the run with its message") {
    Graph g(chanflow::test::kFailsOnPartition1);
    const auto start = Clock::now();
    Background run({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
    const auto r = run.finish();
    CHECK(Clock::now() - start < kPromptly);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == chanflow::test::kFailsOnPartition1Error);
    run.check_nothing_left();
}

TEST_CASE("processes: a normal end leaves nothing behind, also from defaults.backend") {
    Graph g(R"Y(chanflow: 1
defaults: {backend: processes}
processes:
  numbers: {node: range, with: {stop: 100000}, out: {out: a}}
  square:  {node: map, with: {expr: "x * x"}, replicas: 3, ordered: true, in: {in: a}, out: {out: b}}
  total:   {node: reduce, with: {op: sum}, in: {in: b}, out: {out: c}}
  print:   {node: print, in: {in: c}}
)Y");
    Background run({"run", g.path.string()});  // --procs: one per core
    const auto r = run.finish();
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "333328333350000\n");
    run.check_nothing_left();
}

TEST_CASE("processes: a node that crashes its OS process is named with the signal") {
    chanflow::test::TestPluginPath plugin_path;
    Graph g("chanflow: 1\nplugins: [" + plugin_path.name() + R"Y(]
processes:
  numbers: {node: range, with: {stop: 100000000}, out: {out: a}}
  work:
    node: plugin.crash_at
    with: {at: 300001}
    replicas: 2
    in: {in: {channel: a, deliver: round_robin}}
    out: {out: b}
  sink: {node: discard, in: {in: b}}
)Y");
    Background run({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
    const auto start = Clock::now();
    const auto r = run.finish();
    CHECK(Clock::now() - start < kPromptly);
    CHECK(r.exit_code == 1);
    CHECK(r.err == "error: partition 1 died: killed by signal 6 (SIGABRT); it ran work[1]\n");
    run.check_nothing_left();
}

TEST_CASE("processes: a partition killed from outside ends the run at once") {
    Graph g(chanflow::test::kLongRun);
    Background run({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
    const auto partitions = run.partitions(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // mid-run
    pid_t victim = -1;
    for (pid_t p : partitions)
        if (chanflow::test::partition_number(p) == 1) victim = p;
    REQUIRE(victim > 0);
    const auto start = Clock::now();
    kill(victim, SIGKILL);
    const auto r = run.finish();
    CHECK(Clock::now() - start < kPromptly);
    CHECK(r.exit_code == 1);
    CHECK(r.err == "error: partition 1 died: killed by signal 9 (SIGKILL); it ran work[1]\n");
    run.check_nothing_left();
}

TEST_CASE("processes: Ctrl-C stops every partition and leaves nothing behind") {
    Graph g(chanflow::test::kLongRun);
    Background run({"run", g.path.string(), "--backend", "processes", "--procs", "3"});
    run.partitions(2);  // partition 2 has nothing to run and ends at once
    kill(run.pid, SIGINT);
    const auto r = run.finish();
    CHECK(r.exit_code == 1);
    CHECK(r.err == "error: interrupted by SIGINT\n");
    run.check_nothing_left();
}

TEST_CASE("processes: partitions die with their launcher, at once or later") {
    for (int wait_ms : {0, 300}) {
        CAPTURE(wait_ms);
        Graph g(chanflow::test::kLongRun);
        Background run({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
        run.partitions(2);  // started: the segment has no name any more
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
        kill(run.pid, SIGKILL);
        run.finish();
        for (int i = 0; i < 500 && !partitions_of(run.graph).empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        run.check_nothing_left();  // the segment's name went before the partitions started
    }
}

TEST_CASE("processes: a deadlock exits 3 and names the blocked processes") {
    const auto threads = run_cli({"run", "tests/graphs/deadlock_cycle.yaml"});
    const auto procs = run_cli(
        {"run", "tests/graphs/deadlock_cycle.yaml", "--backend", "processes", "--procs", "2"});
    CHECK(procs.exit_code == 3);
    CHECK(procs.err == threads.err);
    CHECK(procs.out == threads.out);
}

TEST_CASE("processes: a deadlock across partitions exits 3 and names the blocked processes") {
    Graph g(chanflow::test::kDeadlockAcross);
    const auto start = Clock::now();
    Background run({"run", g.path.string(), "--backend", "processes", "--procs", "3"});
    const auto r = run.finish();
    CHECK(Clock::now() - start < kPromptly);
    run.check_nothing_left();
    CHECK(r.exit_code == 3);
    CHECK(r.out == "0\n1\n2\n");  // what could run did
    CHECK(r.err ==
          "deadlock: 'a' waits to read 'ba' (empty, writers in partition 1)\n"
          "deadlock: 'b' waits to read 'ab' (empty, writers in partition 0)\n");
}

TEST_CASE("processes: a partition waiting on a busy one is no deadlock") {
    Graph g(chanflow::test::kBusyWriter);
    const auto r = run_cli({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
}

TEST_CASE("processes: a pin to a partition the run has not is refused") {
    const auto pin =
        run_cli({"run", "tests/graphs/rank_pinned.yaml", "--backend", "processes", "--procs", "2"});
    CHECK(pin.exit_code == 2);
    CHECK(pin.err.find("is pinned to rank 2, but the run has 2 partitions") != std::string::npos);
    const auto ok =
        run_cli({"run", "tests/graphs/rank_pinned.yaml", "--backend", "processes", "--procs", "3"});
    CHECK(ok.exit_code == 0);
    CHECK(ok.out == "0\n10\n20\n30\n");
}

TEST_CASE("processes: a reader that retires in another partition stops the writer") {
    Graph g(chanflow::test::kTakeOnPartition1);
    const auto start = Clock::now();
    const auto r = run_cli({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "0\n1\n2\n3\n4\n");
    CHECK(Clock::now() - start < kPromptly);
}

TEST_CASE("processes: a broadcast to readers in 5 partitions gives every reader every message") {
    Graph g(chanflow::test::kBroadcastTo10);
    const auto r = run_cli({"run", g.path.string(), "--backend", "processes", "--procs", "5"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == chanflow::test::kBroadcastSum);
}
