// Hostile input and faults: the real CLI on files made to hurt it, outputs that refuse what
// is written, partitions stopped from outside. Never a crash or a hang, nothing lost
// without a word, nothing left behind, and a graph file does no more than it says.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
using chanflow::test::kPromptly;
using chanflow::test::read_file;
using chanflow::test::read_until;
using chanflow::test::run_cli;
using Clock = std::chrono::steady_clock;
using Graph = chanflow::test::GraphFile;

namespace {

// What the run's stdout is.
enum class Stdout { Full, Closed, ClosedPipe, ClosedPipeIgnored };

struct Ending {
    int status = 0;  // as waitpid gives it
    std::string err;
    std::chrono::milliseconds took{0};
};

// Runs the CLI with its stdout on /dev/full, closed, or a pipe nobody reads (SIGPIPE as the
// default or ignored, as a parent may leave it); stderr is captured.
Ending run_with_stdout(Stdout how, const std::vector<std::string>& args) {
    const auto start = Clock::now();
    int out_fd = -1, err_fd = -1;
    const pid_t pid = chanflow::test::spawn_cli(args, out_fd, err_fd, CHANFLOW_BIN, [how] {
        if (how == Stdout::Full) {
            const int full = open("/dev/full", O_WRONLY);
            dup2(full, 1);
            close(full);
        } else if (how == Stdout::Closed) {
            close(1);
        } else {
            int out[2];
            if (pipe(out) != 0) _exit(127);
            close(out[0]);  // nobody will read
            dup2(out[1], 1);
            close(out[1]);
            signal(SIGPIPE, how == Stdout::ClosedPipeIgnored ? SIG_IGN : SIG_DFL);
        }
    });
    close(out_fd);
    Ending e;
    char buf[4096];
    for (ssize_t n; (n = read(err_fd, buf, sizeof buf)) > 0;)
        e.err.append(buf, static_cast<std::size_t>(n));
    close(err_fd);
    waitpid(pid, &e.status, 0);
    e.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return e;
}

int exit_code(const Ending& e) {
    return WIFEXITED(e.status) ? WEXITSTATUS(e.status) : -1;
}

// A graph that prints little (its output goes at the end of the run) and one that prints
// much (its output goes while it runs).
const char* const kPrintsLittle = R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 3}, out: {out: a}, rank: 0}
  show:    {node: print, in: {in: a}, rank: 1}
)Y";
const char* const kPrintsMuch = R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 100000000}, out: {out: a}, rank: 0}
  show:    {node: print, in: {in: a}, rank: 1}
)Y";

const std::vector<std::vector<std::string>> kLocalBackends = {
    {}, {"--backend", "processes", "--procs", "2"}};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

// Processes whose command line holds `needle`.
std::size_t processes_with(const std::string& needle) {
    std::size_t n = 0;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cmdline = read_file(entry.path() / "cmdline");
        for (char& c : cmdline)
            if (c == '\0') c = ' ';
        if (cmdline.find(needle) != std::string::npos &&
            chanflow::test::partition_number(std::stoi(name)) >= 0)
            ++n;
    }
    return n;
}

// A folder of its own for a test, removed at the end.
struct Folder {
    fs::path path;
    Folder() {
        char name[] = "/tmp/chanflow-test-XXXXXX";
        REQUIRE(mkdtemp(name) != nullptr);
        path = name;
    }
    ~Folder() {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, ec);
        fs::remove_all(path, ec);
    }
    Folder(const Folder&) = delete;
    Folder& operator=(const Folder&) = delete;
};

}  // namespace

// ---- output -------------------------------------------------------------------------------

TEST_CASE(
    "hostile: a full disk or a closed stdout fails the run (exit 1), on threads and processes") {
    Graph little(kPrintsLittle), much(kPrintsMuch);
    for (const auto& backend : kLocalBackends) {
        CAPTURE(backend.size());
        const auto full_end =
            run_with_stdout(Stdout::Full, with({"run", little.path.string()}, backend));
        CHECK(exit_code(full_end) == 1);
        CHECK(full_end.err == "error: cannot write the output: No space left on device\n");

        const auto full_midway =
            run_with_stdout(Stdout::Full, with({"run", much.path.string()}, backend));
        CHECK(exit_code(full_midway) == 1);
        CHECK(full_midway.err ==
              "error: process 'show' failed: cannot write the output: No space left on device\n");
        CHECK(full_midway.took < kPromptly);

        const auto closed =
            run_with_stdout(Stdout::Closed, with({"run", little.path.string()}, backend));
        CHECK(exit_code(closed) == 1);
        CHECK(closed.err == "error: cannot write the output: Bad file descriptor\n");
    }
    // What check and nodes print must reach stdout too.
    const auto check = run_with_stdout(Stdout::Full, {"check", little.path.string()});
    CHECK(exit_code(check) == 1);
    CHECK(check.err == "chanflow: error: cannot write the output: No space left on device\n");
    CHECK(exit_code(run_with_stdout(Stdout::Closed, {"nodes"})) == 1);
}

