// The cookbook: every graph in graphs/ runs through the real CLI and prints exactly what
// graphs/expected/NAME.out holds, also with other replica and worker counts. Where the
// order of lines is open by design (any-delivery consumers, merged collectives), both
// sides are compared sorted.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "run_cli.hpp"
#include "text_util.hpp"

namespace fs = std::filesystem;
using chanflow::test::read_file;
using chanflow::test::run_cli;
using chanflow::test::sorted_lines;

namespace {

struct Example {
    bool sorted = false;                             // the order of lines is open
    std::vector<std::vector<std::string>> variants;  // extra arguments; each gives the same output
};

const std::map<std::string, Example>& examples() {
    static const std::map<std::string, Example> table = {
        {"showcase", {false, {{}, {"--workers", "1"}}}},
        {"counter_printer", {false, {{}, {"--workers", "1"}}}},
        {"producer_consumer", {true, {{}, {"--workers", "1"}, {"--workers", "4"}}}},
        {"pipe_squares", {false, {{}, {"--workers", "1"}}}},
        {"pool_map",
         {false,
          {{},
           {"--set", "workers=1"},
           {"--set", "workers=7"},
           {"--workers", "1"},
           {"--workers", "4"}}}},
        {"collectives", {true, {{}, {"--workers", "1"}, {"--workers", "4"}}}},
        {"monte_carlo_pi", {false, {{}, {"--set", "workers=1"}, {"--set", "workers=3"}}}},
        {"wordcount",
         {false,
          {{},
           {"--set", "mappers=1", "--set", "reducers=1"},
           {"--set", "mappers=3", "--set", "reducers=2"},
           {"--workers", "1"}}}},
        {"chain", {false, {{}, {"--workers", "1"}}}},
        {"commstime", {false, {{}, {"--workers", "1"}}}},
    };
    return table;
}

const fs::path kGraphs = fs::path(CHANFLOW_SOURCE_DIR) / "graphs";

// A run must succeed quietly and print `want` (sorted, where the example's order is open).
void check_printed(const chanflow::test::CliResult& r, const Example& example,
                   const std::string& want) {
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    if (example.sorted)
        CHECK(sorted_lines(r.out) == sorted_lines(want));
    else
        CHECK(r.out == want);
}

void check_prints(const std::vector<std::string>& args, const Example& example,
                  const std::string& want) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    INFO("chanflow " << shown);
    check_printed(run_cli(args), example, want);
}

}  // namespace

TEST_CASE("cookbook: every graph in graphs/ has an expected output and a row here") {
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(kGraphs))
        if (entry.path().extension() == ".yaml") found.push_back(entry.path().stem().string());
    std::sort(found.begin(), found.end());
    std::vector<std::string> listed;
    for (const auto& [name, example] : examples()) listed.push_back(name);
    CHECK(found == listed);
    for (const auto& name : found) {
        INFO("graph: " << name);
        CHECK(fs::exists(kGraphs / "expected" / (name + ".out")));
        const auto r = run_cli({"check", "graphs/" + name + ".yaml"});
        CHECK(r.exit_code == 0);
        CHECK(r.err.empty());
    }
}

TEST_CASE(
    "cookbook: each graph prints its expected output, whatever the replica and worker count") {
    for (const auto& [name, example] : examples()) {
        const std::string want = read_file(kGraphs / "expected" / (name + ".out"));
        REQUIRE(!want.empty());
        for (const auto& extra : example.variants) {
            std::vector<std::string> args{"run", "graphs/" + name + ".yaml"};
            args.insert(args.end(), extra.begin(), extra.end());
            check_prints(args, example, want);
        }
    }
}

TEST_CASE("cookbook: on the processes backend, with 2 and 3 partitions, the same output") {
    for (const auto& [name, example] : examples()) {
        const std::string want = read_file(kGraphs / "expected" / (name + ".out"));
        for (const char* procs : {"2", "3"}) {
            std::vector<std::string> args{
                "run", "graphs/" + name + ".yaml", "--backend", "processes", "--procs", procs};
            if (name == "wordcount") args.insert(args.end(), {"--set", "mappers=3"});
            check_prints(args, example, want);
        }
    }
}

