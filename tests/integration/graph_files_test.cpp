// Runs every graph of tests/graphs/ through the real CLI and compares stdout, stderr and
// the exit code with what the file's header comments expect:
//   # args: run --workers 1     the command line (FILE is appended); default "run"
//   # exit: 3                   the exit code; default 0
//   # stderr: TEXT              one expected stderr line (repeatable; exact, in order)
//   # sorted: true              compare stdout lines sorted (order open by design)
// Expected stdout is NAME.out beside the graph (absent: empty).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "run_cli.hpp"
#include "text_util.hpp"

namespace fs = std::filesystem;
using chanflow::test::read_file;
using chanflow::test::run_cli;
using chanflow::test::sorted_lines;

namespace {

std::vector<std::string> split_words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

struct Expectation {
    std::vector<std::string> args{"run"};
    int exit = 0;
    std::string err;
    bool sorted = false;
};

Expectation read_expectation(const fs::path& graph) {
    Expectation e;
    std::istringstream in(read_file(graph));
    for (std::string line; std::getline(in, line) && line.rfind("#", 0) == 0;) {
        auto value_of = [&](const std::string& key) -> std::optional<std::string> {
            const std::string prefix = "# " + key + ":";
            if (line.rfind(prefix, 0) != 0) return std::nullopt;
            std::string v = line.substr(prefix.size());
            if (!v.empty() && v[0] == ' ') v.erase(0, 1);
            return v;
        };
        if (auto v = value_of("args")) e.args = split_words(*v);
        if (auto v = value_of("exit")) e.exit = std::stoi(*v);
        if (auto v = value_of("stderr")) e.err += *v + "\n";
        if (auto v = value_of("sorted")) e.sorted = *v == "true";
    }
    return e;
}

}  // namespace

TEST_CASE("graphs: every file in tests/graphs gives its expected output and exit code") {
    std::vector<fs::path> graphs;
    for (const auto& entry : fs::directory_iterator(fs::path(CHANFLOW_SOURCE_DIR) / "tests/graphs"))
        if (entry.path().extension() == ".yaml") graphs.push_back(entry.path());
    std::sort(graphs.begin(), graphs.end());
    REQUIRE(graphs.size() >= 10);
    for (const auto& graph : graphs) {
        const Expectation e = read_expectation(graph);
        std::vector<std::string> args = e.args;
        args.push_back(fs::relative(graph, CHANFLOW_SOURCE_DIR).string());
        const auto r = run_cli(args);
        fs::path expected_out = graph;
        expected_out.replace_extension(".out");
        const std::string want = fs::exists(expected_out) ? read_file(expected_out) : "";
        INFO("graph: " << graph.filename().string());
        CHECK(r.exit_code == e.exit);
        if (e.sorted)
            CHECK(sorted_lines(r.out) == sorted_lines(want));
        else
            CHECK(r.out == want);
        CHECK(r.err == e.err);
    }
}