TEST_CASE("hostile: a closed pipe ends the run quietly, by SIGPIPE, as a Unix filter") {
    Graph much(kPrintsMuch);
    for (const auto& backend : kLocalBackends)
        for (Stdout how : {Stdout::ClosedPipe, Stdout::ClosedPipeIgnored}) {
            CAPTURE(backend.size());
            CAPTURE(how == Stdout::ClosedPipeIgnored);
            const auto e = run_with_stdout(how, with({"run", much.path.string()}, backend));
            CHECK(WIFSIGNALED(e.status));
            CHECK(WTERMSIG(e.status) == SIGPIPE);
            CHECK(e.err.empty());
            CHECK(e.took < kPromptly);
        }
    CHECK(processes_with(much.path.string()) == 0);
}

TEST_CASE(
    "hostile: files a run writes are opened before it starts (exit 2), written after (exit 1)") {
    Graph g(kPrintsLittle);
    const std::string file = g.path.string();
    for (const auto& backend : kLocalBackends) {
        CAPTURE(backend.size());
        auto r = run_cli(with({"run", file, "--stats=/nonexistent/dir/stats.json"}, backend));
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());  // nothing ran
        CHECK(r.err ==
              "chanflow: error: --stats: cannot write '/nonexistent/dir/stats.json': No such file "
              "or directory\n(see 'chanflow --help')\n");
        r = run_cli(with({"run", file, "--trace", "/nonexistent/dir/trace.json"}, backend));
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        CHECK(r.err.rfind("chanflow: error: --trace: cannot write '/nonexistent/dir/trace.json'",
                          0) == 0);
        r = run_cli(with({"run", file, "--stats=/dev/full"}, backend));
        CHECK(r.exit_code == 1);
        CHECK(r.out == "0\n1\n2\n");  // the run itself went well
        CHECK(r.err == "chanflow: error: cannot write '/dev/full': No space left on device\n");
    }
    auto r = run_cli({"dot", file, "-o", "/nonexistent/dir/g.svg"});
    CHECK(r.exit_code == 2);
    CHECK(r.err ==
          "chanflow: error: cannot write '/nonexistent/dir/g.svg': No such file or directory\n"
          "(see 'chanflow --help')\n");
    Folder dir;
    const fs::path full_svg = dir.path / "full.svg";
    fs::create_symlink("/dev/full", full_svg);
    r = run_cli({"dot", file, "-o", full_svg.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.err ==
          "chanflow: error: cannot write '" + full_svg.string() + "': No space left on device\n");
    r = run_cli({"run", file, "--backend", "processes", "--procs", "65"});
    CHECK(r.exit_code == 2);
    CHECK(r.err ==
          "chanflow: error: --procs takes at most 64 partitions with the processes backend, got "
          "65\n(see 'chanflow --help')\n");
}

