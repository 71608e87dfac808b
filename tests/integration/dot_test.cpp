// `chanflow dot`: the checked graph drawn with GraphViz. The DOT it prints must parse back
// with cgraph and hold the processes and channels the graph implies; SVG and PNG files must
// be files of that format.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "run_cli.hpp"
#include "text_util.hpp"

#ifdef CHANFLOW_HAVE_GRAPHVIZ
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>
#endif

namespace fs = std::filesystem;
using chanflow::test::read_file;
using chanflow::test::run_cli;

namespace {

bool built_with_graphviz() {
    return run_cli({"--version"}).out.find("no GraphViz") == std::string::npos;
}

#ifdef CHANFLOW_HAVE_GRAPHVIZ
struct Parsed {
    std::set<std::string> nodes;
    std::set<std::pair<std::string, std::string>> edges;
    std::size_t edge_count = 0;
};

Parsed parse_dot(const std::string& text) {
    Parsed out;
    Agraph_t* g = agmemread(text.c_str());
    REQUIRE(g != nullptr);
    for (Agnode_t* n = agfstnode(g); n; n = agnxtnode(g, n)) {
        out.nodes.insert(agnameof(n));
        for (Agedge_t* e = agfstout(g, n); e; e = agnxtout(g, e)) {
            out.edges.insert({agnameof(agtail(e)), agnameof(aghead(e))});
            ++out.edge_count;
        }
    }
    agclose(g);
    return out;
}
#endif

}  // namespace

TEST_CASE("dot: every cookbook graph prints DOT that cgraph reads back") {
    if (!built_with_graphviz()) {
        const auto r = run_cli({"dot", "graphs/wordcount.yaml"});
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("built without GraphViz") != std::string::npos);
        return;
    }
    for (const auto& entry : fs::directory_iterator(fs::path(CHANFLOW_SOURCE_DIR) / "graphs")) {
        if (entry.path().extension() != ".yaml") continue;
        const std::string file = "graphs/" + entry.path().filename().string();
        INFO("graph: " << file);
        const auto r = run_cli({"dot", file});
        CHECK(r.exit_code == 0);
        CHECK(r.err.empty());
        CHECK(r.out.rfind("digraph", 0) == 0);
#ifdef CHANFLOW_HAVE_GRAPHVIZ
        const Parsed p = parse_dot(r.out);
        CHECK(!p.nodes.empty());
        CHECK(p.edge_count > 0);
#endif
    }
}

#ifdef CHANFLOW_HAVE_GRAPHVIZ
TEST_CASE("dot: processes are nodes, channels with more than two ends get a node of their own") {
    const auto r = run_cli({"dot", "graphs/wordcount.yaml"});
    REQUIRE(r.exit_code == 0);
    const Parsed p = parse_dot(r.out);
    using Edge = std::pair<std::string, std::string>;
    CHECK(p.nodes == std::set<std::string>{"read", "split", "count", "top", "print",
                                           "channel lines", "channel words", "channel counts"});
    CHECK(p.edges == std::set<Edge>{{"read", "channel lines"},
                                    {"channel lines", "split"},
                                    {"split", "channel words"},
                                    {"channel words", "count"},
                                    {"count", "channel counts"},
                                    {"channel counts", "top"},
                                    {"top", "print"}});
    // Labels: the node type with the replica count, the channel with kind, capacity and
    // delivery; a replicated process is a stack.
    CHECK(r.out.find("label=\"split\\ntext.count_words \xc3\x97"
                     "2\"") != std::string::npos);
    CHECK(r.out.find("label=\"words\\nany2any, 64, hash\"") != std::string::npos);
    CHECK(r.out.find("label=\"top\\none2one, 64\"") != std::string::npos);
    CHECK(r.out.find("shape=box3d") != std::string::npos);
    CHECK(r.out.find("rankdir=LR") != std::string::npos);

    // A rendezvous shows as rdv; an ordered fan-out is drawn as written (no merge, no lanes).
    const auto pipe = run_cli({"dot", "graphs/pipe_squares.yaml"});
    CHECK(pipe.out.find("one2one, rdv") != std::string::npos);
    const Parsed pool = parse_dot(run_cli({"dot", "graphs/pool_map.yaml"}).out);
    CHECK(pool.nodes ==
          std::set<std::string>{"tasks", "square", "show", "channel tasks", "channel results"});
    CHECK(pool.edge_count == 4);
}

