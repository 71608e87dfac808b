// `chanflow run --progress`: a progress line on stderr when it is a terminal, nothing when it
// is not; stdout keeps only what the graph prints.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "run_cli.hpp"
#include "text_util.hpp"

using chanflow::test::read_file;
using chanflow::test::run_cli;
using chanflow::test::run_cli_on_terminal;

TEST_CASE("progress: on a terminal, a line redrawn in place that ends at 100%") {
    const auto r =
        run_cli_on_terminal({"run", "graphs/pool_map.yaml", "--set", "n=200000", "--progress"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.size() > 0);
    CHECK(r.out.find('\r') == std::string::npos);  // stdout has the graph's output only
    CHECK(r.out.rfind("0\n1\n4\n9\n", 0) == 0);
    // Every redraw starts at the line's beginning and clears what the last one left.
    REQUIRE(r.err.size() > 2);
    CHECK(r.err[0] == '\r');
    CHECK(r.err.substr(r.err.size() - 2) == "\r\n");  // the terminal's newline
    const std::string last = r.err.substr(r.err.rfind('\r', r.err.size() - 3) + 1);
    const std::regex final_line(
        R"re(tasks \[#+\] 100%  200k / 200k  [0-9.]+[kM]? msg/s  in [0-9.]+s\x1b\[K\r\n)re");
    CHECK_MESSAGE(std::regex_match(last, final_line), last);
    CHECK(last.size() <= 99 + 5);  // width - 1 columns, then the escape and the newline
}

TEST_CASE("progress: across processes, the partitions' progress added up") {
    const auto r = run_cli_on_terminal({"run", "graphs/pool_map.yaml", "--set", "n=200000",
                                        "--backend", "processes", "--procs", "2", "--progress"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.rfind("0\n1\n4\n9\n", 0) == 0);
    REQUIRE(r.err.size() > 2);
    const std::string last = r.err.substr(r.err.rfind('\r', r.err.size() - 3) + 1);
    const std::regex final_line(
        R"re(tasks \[#+\] 100%  200k / 200k  [0-9.]+[kM]? msg/s  in [0-9.]+s\x1b\[K\r\n)re");
    CHECK_MESSAGE(std::regex_match(last, final_line), last);
}

#ifdef CHANFLOW_MPIRUN
TEST_CASE("progress: on mpi, rank 0 draws the ranks' progress added up") {
    // The sized source runs on rank 1: what rank 0 draws came from there.
    const auto r = run_cli_on_terminal(
        chanflow::test::mpirun_args(
            2, {"run", "tests/graphs/rank_pinned_source.yaml", "--backend", "mpi", "--progress"}),
        100, CHANFLOW_MPIRUN);
    REQUIRE(r.exit_code == 0);
    // mpirun passes a rank's stdout through a pseudo-terminal of its own, which once turned
    // the newline into "\r\n" (a loaded sanitizer run): the graph's output is what counts.
    std::string out = r.out;
    std::erase(out, '\r');
    CHECK(out == "19999900000\n");
    REQUIRE(r.err.size() > 2);
    const std::string last = r.err.substr(r.err.rfind('\r', r.err.size() - 3) + 1);
    const std::regex final_line(
        R"re(numbers \[#+\] 100%  200k / 200k  [0-9.]+[kM]? msg/s  in [0-9.]+s\x1b\[K\r\n)re");
    CHECK_MESSAGE(std::regex_match(last, final_line), last);
}
#endif

TEST_CASE("progress: text.lines reports the bytes of its file") {
    const auto size = std::filesystem::file_size(CHANFLOW_SOURCE_DIR "/graphs/data/sample.txt");
    const auto r = run_cli_on_terminal({"run", "graphs/wordcount.yaml", "--progress"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == read_file(CHANFLOW_SOURCE_DIR "/graphs/expected/wordcount.out"));
    const std::string total = size < 1024 ? std::to_string(size) + " B" : "KiB";
    const auto last = r.err.rfind("read [");
    REQUIRE(last != std::string::npos);
    CHECK(r.err.find("] 100%  ", last) != std::string::npos);
    CHECK(r.err.find(" / ", last) != std::string::npos);
    CHECK(r.err.find(total + "  ", last) != std::string::npos);
}

TEST_CASE("progress: off when stderr is not a terminal, it belongs to run") {
    const auto r = run_cli({"run", "graphs/pool_map.yaml", "--set", "n=1000", "--progress"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    const auto c = run_cli({"check", "graphs/pool_map.yaml", "--progress"});
    CHECK(c.exit_code == 2);
    CHECK(c.err.find("--progress belongs to 'run'") != std::string::npos);
}

TEST_CASE("progress: a failing run ends the progress line before its error") {
    const auto r = run_cli_on_terminal({"run", "tests/graphs/failure_poisons.yaml", "--progress"});
    CHECK(r.exit_code == 1);
    CHECK(r.out == "12\n6\n4\n");
    // No sized source here: messages counted. A slow run may redraw before the last line;
    // the error comes on a line of its own after it.
    const std::string error =
        "error: process 'divide' failed: division by zero in '12 // x' (x = 0)\r\n";
    REQUIRE(r.err.size() > error.size() + 2);
    CHECK(r.err.substr(r.err.size() - error.size()) == error);
    const std::string bar = r.err.substr(0, r.err.size() - error.size());
    const std::string last = bar.substr(bar.rfind('\r', bar.size() - 3));
    const std::regex text(R"re(\r[0-9]+ messages  [0-9.]+[kM]? msg/s  [0-9.]+s\x1b\[K\r\n)re");
    CHECK_MESSAGE(std::regex_match(last, text), last);
}