#ifdef CHANFLOW_MPIRUN
TEST_CASE("hostile: with mpi, a statistics file rank 0 cannot write stops every rank (exit 2)") {
    Graph g(kPrintsLittle);
    const auto r = chanflow::test::run_mpirun(
        2, {"run", g.path.string(), "--backend", "mpi", "--stats=/nonexistent/dir/s.json"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("chanflow: error: --stats: cannot write '/nonexistent/dir/s.json': No such "
                     "file or directory\n") != std::string::npos);
}
#endif

// ---- what the processes backend leaves behind ----------------------------------------------

TEST_CASE("hostile: the processes backend writes nothing into the temporary folder") {
    // Partitions leave their statistics and trace in memory files: there is no scratch path
    // for another user to plant, and nothing to clean up after a kill -9.
    Graph g(kPrintsLittle);
    Folder tmp, out;
    fs::create_directory(tmp.path / ("chanflow-run-" + std::to_string(getpid())));
    fs::create_symlink("/nonexistent", tmp.path / "stats.0.json");
    setenv("TMPDIR", tmp.path.c_str(), 1);
    const auto r = run_cli({"run", g.path.string(), "--backend", "processes", "--procs", "2",
                            "--stats=" + (out.path / "s.json").string(), "--trace",
                            (out.path / "t.json").string()});
    unsetenv("TMPDIR");
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n1\n2\n");
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path)) ++entries;
    CHECK(entries == 2);  // what the test planted, untouched
    const std::string stats = read_file(out.path / "s.json");
    CHECK(chanflow::test::stats_field(stats, "numbers", "messages_out") == 3);
    CHECK(chanflow::test::stats_field(stats, "show", "messages_in") == 3);
    const std::string trace = read_file(out.path / "t.json");
    CHECK(trace.find("\"name\": \"partition 0\"") != std::string::npos);
    CHECK(trace.find("\"name\": \"partition 1\"") != std::string::npos);
}