namespace {
// Where GraphViz's dot layout puts things, in points: node boxes and edge label centres.
struct Layout {
    struct Box {
        std::string name;
        double x0, y0, x1, y1;
        bool contains(double x, double y) const { return x > x0 && x < x1 && y > y0 && y < y1; }
    };
    std::vector<Box> nodes;
    std::vector<std::pair<double, double>> labels;  // channel labels, on their edges
    std::vector<std::pair<double, double>> edges;   // x of each edge's tail and head
};

Layout lay_out(const std::string& dot) {
    // One context for the whole test program: GraphViz's text layout reads font names a
    // freed context has freed.
    static GVC_t* const gvc = gvContext();
    Agraph_t* g = agmemread(dot.c_str());
    REQUIRE(g != nullptr);
    REQUIRE(gvLayout(gvc, g, "dot") == 0);
    char* data = nullptr;
    unsigned int size = 0;
    REQUIRE(gvRenderData(gvc, g, "dot", &data, &size) == 0);
    const std::string laid(data, size);
    gvFreeRenderData(data);
    gvFreeLayout(gvc, g);
    agclose(g);

    Layout out;
    Agraph_t* h = agmemread(laid.c_str());
    REQUIRE(h != nullptr);
    auto point = [](const char* text) {
        double x = 0, y = 0;
        REQUIRE(text != nullptr);
        REQUIRE(std::sscanf(text, "%lf,%lf", &x, &y) == 2);
        return std::pair{x, y};
    };
    auto number = [](const char* text) { return text && *text ? std::atof(text) : 0.0; };
    for (Agnode_t* n = agfstnode(h); n; n = agnxtnode(h, n)) {
        const auto [x, y] = point(agget(n, const_cast<char*>("pos")));
        const double w = 72 * number(agget(n, const_cast<char*>("width")));
        const double ht = 72 * number(agget(n, const_cast<char*>("height")));
        out.nodes.push_back({agnameof(n), x - w / 2, y - ht / 2, x + w / 2, y + ht / 2});
        for (Agedge_t* e = agfstout(h, n); e; e = agnxtout(h, e)) {
            const char* lp = agget(e, const_cast<char*>("lp"));
            if (lp && *lp) out.labels.push_back(point(lp));
            const double tail = point(agget(agtail(e), const_cast<char*>("pos"))).first;
            const double head = point(agget(aghead(e), const_cast<char*>("pos"))).first;
            out.edges.emplace_back(tail, head);
        }
    }
    agclose(h);
    return out;
}
}  // namespace

TEST_CASE("dot: pictures of 20 to 50 processes stay readable") {
    // A long four-branch pipeline (40 processes) and a tangle of fan-in and fan-out.
    for (const char* file :
         {"tests/graphs/big_pipeline.yaml", "tests/graphs/mesh_fan.yaml", "graphs/wordcount.yaml",
          "graphs/commstime.yaml", "graphs/collectives.yaml"}) {
        INFO("graph: " << file);
        const auto r = run_cli({"dot", file});
        REQUIRE(r.exit_code == 0);
        const Layout l = lay_out(r.out);
        // No box overlaps another.
        for (std::size_t i = 0; i < l.nodes.size(); ++i)
            for (std::size_t j = i + 1; j < l.nodes.size(); ++j) {
                const auto& a = l.nodes[i];
                const auto& b = l.nodes[j];
                INFO(a.name << " and " << b.name);
                CHECK((a.x1 <= b.x0 || b.x1 <= a.x0 || a.y1 <= b.y0 || b.y1 <= a.y0));
            }
        // No channel label sits on a box or on another label.
        for (std::size_t i = 0; i < l.labels.size(); ++i) {
            const double x = l.labels[i].first, y = l.labels[i].second;
            for (const auto& b : l.nodes) {
                INFO("label at " << x << "," << y << " on " << b.name);
                CHECK_FALSE(b.contains(x, y));
            }
            for (std::size_t j = i + 1; j < l.labels.size(); ++j)
                CHECK(std::hypot(x - l.labels[j].first, y - l.labels[j].second) > 12);
        }
        // Left to right: apart from a cycle's way back, every edge goes rightwards.
        std::size_t rightwards = 0;
        for (const auto& [tail, head] : l.edges) rightwards += tail < head;
        CHECK(rightwards + 2 >= l.edges.size());
    }
    // The 40 processes are each a box of their own.
    const Layout big = lay_out(run_cli({"dot", "tests/graphs/big_pipeline.yaml"}).out);
    CHECK(big.nodes.size() == 41);  // and the channel `joined`, which has five ends
}