#ifdef CHANFLOW_MPIRUN
TEST_CASE("cookbook: on the MPI backend under mpirun, with 2 and 3 ranks, the same output") {
    for (const auto& entry : examples()) {
        const std::string& name = entry.first;  // a structured binding cannot be captured (clang)
        const auto& example = entry.second;
        const std::string want = read_file(kGraphs / "expected" / (name + ".out"));
        for (int ranks : {2, 3}) {
            std::vector<std::string> args{"run", "graphs/" + name + ".yaml", "--backend", "mpi"};
            if (name == "wordcount") args.insert(args.end(), {"--set", "mappers=3"});
            INFO("mpirun -np " << ranks << " chanflow run graphs/" << name << ".yaml");
            check_printed(chanflow::test::run_mpirun(ranks, args), example, want);
        }
    }
}
#endif

namespace {

// The word count of text.words (docs/nodes.md), written plainly: the reference for wordcount.yaml.
std::string reference_top10(const fs::path& text) {
    std::ifstream in(text);
    std::unordered_map<std::string, long> counts;
    for (std::string word; in >> word;) {
        std::size_t b = 0, e = word.size();
        while (b < e && std::ispunct(static_cast<unsigned char>(word[b]))) ++b;
        while (e > b && std::ispunct(static_cast<unsigned char>(word[e - 1]))) --e;
        if (b == e) continue;
        std::string w = word.substr(b, e - b);
        for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        ++counts[w];
    }
    std::vector<std::pair<std::string, long>> v(counts.begin(), counts.end());
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::string out;
    for (std::size_t i = 0; i < 10 && i < v.size(); ++i)
        out += "[\"" + v[i].first + "\", " + std::to_string(v[i].second) + "]\n";
    return out;
}

}  // namespace

TEST_CASE("cookbook: chanflow-textgen is deterministic and wordcount.yaml counts its text") {
    const fs::path dir =
        fs::temp_directory_path() / ("chanflow-textgen-" + std::to_string(getpid()));
    fs::create_directories(dir);
    const fs::path a = dir / "a.txt", b = dir / "b.txt", c = dir / "c.txt";
    auto gen = [](const std::vector<std::string>& args) {
        return run_cli(args, std::chrono::seconds(60), CHANFLOW_TEXTGEN);
    };
    REQUIRE(gen({"--mb", "2", "-o", a.string()}).exit_code == 0);
    REQUIRE(gen({"--mb", "2", "-o", b.string()}).exit_code == 0);
    REQUIRE(gen({"--mb", "2", "--seed", "7", "-o", c.string()}).exit_code == 0);
    const std::string text = read_file(a);
    CHECK(text == read_file(b));
    CHECK(text != read_file(c));
    CHECK(text.size() <= (2u << 20));
    CHECK(text.size() > (2u << 20) - 200);
    CHECK(text.back() == '\n');
    // Pinned: the same bytes on every machine and build.
    CHECK(text.substr(0, text.find('\n')) ==
          "Prugrodra gouvai mon Shelais toul breafear breafear but mabi kusait.");

    const auto r = run_cli({"run", "graphs/wordcount.yaml", "--set", "path=" + a.string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == reference_top10(a));
    // The benchmark's graph without a combiner counts the same.
    const auto per_word =
        run_cli({"run", "bench/graphs/wordcount_per_word.yaml", "--set", "path=" + a.string()});
    CHECK(per_word.exit_code == 0);
    CHECK(per_word.out == r.out);
#ifdef CHANFLOW_MPIRUN
    const auto mpi = chanflow::test::run_mpirun(
        2, {"run", "graphs/wordcount.yaml", "--backend", "mpi", "--set", "path=" + a.string()});
    CHECK(mpi.exit_code == 0);
    CHECK(mpi.out == r.out);
#endif

    const auto bad = gen({"--mb", "x"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--mb wants a whole number >= 0, got 'x'") != std::string::npos);
    fs::remove_all(dir);
}
