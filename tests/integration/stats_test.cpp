// `chanflow run --stats`: the counters must match what the graph implies.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "run_cli.hpp"
#include "text_util.hpp"

namespace fs = std::filesystem;
using chanflow::test::read_file;
using chanflow::test::run_cli;
using chanflow::test::stats_field;

TEST_CASE("stats: the JSON counts match the graph, on threads and across processes") {
    // On two partitions the replicas run apart and bridges carry the channels: each message
    // still counts once.
    for (const std::vector<std::string>& backend :
         {std::vector<std::string>{},
          std::vector<std::string>{"--backend", "processes", "--procs", "2"}}) {
        CAPTURE(backend.size());
        const fs::path file =
            fs::temp_directory_path() / ("chanflow-stats-" + std::to_string(getpid()) + ".json");
        std::vector<std::string> args{"run", "tests/graphs/stats_counts.yaml",
                                      "--stats=" + file.string()};
        args.insert(args.end(), backend.begin(), backend.end());
        const auto r = run_cli(args);
        REQUIRE(r.exit_code == 0);
        CHECK(r.out.empty());
        CHECK(r.err.empty());  // the table only with --stats
        const std::string json = read_file(file);
        fs::remove(file);

        // range stop=1000: 1000 writes and reads on its channel, whatever the replicas took.
        CHECK(stats_field(json, "numbers", "writes") == 1000);
        CHECK(stats_field(json, "numbers", "reads") == 1000);
        CHECK(stats_field(json, "numbers", "capacity") == 16);
        CHECK(stats_field(json, "numbers", "peak") <= 16);
        CHECK(stats_field(json, "source", "messages_out") == 1000);
        CHECK(stats_field(json, "double[0]", "messages_in") +
                  stats_field(json, "double[1]", "messages_in") ==
              1000);
        CHECK(stats_field(json, "double[0]", "messages_out") +
                  stats_field(json, "double[1]", "messages_out") ==
              1000);
        CHECK(stats_field(json, "doubled", "writes") == 1000);
        CHECK(stats_field(json, "evens", "messages_in") == 1000);
        CHECK(stats_field(json, "evens", "messages_out") == 500);
        CHECK(stats_field(json, "kept", "reads") == 500);
        CHECK(stats_field(json, "sink", "messages_in") == 500);
        CHECK(json.find("\"kind\": \"any2one\"") != std::string::npos);
        CHECK(json.find("\"busy_s\": ") != std::string::npos);
        CHECK(json.find("\"blocked_read_s\": ") != std::string::npos);
        CHECK(json.find("bridge") == std::string::npos);  // the engine's own are not shown
    }
}

TEST_CASE("stats: --stats prints a table on stderr, stdout keeps the graph's output") {
    const auto r = run_cli({"run", "graphs/counter_printer.yaml", "--stats"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n1\n2\n3\n4\n");
    CHECK(r.err.rfind("run statistics (", 0) == 0);
    CHECK(r.err.find("process") != std::string::npos);
    CHECK(r.err.find("counter") != std::string::npos);
    CHECK(r.err.find("numbers    one2one          any         0           5           5       0") !=
          std::string::npos);
    // An ordered fan-out's merge and lanes are the engine's, not the graph's: not listed.
    const auto ordered = run_cli({"run", "graphs/pool_map.yaml", "--stats"});
    CHECK(ordered.exit_code == 0);
    CHECK(ordered.err.find("[ordered") == std::string::npos);
    CHECK(ordered.err.find("square[3]") != std::string::npos);

    const auto bad = run_cli({"check", "graphs/counter_printer.yaml", "--stats"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--stats belongs to 'run'") != std::string::npos);
}