namespace {
// The nodes of each cluster of a DOT text, by cluster name.
std::map<std::string, std::set<std::string>> clusters_of(const std::string& text) {
    std::map<std::string, std::set<std::string>> out;
    Agraph_t* g = agmemread(text.c_str());
    REQUIRE(g != nullptr);
    for (Agraph_t* sub = agfstsubg(g); sub; sub = agnxtsubg(sub))
        for (Agnode_t* n = agfstnode(sub); n; n = agnxtnode(sub, n))
            out[agnameof(sub)].insert(agnameof(n));
    agclose(g);
    return out;
}
}  // namespace

TEST_CASE("dot: with --backend processes or mpi, each partition is a cluster") {
    const auto r =
        run_cli({"dot", "graphs/wordcount.yaml", "--backend", "processes", "--procs", "2"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    using Set = std::set<std::string>;
    // Replicas go round-robin, the rest to rank 0; a split process has a box in each.
    CHECK(clusters_of(r.out) ==
          std::map<std::string, Set>{
              {"cluster_rank_0", Set{"read", "split@0", "count@0", "top", "print"}},
              {"cluster_rank_1", Set{"split@1", "count@1"}}});
    CHECK(r.out.find("label=\"split[1]\\ntext.count_words\"") != std::string::npos);
    CHECK(r.out.find("label=\"rank 1\"") != std::string::npos);
    CHECK(r.out.find("newrank=true") != std::string::npos);
    CHECK(r.out.find("style=dashed") != std::string::npos);  // channels between partitions
    CHECK(parse_dot(r.out).edge_count == 11);
    // Three ranks for mpi, with an ordered fan-out: each replica on its own rank, its output
    // drawn from every box, and the readable layout kept.
    const auto m = run_cli({"dot", "graphs/pool_map.yaml", "--backend", "mpi", "--procs", "3"});
    REQUIRE(m.exit_code == 0);
    const auto c = clusters_of(m.out);
    CHECK(c.at("cluster_rank_0") == Set{"tasks", "square@0", "show"});
    CHECK(c.at("cluster_rank_1") == Set{"square@1"});
    CHECK(c.at("cluster_rank_2") == Set{"square@2"});
    const Parsed pool = parse_dot(m.out);
    for (const char* box : {"square@0", "square@1", "square@2"})
        CHECK(pool.edges.count({box, "channel results"}) == 1);
    const Layout l = lay_out(m.out);
    for (const auto& [tail, head] : l.edges) CHECK(tail < head);
    // Without --backend, no clusters.
    CHECK(clusters_of(run_cli({"dot", "graphs/wordcount.yaml"}).out).empty());
}

TEST_CASE("dot: placement errors") {
    // --procs belongs to the partitioned backends.
    const auto t = run_cli({"dot", "graphs/wordcount.yaml", "--procs", "2"});
    CHECK(t.exit_code == 2);
    CHECK(t.err.find("--procs belongs to the processes and mpi backends") != std::string::npos);
    const auto bad =
        run_cli({"dot", "graphs/wordcount.yaml", "--backend", "processes", "--procs", "0"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--procs takes a number from 1 to 1024, got '0'") != std::string::npos);
    // A pin beyond the partitions names the place of the rank.
    const auto pin =
        run_cli({"dot", "tests/graphs/rank_pinned.yaml", "--backend", "processes", "--procs", "2"});
    CHECK(pin.exit_code == 2);
    CHECK(pin.out.empty());
    CHECK(pin.err ==
          "tests/graphs/rank_pinned.yaml:6:82: error: process 'last' is pinned to rank 2, but the "
          "run has 2 partitions (0..1)\n");
    CHECK(
        run_cli({"dot", "tests/graphs/rank_pinned.yaml", "--backend", "processes", "--procs", "3"})
            .exit_code == 0);
}

TEST_CASE("dot: --stats-from paints a run's statistics on the picture") {
    const fs::path dir = fs::temp_directory_path() / ("chanflow-paint-" + std::to_string(getpid()));
    fs::create_directories(dir);
    const std::string stats = (dir / "s.json").string();
    REQUIRE(run_cli({"run", "graphs/wordcount.yaml", "--stats=" + stats}).exit_code == 0);
    const auto r = run_cli({"dot", "graphs/wordcount.yaml", "--stats-from", stats});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    const Parsed p = parse_dot(r.out);
    CHECK(p.nodes.count("split") == 1);
    CHECK(p.nodes.count("legend") == 1);  // in the legend cluster
    CHECK(r.out.find("busy ") != std::string::npos);
    CHECK(r.out.find("msgs") != std::string::npos);
    CHECK(r.out.find("penwidth") != std::string::npos);
    CHECK(r.out.find("cluster_legend") != std::string::npos);
    // The lines channel carried every line of the sample text.
    CHECK(r.out.find("lines\\none2any, 1024\\n23 msgs") != std::string::npos);
    CHECK(run_cli({"dot", "graphs/wordcount.yaml", "--stats-from", stats, "-o",
                   (dir / "w.svg").string()})
              .exit_code == 0);

    // A file that is not statistics: named, nothing drawn.
    const std::string bad = (dir / "bad.json").string();
    {
        std::ofstream f(bad);
        f << "{\"wall_s\": [1, 2]}\n";
    }
    const auto broken = run_cli({"dot", "graphs/wordcount.yaml", "--stats-from", bad});
    CHECK(broken.exit_code == 2);
    CHECK(broken.out.empty());
    CHECK(broken.err.find(bad) != std::string::npos);
    const auto missing = run_cli({"dot", "graphs/wordcount.yaml", "--stats-from", "nope.json"});
    CHECK(missing.exit_code == 2);
    CHECK(missing.err.find("cannot read statistics file 'nope.json'") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("dot: -o writes DOT, SVG or PNG by its extension") {
    const fs::path dir = fs::temp_directory_path() / ("chanflow-dot-" + std::to_string(getpid()));
    fs::create_directories(dir);
    const auto dot = run_cli({"dot", "graphs/commstime.yaml", "-o", (dir / "c.dot").string()});
    CHECK(dot.exit_code == 0);
    CHECK(dot.out.empty());
    CHECK(read_file(dir / "c.dot") == run_cli({"dot", "graphs/commstime.yaml"}).out);

    const auto svg = run_cli({"dot", "graphs/collectives.yaml", "-o", (dir / "c.svg").string()});
    CHECK(svg.exit_code == 0);
    const std::string svg_text = read_file(dir / "c.svg");
    CHECK(svg_text.rfind("<?xml", 0) == 0);
    CHECK(svg_text.find("<svg") != std::string::npos);
    CHECK(svg_text.find("bcast_root") != std::string::npos);

    const auto png = run_cli({"dot", "graphs/wordcount.yaml", "-o", (dir / "w.png").string()});
    CHECK(png.exit_code == 0);
    const std::string png_bytes = read_file(dir / "w.png");
    CHECK(png_bytes.size() > 1000);
    CHECK(png_bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));

    const auto bad = run_cli({"dot", "graphs/wordcount.yaml", "-o", (dir / "w.jpeg").string()});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("cannot tell the picture format") != std::string::npos);
    const auto nowhere = run_cli({"dot", "graphs/wordcount.yaml", "-o", "/nonexistent/dir/w.dot"});
    CHECK(nowhere.exit_code == 2);
    CHECK(nowhere.err.find("cannot write '/nonexistent/dir/w.dot'") != std::string::npos);
    fs::remove_all(dir);
}
#endif

TEST_CASE("dot: command-line errors") {
    const auto run_o = run_cli({"run", "graphs/counter_printer.yaml", "-o", "x.svg"});
    CHECK(run_o.exit_code == 2);
    CHECK(run_o.err.find("-o belongs to 'dot'") != std::string::npos);
    const auto bad_graph = run_cli({"dot", "tests/graphs/check_errors.yaml"});
    CHECK(bad_graph.exit_code == 2);
    CHECK(bad_graph.out.empty());
}

// (Without the GPU module, a process that requires a GPU is a check error: nothing to draw.)
#if CHANFLOW_TEST_GPU_MODULE
TEST_CASE("dot: a process placed on a GPU says so, in a green frame") {
    if (!built_with_graphviz()) return;
    // Drawn as placed in the file, whether or not a GPU can be used here.
    const auto r = run_cli({"dot", "tests/graphs/gpu/pipeline.yaml", "--no-plugins"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("label=\"m\\nmap\\non GPU 0\"") != std::string::npos);
    CHECK(r.out.find("label=\"f\\nfilter\\non GPU\"") != std::string::npos);
    CHECK(r.out.find("label=\"p\\nprint\"") != std::string::npos);
    CHECK(r.out.find("#76b900") != std::string::npos);
    const auto cpu = run_cli({"dot", "graphs/pipe_squares.yaml"});
    CHECK(cpu.out.find("#76b900") == std::string::npos);
}
#endif