TEST_CASE(
    "hostile: a stopped partition is named after the silence, and resumes with nothing lost") {
    // The ticker on partition 0 feeds partition 1, which is stopped for a while.
    Graph g(R"Y(chanflow: 1
processes:
  tick:  {node: ticker, with: {period_ms: 5, count: 600}, out: {out: a}, rank: 0}
  twice: {node: map, with: {expr: "x * 2"}, in: {in: a}, out: {out: b}, rank: 1}
  total: {node: reduce, with: {op: sum}, in: {in: b}, out: {out: c}, rank: 0}
  show:  {node: print, in: {in: c}, rank: 0}
)Y");
    setenv("CHANFLOW_SILENCE_S", "1", 1);
    int out_fd = -1, err_fd = -1;
    const pid_t launcher = chanflow::test::spawn_cli(
        {"run", g.path.string(), "--backend", "processes", "--procs", "2"}, out_fd, err_fd);
    unsetenv("CHANFLOW_SILENCE_S");
    pid_t victim = -1;
    for (int i = 0; i < 500 && victim < 0; ++i) {
        for (const auto& entry : fs::directory_iterator("/proc")) {
            const std::string name = entry.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            const std::string cmdline = read_file(entry.path() / "cmdline");
            if (cmdline.find(g.path.string()) != std::string::npos &&
                chanflow::test::partition_number(std::stoi(name)) == 1)
                victim = std::stoi(name);
        }
        if (victim < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(victim > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(victim, SIGSTOP);
    std::string err;
    CHECK(read_until(err_fd, err,
                     "warning: partition 1 has not answered for 1 s: it may be stopped (still "
                     "waiting); it runs twice\n",
                     kPromptly + std::chrono::seconds(2)));
    kill(victim, SIGCONT);
    CHECK(read_until(err_fd, err, "warning: partition 1 answers again\n", kPromptly));
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(out_fd, buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    for (ssize_t n; (n = read(err_fd, buf, sizeof buf)) > 0;)
        err.append(buf, static_cast<std::size_t>(n));
    close(out_fd);
    close(err_fd);
    int status = 0;
    waitpid(launcher, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(out == "359400\n");  // 2 * (0 + 1 + ... + 599): every tick arrived
    CHECK(err.find("error") == std::string::npos);
}

// ---- deep values, long names ----------------------------------------------------------------

TEST_CASE("hostile: values nest at most 64 deep, the same rule on every backend") {
    // Each trip around the ring wraps the value in one more list.
    Graph ring(R"Y(chanflow: 1
processes:
  prefix: {node: prefix, with: {value: 0}, in: {in: back}, out: {out: a}, rank: 0}
  delta:  {node: delta, in: {in: a}, out: {out: [b, c]}, rank: 0}
  wrap:   {node: map, with: {expr: "[x]"}, in: {in: b}, out: {out: back}, rank: 1}
  first:  {node: take, with: {count: 400000}, in: {in: c}, out: {out: d}, rank: 0}
  sink:   {node: discard, in: {in: d}, rank: 0}
)Y");
    std::vector<std::vector<std::string>> runs = {
        {"run", ring.path.string()},
        {"run", ring.path.string(), "--backend", "processes", "--procs", "2"}};
    for (const auto& args : runs) {
        CAPTURE(args.size());
        const auto r = run_cli(args);
        CHECK(r.exit_code == 1);
        CHECK(r.err.rfind("error: process 'wrap' failed: a list or record nested deeper than 64 "
                          "levels in '[x]' (x = [[[",
                          0) == 0);
    }
#ifdef CHANFLOW_MPIRUN
    const auto r = chanflow::test::run_mpirun(2, {"run", ring.path.string(), "--backend", "mpi"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("error: rank 1: process 'wrap' failed: a list or record nested deeper than "
                     "64 levels in '[x]'") != std::string::npos);
#endif
    // 64 deep is allowed, and crosses partitions and ranks.
    const std::string deep = std::string(63, '[') + "1" + std::string(63, ']');
    Graph crossing(
        "chanflow: 1\nprocesses:\n"
        "  one:  {node: values, with: {items: [" +
        deep +
        "]}, out: {out: a}, rank: 0}\n"
        "  show: {node: print, in: {in: a}, rank: 1}\n");
    const auto across =
        run_cli({"run", crossing.path.string(), "--backend", "processes", "--procs", "2"});
    CHECK(across.exit_code == 0);
    CHECK(across.out == deep + "\n");
#ifdef CHANFLOW_MPIRUN
    const auto ranks =
        chanflow::test::run_mpirun(2, {"run", crossing.path.string(), "--backend", "mpi"});
    CHECK(ranks.exit_code == 0);
    CHECK(ranks.out == deep + "\n");
#endif
}

TEST_CASE("hostile: very long names: a deadlock report and a failure keep their point") {
    const std::string channel = "c" + std::string(60000, 'x');
    Graph deadlock(
        "chanflow: 1\nprocesses:\n"
        "  a: {node: map, with: {expr: \"x\"}, in: {in: ba}, out: {out: " +
        channel +
        "}, rank: 0}\n"
        "  b: {node: map, with: {expr: \"x\"}, in: {in: " +
        channel + "}, out: {out: ba}, rank: 1}\n");
    auto r = run_cli({"run", deadlock.path.string(), "--backend", "processes", "--procs", "2"});
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("deadlock: 'a' waits to read 'ba' (empty, writers in partition 1)") !=
          std::string::npos);
#ifdef CHANFLOW_MPIRUN
    r = chanflow::test::run_mpirun(2, {"run", deadlock.path.string(), "--backend", "mpi"});
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("deadlock: 'a' waits to read 'ba' (empty, writers in rank 1)") !=
          std::string::npos);
#endif
    // A failure message longer than the segment holds keeps its start and its cause.
    const std::string name = "p" + std::string(5000, 'y');
    Graph failing(
        "chanflow: 1\nprocesses:\n"
        "  numbers: {node: range, with: {stop: 10}, out: {out: a}, rank: 0}\n"
        "  ? " +
        name +
        "\n  : {node: map, with: {expr: \"1 // (x - 5)\"}, in: {in: a}, out: {out: b}, rank: 1}\n"
        "  sink: {node: discard, in: {in: b}, rank: 0}\n");
    r = run_cli({"run", failing.path.string(), "--backend", "processes", "--procs", "2"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("error: process 'pyyy", 0) == 0);
    CHECK(r.err.find(" [...] ") != std::string::npos);
    CHECK(r.err.size() < 2100);
    CHECK(r.err.find("yyy' failed: division by zero in '1 // (x - 5)' (x = 5)\n") !=
          std::string::npos);
}

TEST_CASE("hostile: a partition's death names its signal whatever its processes are called") {
    std::string processes;
    for (int i = 0; i < 20; ++i)
        processes += "  ? w" + std::to_string(i) + std::string(3000, 'z') +
                     "\n  : {node: map, with: {expr: \"x\"}, in: {in: a" + std::to_string(i) +
                     "}, out: {out: a" + std::to_string(i + 1) + "}, rank: 1}\n";
    chanflow::test::TestPluginPath plugin_path;
    Graph g(
        "chanflow: 1\nplugins: [" + plugin_path.name() + "]\nprocesses:\n" +
        "  numbers: {node: range, with: {stop: 1000}, out: {out: a0}, rank: 0}\n" + processes +
        "  crash: {node: plugin.crash_at, with: {at: 7}, in: {in: a20}, out: {out: b}, rank: 1}\n"
        "  sink: {node: discard, in: {in: b}, rank: 0}\n");
    const auto r = run_cli({"run", g.path.string(), "--backend", "processes", "--procs", "2"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("error: partition 1 died: killed by signal 6 (SIGABRT); it ran w0zzz", 0) ==
          0);
    CHECK(r.err.find(", ...\n") != std::string::npos);
    CHECK(r.err.size() < 500);
}

TEST_CASE("hostile: text.lines cuts lines across blocks, and a line without end fails at 256 MiB") {
    Folder dir;
    const fs::path text = dir.path / "lines.txt";
    // Lines of every length around the block size, one with a CR, the last without newline.
    std::string want, content;
    for (std::size_t n : {0, 1, 1048575, 1048576, 1048577, 3, 2097152, 5}) {
        const std::string line(n, 'a' + static_cast<char>(n % 26));
        content += line + (n == 3 ? "\r\n" : "\n");
        want += std::to_string(n) + "\n";
    }
    content += "tail";
    want += "4\n";
    std::ofstream(text, std::ios::binary) << content;
    Graph lengths(
        "chanflow: 1\nprocesses:\n"
        "  l: {node: text.lines, with: {path: \"" +
        text.string() +
        "\"}, out: {out: c}}\n"
        "  n: {node: map, with: {expr: \"len(x)\"}, in: {in: c}, out: {out: d}}\n"
        "  p: {node: print, in: {in: d}}\n");
    auto r = run_cli({"run", lengths.path.string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == want);
    Graph endless(
        "chanflow: 1\nprocesses:\n"
        "  l: {node: text.lines, with: {path: /dev/zero}, out: {out: c}}\n"
        "  p: {node: print, in: {in: c}}\n");
    r = run_cli({"run", endless.path.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "error: process 'l' failed: line 1 of '/dev/zero' is longer than 256 MiB\n");
}

// ---- the graph file ----------------------------------------------------------------------

TEST_CASE("hostile: alias bombs and deep nesting are refused at once (exit 2)") {
    std::string bomb = "chanflow: 1\nparams:\n  a: &a [1,1,1,1,1,1,1,1,1]\n";
    for (char c = 'b'; c <= 'i'; ++c) {
        const std::string item = std::string("*") + static_cast<char>(c - 1);
        bomb += std::string("  ") + c + ": &" + c + " [" + item;
        for (int i = 1; i < 9; ++i) bomb += "," + item;
        bomb += "]\n";
    }
    Graph g(bomb +
            "processes:\n  a: {node: range, with: {stop: 3}, out: {out: c}}\n"
            "  b: {node: print, in: {in: c}}\n");
    const auto start = Clock::now();
    auto r = run_cli({"check", g.path.string()});
    CHECK(Clock::now() - start < kPromptly);
    CHECK(r.exit_code == 2);
    CHECK(r.err == g.path.string() +
                       ":9:10: error: alias '*f' takes what aliases repeat past "
                       "1000000 values\n");
    Graph deep("chanflow: 1\nparams:\n  x: " + std::string(100000, '[') + std::string(100000, ']') +
               "\n");
    r = run_cli({"check", deep.path.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(": error: lists and mappings nested too deeply\n") != std::string::npos);
    Graph power(
        "chanflow: 1\nprocesses:\n  a: {node: range, with: {stop: 3}, out: {out: c}}\n"
        "  m: {node: map, with: {expr: \"" +
        [] {
            std::string s = "1";
            for (int i = 0; i < 10000; ++i) s += "**1";
            return s;
        }() +
        "\"}, in: {in: c}, out: {out: d}}\n  b: {node: print, in: {in: d}}\n");
    r = run_cli({"check", power.path.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(": error: syntax error in expression: expression nested too deeply\n") !=
          std::string::npos);
}

TEST_CASE("hostile: diagnostics show a file's control characters escaped") {
    Graph g("chanflow: 1\n\"\\e]0;owned\\a\\e[2J\": 1\nprocesses: {}\n");
    const auto r = run_cli({"check", g.path.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find('\x1b') == std::string::npos);
    CHECK(r.err.find('\a') == std::string::npos);
    CHECK(r.err.find("unknown key '\\x1b]0;owned\\x07\\x1b[2J'") != std::string::npos);
}

TEST_CASE(
    "hostile: a file's plugins: no parameters, no libraries others could change, --no-plugins") {
    Folder dir;
    const fs::path lib = dir.path / "nodes.so";
    fs::copy_file(CHANFLOW_TEST_PLUGIN, lib);
    fs::permissions(lib, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
    const std::string body =
        "processes:\n  a: {node: range, with: {stop: 3}, out: {out: c}}\n"
        "  t: {node: plugin.triple, in: {in: c}, out: {out: d}}\n"
        "  b: {node: print, in: {in: d}}\n";
    const fs::path graph = dir.path / "g.yaml";
    std::ofstream(graph) << "chanflow: 1\nplugins: [nodes.so]\n" << body;
    auto r = run_cli({"run", graph.string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n3\n6\n");

    // --no-plugins: nothing is loaded (the library's witness file stays absent).
    const fs::path witness = dir.path / "loaded";
    setenv("CHANFLOW_TEST_PLUGIN_WITNESS", witness.c_str(), 1);
    r = run_cli({"check", graph.string(), "--no-plugins"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == graph.string() +
                       ":5:13: error: unknown node type 'plugin.triple' (the file's plugins were "
                       "not loaded)\n");
    CHECK_FALSE(fs::exists(witness));
    r = run_cli({"check", graph.string()});
    CHECK(r.exit_code == 0);
    CHECK(fs::exists(witness));
    unsetenv("CHANFLOW_TEST_PLUGIN_WITNESS");
    CHECK(run_cli({"run", graph.string(), "--no-plugins"}).exit_code == 2);

    // A parameter must not choose the library.
    const fs::path param = dir.path / "param.yaml";
    std::ofstream(param) << "chanflow: 1\nparams: {lib: nodes.so}\nplugins: [\"${lib}\"]\n" << body;
    r = run_cli({"check", param.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(":3:11: error: a plugin path takes no ${...}") != std::string::npos);

    // A plugin lies beside the file (or below), or in CHANFLOW_PLUGIN_PATH: not anywhere.
    const fs::path absolute = dir.path / "absolute.yaml";
    std::ofstream(absolute) << "chanflow: 1\nplugins: [" << lib.string() << "]\n" << body;
    r = run_cli({"check", absolute.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(":2:11: error: plugin '" + lib.string() +
                     "': a plugin lies in the graph file's folder or below it, or in a folder of "
                     "CHANFLOW_PLUGIN_PATH (write its file name)\n") != std::string::npos);
    fs::create_directory(dir.path / "sub");
    const fs::path climbing = dir.path / "sub" / "climbing.yaml";
    std::ofstream(climbing) << "chanflow: 1\nplugins: [../nodes.so]\n" << body;
    r = run_cli({"check", climbing.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(":2:11: error: plugin '../nodes.so': a plugin lies in the graph file's "
                     "folder or below it") != std::string::npos);

    // A library that others could have changed is refused.
    fs::permissions(lib, fs::perms::group_write, fs::perm_options::add);
    r = run_cli({"check", graph.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(":2:11: error: plugin '" + lib.string() +
                     "' may be written by others than its owner (mode 0775): refused\n") !=
          std::string::npos);
    fs::permissions(lib, fs::perms::group_write, fs::perm_options::remove);
    fs::permissions(dir.path, fs::perms::others_write, fs::perm_options::add);
    r = run_cli({"check", graph.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("' lies in a folder that others may change ('" + dir.path.string() +
                     "', mode 0757): refused\n") != std::string::npos);
    fs::permissions(dir.path, fs::perms::others_write, fs::perm_options::remove);
    if (geteuid() == 0) {
        REQUIRE(chown(lib.c_str(), 65534, 65534) == 0);
        r = run_cli({"check", graph.string()});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("' is owned by user 65534, not by this user or root: refused\n") !=
              std::string::npos);
        REQUIRE(chown(lib.c_str(), 0, 0) == 0);
    }

    // A bare name not beside the file is looked for in CHANFLOW_PLUGIN_PATH.
    Folder elsewhere;
    const fs::path bare = elsewhere.path / "g.yaml";
    std::ofstream(bare) << "chanflow: 1\nplugins: [nodes.so]\n" << body;
    r = run_cli({"check", bare.string()});
    CHECK(r.exit_code == 2);
    setenv("CHANFLOW_PLUGIN_PATH", ("/nonexistent:" + dir.path.string()).c_str(), 1);
    r = run_cli({"run", bare.string()});
    unsetenv("CHANFLOW_PLUGIN_PATH");
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n3\n6\n");
}
