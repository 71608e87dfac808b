// The command line itself: options, help, node docs, plugins, big generated graphs.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run_cli.hpp"

namespace fs = std::filesystem;
using chanflow::test::run_cli;

namespace {
// A scratch directory for generated graph files, removed at the end of the test.
struct ScratchDir {
    fs::path path;
    ScratchDir() {
        char tmpl[] = "/tmp/chanflow-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~ScratchDir() { fs::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};
}  // namespace

TEST_CASE("cli: --version and --help go to stdout and exit 0") {
    auto v = run_cli({"--version"});
    CHECK(v.exit_code == 0);
    CHECK(v.out.rfind("chanflow ", 0) == 0);
    CHECK(v.out.find("\nbuilt with: oneTBB, yaml-cpp") != std::string::npos);
    CHECK(v.err.empty());
    auto h = run_cli({"--help"});
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("chanflow run FILE") != std::string::npos);
    CHECK(h.out.find("exit codes") != std::string::npos);
}

TEST_CASE("cli: a bad command line exits 2 with a message on stderr only") {
    for (const auto& args :
         std::vector<std::vector<std::string>>{{},
                                               {"frobnicate"},
                                               {"run"},
                                               {"run", "a.yaml", "b.yaml"},
                                               {"run", "x.yaml", "--bogus"},
                                               {"run", "x.yaml", "--workers", "0"},
                                               {"run", "x.yaml", "--set", "novalue"},
                                               {"run", "x.yaml", "--workers"}}) {
        auto r = run_cli(args);
        CAPTURE(args.size());
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        CHECK(r.err.rfind("chanflow: error: ", 0) == 0);
    }
    auto r = run_cli({"frobnicate"});
    CHECK(r.err == "chanflow: error: unknown command 'frobnicate'\n(see 'chanflow --help')\n");
}

TEST_CASE("cli: a missing graph file is an error naming the file") {
    auto r = run_cli({"run", "no/such/graph.yaml"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("no/such/graph.yaml") != std::string::npos);
}

TEST_CASE("cli: nodes lists every node type and documents one") {
    auto all = run_cli({"nodes"});
    CHECK(all.exit_code == 0);
    std::istringstream names(
        "range values print discard merge delta prefix map filter take reduce collect ticker "
        "text.lines text.words text.count_words file.write key_by batch unbatch count_by_key "
        "sort zip random.uniform pi.sample");
    for (std::string n; names >> n;) {
        const bool listed = ("\n" + all.out).find("\n" + n + " ") != std::string::npos;
        CHECK_MESSAGE(listed, n);
    }
    auto range = run_cli({"nodes", "range"});
    CHECK(range.exit_code == 0);
    CHECK(range.out.find("stop (int, required)") != std::string::npos);
    CHECK(range.out.find("start (int, default 0)") != std::string::npos);
    CHECK(range.out.find("out (out)") != std::string::npos);
    auto merge = run_cli({"nodes", "merge"});
    CHECK(merge.out.find("in (in, a list of channels)") != std::string::npos);
    auto typo = run_cli({"nodes", "rnage"});
    CHECK(typo.exit_code == 2);
    CHECK(typo.err == "chanflow: error: unknown node type 'rnage' (did you mean 'range'?)\n");
}

TEST_CASE("cli: --set may only name a declared parameter") {
    auto r = run_cli({"run", "tests/graphs/commstime.yaml", "--set", "m=3"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("unknown parameter 'm'") != std::string::npos);
    auto ok = run_cli({"run", "tests/graphs/commstime.yaml", "--set", "n=3"});
    CHECK(ok.exit_code == 0);
    CHECK(ok.out == "0\n1\n2\n");
}

TEST_CASE("cli: unavailable backends are refused before anything runs") {
    auto r = run_cli({"run", "tests/graphs/commstime.yaml", "--backend", "gpu"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
}

TEST_CASE("cli: a plugin's node types are loaded from the graph file") {
    ScratchDir dir;
    chanflow::test::TestPluginPath plugin_path;
    const auto graph = dir.write(
        "plugin.yaml", "chanflow: 1\nplugins: [" + plugin_path.name() + "]\n" + R"(processes:
  numbers: {node: range, with: {stop: 3}, out: {out: a}}
  triple:  {node: plugin.triple, in: {in: a}, out: {out: b}}
  print:   {node: print, in: {in: b}}
)");
    auto r = run_cli({"run", graph});
    CHECK(r.err == "");
    CHECK(r.exit_code == 0);
    CHECK(r.out == "0\n3\n6\n");
    const auto missing = dir.write("missing.yaml", R"(chanflow: 1
plugins: [libnot-there.so]
processes:
  numbers: {node: range, with: {stop: 3}, out: {out: a}}
  print:   {node: print, in: {in: a}}
)");
    auto m = run_cli({"check", missing});
    CHECK(m.exit_code == 2);
    CHECK(m.err.find("libnot-there.so") != std::string::npos);
}

TEST_CASE("cli: nodes lists a plugin's node types, given the library or a graph file") {
    const std::string lib = CHANFLOW_TEST_PLUGIN;
    const std::string plugin_types =
        "plugin.crash_at   Passes its input on; calls abort() on the value `at` (from the test "
        "plugin).\nplugin.triple     Emits 3x (from the test plugin).\n";
    auto builtin = run_cli({"nodes"});
    REQUIRE(builtin.exit_code == 0);
    CHECK(builtin.out.find("plugin.triple") == std::string::npos);

    auto listed = run_cli({"nodes", "--plugin", lib});
    CHECK(listed.exit_code == 0);
    CHECK(listed.err == "");
    // The built-in list as before, then the plugin's own under the library's name.
    CHECK(listed.out == builtin.out + "\nfrom " + lib + ":\n" + plugin_types);

    auto one = run_cli({"nodes", "plugin.triple", "--plugin", lib});
    CHECK(one.exit_code == 0);
    CHECK(one.out.rfind("plugin.triple — Emits 3x (from the test plugin).\n", 0) == 0);

    ScratchDir dir;
    chanflow::test::TestPluginPath plugin_path;
    const auto graph = dir.write("g.yaml", "chanflow: 1\nplugins: [" + plugin_path.name() +
                                               "]\nprocesses:\n  p: {node: print}\n");
    auto from_graph = run_cli({"nodes", "--graph", graph});
    CHECK(from_graph.exit_code == 0);
    CHECK(from_graph.out.find(plugin_path.name() + ":\n" + plugin_types) != std::string::npos);

    auto missing = run_cli({"nodes", "--plugin", (dir.path / "libnone.so").string()});
    CHECK(missing.exit_code == 2);
    CHECK(missing.out == "");
    CHECK(missing.err.find("cannot load plugin") != std::string::npos);
    auto misplaced = run_cli({"check", graph, "--plugin", lib});
    CHECK(misplaced.exit_code == 2);
    CHECK(misplaced.err.find("--plugin and --graph belong to 'nodes'") != std::string::npos);
}

TEST_CASE("cli: file.write writes what print would, to a file it truncates") {
    ScratchDir dir;
    const std::string out = (dir.path / "out.txt").string();
    { std::ofstream(out) << "old content that must go\n"; }
    const auto graph = dir.write("write.yaml",
                                 "chanflow: 1\nprocesses:\n"
                                 "  items: {node: values, with: {items: [1, 2.5, "
                                 "text, [a, 1]]}, out: {out: v}}\n"
                                 "  save: {node: file.write, with: {path: \"" +
                                     out + "\"}, in: {in: v}}\n");
    auto r = run_cli({"run", graph});
    CHECK(r.exit_code == 0);
    CHECK(r.out.empty());
    std::ifstream f(out);
    std::stringstream ss;
    ss << f.rdbuf();
    CHECK(ss.str() == "1\n2.5\ntext\n[\"a\", 1]\n");
}

TEST_CASE("cli: a ring of 100 000 processes passes a token around") {
    ScratchDir dir;
    constexpr int n = 100000;
    std::string yaml = "chanflow: 1\nprocesses:\n";
    yaml += "  p0: {node: prefix, with: {value: 0}, in: {in: r" + std::to_string(n - 1) +
            "}, out: {out: r0}}\n";
    for (int i = 1; i < n - 1; ++i)
        yaml += "  p" + std::to_string(i) + ": {node: map, with: {expr: \"x + 1\"}, in: {in: r" +
                std::to_string(i - 1) + "}, out: {out: r" + std::to_string(i) + "}}\n";
    // `last` lets the token pass twice, and a delta after it shows each pass.
    yaml += "  last: {node: take, with: {count: 2}, in: {in: r" + std::to_string(n - 2) +
            "}, out: {out: passed}}\n";
    yaml += "  tap: {node: delta, in: {in: passed}, out: {out: [r" + std::to_string(n - 1) +
            ", shown]}}\n";
    yaml += "  print: {node: print, in: {in: shown}}\n";
    const auto graph = dir.write("ring.yaml", yaml);
    // Generous: sanitizer builds run this ring ten times slower.
    auto r = run_cli({"run", graph, "--workers", "2"}, std::chrono::seconds(280));
    CHECK(r.err == "");
    CHECK(r.out == "99998\n199996\n");
    CHECK(r.exit_code == 0);
}
