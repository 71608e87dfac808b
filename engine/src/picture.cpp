// picture.cpp — a plan drawn with GraphViz's libraries (cgraph builds it, gvc lays it out
// and renders it, in-process: the `dot` program is not needed). Without GraphViz at build
// time, can_draw() is false and draw() says so.
#include "chanflow/picture.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "chanflow/node.hpp"

#ifdef CHANFLOW_HAVE_GRAPHVIZ
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>
#endif

namespace chanflow {
namespace {

// ---- the picture, independent of GraphViz --------------------------------------------------

struct Box {
    std::string id;     // the process as written; with partitions, "name@k" when it is split
    std::string label;  // name, node type, replicas
    bool stacked = false;
    double busy = -1;   // share of the run its replicas were busy, 0..1; -1 without statistics
    std::string group;  // the process as written
    int partition = 0;
    bool gpu = false;  // placed on a GPU
};

struct End {
    std::string box;
    std::string port;
    bool operator<(const End& o) const { return std::tie(box, port) < std::tie(o.box, o.port); }
};

struct Wire {
    std::string name;
    std::string label;
    std::set<End> writers, readers;
    std::size_t ends = 0;  // as written: every replica one end
    double weight = -1;    // message count scaled to 0..1; -1 without statistics
    bool bottleneck = false;
    int partition = -1;  // where its ends all are; -1 when it crosses partitions
};

struct Picture {
    std::vector<Box> boxes;
    std::vector<Wire> wires;
};

std::string channel_label(const PlanChannel& c) {
    std::string s = c.name + "\\n" + channel_kind_name(c.kind) + ", ";
    s += c.capacity == 0 ? std::string("rdv") : std::to_string(c.capacity);
    if (c.deliver != Deliver::Any) s += std::string(", ") + deliver_name(c.deliver);
    return s;
}

// The statistics painted on a picture: busy shares, message counts, bottlenecks.
void paint(Picture& pic, const RunStats& st) {
    if (st.wall <= 0) return;
    std::map<std::string, double> busy, waited_for_room;
    std::map<std::string, int> replicas;
    for (const ProcessStats& p : st.processes) {
        busy[p.group] += p.busy;
        waited_for_room[p.group] += p.blocked_write;
        ++replicas[p.group];
    }
    std::map<std::string, std::string> group_of;
    for (Box& b : pic.boxes) {
        group_of[b.id] = b.group;
        if (!replicas.count(b.group)) continue;
        b.busy = std::min(1.0, busy[b.group] / (st.wall * replicas[b.group]));
        b.label += "\\nbusy " + std::to_string(static_cast<int>(b.busy * 100 + 0.5)) + "%";
    }
    std::uint64_t most = 1;
    for (const ChannelStats& c : st.channels) most = std::max(most, c.writes);
    for (Wire& w : pic.wires) {
        auto it = std::find_if(st.channels.begin(), st.channels.end(),
                               [&](const ChannelStats& c) { return c.name == w.name; });
        if (it == st.channels.end()) continue;
        w.weight =
            std::log1p(static_cast<double>(it->writes)) / std::log1p(static_cast<double>(most));
        w.label += "\\n" + std::to_string(it->writes) + " msgs";
        // Full at its peak while its writers waited for room most of the run.
        double waited = 0;
        int writers = 0;
        std::set<std::string> writing;  // groups: a split process has several boxes
        for (const End& e : w.writers) writing.insert(group_of[e.box]);
        for (const std::string& g : writing) {
            waited += waited_for_room[g];
            writers += replicas.count(g) ? replicas[g] : 1;
        }
        w.bottleneck = it->capacity > 0 && it->peak >= it->capacity && writers > 0 &&
                       waited / writers > 0.5 * st.wall;
        if (w.bottleneck) w.label += ", full: bottleneck";
    }
}

// The replica numbers of a group that run in one partition: "[0,2]".
std::string replica_list(const std::vector<int>& replicas) {
    std::string s = "[";
    for (std::size_t i = 0; i < replicas.size(); ++i)
        s += (i ? "," : "") + std::to_string(replicas[i]);
    return s + "]";
}

Picture picture_of(const Plan& plan, const Placement* placement) {
    Picture pic;
    auto partition = [&](std::size_t i) { return placement ? placement->of_process[i] : 0; };
    // A box per process as written, or with partitions, per process and partition.
    std::map<std::string, std::map<int, std::vector<int>>> parts;  // group -> k -> replicas
    for (std::size_t i = 0; i < plan.processes.size(); ++i)
        if (!plan.processes[i].hidden)
            parts[plan.processes[i].group][partition(i)].push_back(plan.processes[i].replica);
    auto box_id = [&](const PlanProcess& p, int k) {
        return parts[p.group].size() > 1 ? p.group + "@" + std::to_string(k) : p.group;
    };
    // Where each process is drawn: its box; an ordered merge, the boxes of the replicas it
    // merges, with the port they write through.
    std::vector<std::string> shown(plan.processes.size());
    std::vector<std::set<std::string>> merged_boxes(plan.processes.size());
    std::vector<std::string> merged_port(plan.processes.size());
    std::vector<int> merged_replicas(plan.processes.size(), 1);
    std::set<std::string> made;
    for (std::size_t i = 0; i < plan.processes.size(); ++i) {
        const PlanProcess& p = plan.processes[i];
        if (p.hidden) continue;
        const int k = partition(i);
        shown[i] = box_id(p, k);
        if (!made.insert(shown[i]).second) continue;
        const std::vector<int>& here = parts[p.group][k];
        const bool split = parts[p.group].size() > 1;
        // "\\n": DOT's line break inside a label.
        Box b{shown[i],
              p.group + (split ? replica_list(here) : "") + "\\n" +
                  (p.type ? p.type->name : std::string("?")),
              false,
              -1,
              p.group,
              k};
        if (here.size() > 1) {
            b.label += " \xc3\x97" + std::to_string(here.size());  // ×N
            b.stacked = true;
        }
        if (p.ordered && p.replicas > 1) b.label += ", ordered";
        if (p.gpu) {
            b.label += "\\non GPU";
            if (p.device) b.label += " " + std::to_string(*p.device);
            b.gpu = true;
        }
        pic.boxes.push_back(std::move(b));
    }
    for (std::size_t i = 0; i < plan.processes.size(); ++i) {
        const PlanProcess& p = plan.processes[i];
        if (!p.hidden || p.inputs.empty() || p.inputs[0].channels.empty()) continue;
        const PlanChannel& lane = plan.channels[p.inputs[0].channels[0]];
        if (lane.writers.empty()) continue;
        shown[i] = shown[lane.writers[0].process];
        merged_port[i] = lane.writers[0].port;
        merged_replicas[i] = plan.processes[lane.writers[0].process].replicas;
        for (std::size_t l : p.inputs[0].channels)
            for (const EndRef& w : plan.channels[l].writers)
                merged_boxes[i].insert(shown[w.process]);
    }
    std::map<std::string, int> box_partition;
    for (const Box& b : pic.boxes) box_partition[b.id] = b.partition;
    for (const PlanChannel& c : plan.channels) {
        if (c.hidden) continue;
        Wire w{c.name, channel_label(c), {}, {}, 0};
        std::set<int> partitions;
        auto add = [&](const std::vector<EndRef>& refs, std::set<End>& into) {
            for (const EndRef& e : refs) {
                if (shown[e.process].empty()) continue;
                const bool merged = plan.processes[e.process].hidden;
                w.ends += merged ? static_cast<std::size_t>(merged_replicas[e.process]) : 1;
                if (!merged) {
                    into.insert({shown[e.process], e.port});
                    partitions.insert(box_partition[shown[e.process]]);
                    continue;
                }
                for (const std::string& box : merged_boxes[e.process]) {
                    into.insert({box, merged_port[e.process]});
                    partitions.insert(box_partition[box]);
                }
            }
        };
        add(c.writers, w.writers);
        add(c.readers, w.readers);
        w.partition = partitions.size() == 1 ? *partitions.begin() : -1;
        pic.wires.push_back(std::move(w));
    }
    return pic;
}

#ifdef CHANFLOW_HAVE_GRAPHVIZ

// ---- GraphViz -----------------------------------------------------------------------------

// cgraph's functions take char*, not const char*.
void set(void* object, const char* name, const std::string& value) {
    std::string n(name), v(value), none;
    agsafeset(object, n.data(), v.data(), none.data());
}

// A default for every node (AGNODE) or edge (AGEDGE) of g.
void set_default(Agraph_t* g, int kind, const char* name, const char* value) {
    std::string n(name), v(value);
    agattr(g, kind, n.data(), v.data());
}

struct GraphCloser {
    void operator()(Agraph_t* g) const { agclose(g); }
};
using GraphPtr = std::unique_ptr<Agraph_t, GraphCloser>;

// White for an idle process, deepening to red for one busy all the run.
std::string busy_colour(double busy) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0.03 %.3f 1.000", 0.05 + 0.75 * busy);
    return buf;
}

void add_legend(Agraph_t* g) {
    std::string name = "cluster_legend";
    Agraph_t* legend = agsubg(g, name.data(), 1);
    set(legend, "label", "legend");
    set(legend, "fontsize", "10");
    set(legend, "style", "dashed");
    std::string id = "legend";
    Agnode_t* n = agnode(legend, id.data(), 1);
    set(n, "shape", "plaintext");
    set(n, "style", "");
    set(n, "fontsize", "9");
    set(n, "label",
        "fill: share of the run a process was busy (white idle, red always)\\l"
        "line width: messages through the channel\\l"
        "red: a bottleneck, full while its writers waited most of the run\\l");
}

GraphPtr build(const Plan& plan, const RunStats* stats, const Placement* placement) {
    Picture pic = picture_of(plan, placement);
    if (stats) paint(pic, *stats);
    std::string name = plan.name.empty() ? std::string("graph") : plan.name;
    GraphPtr g(agopen(name.data(), Agdirected, nullptr));
    if (!g) throw std::runtime_error("GraphViz could not create a graph");
    set(g.get(), "rankdir", "LR");
    if (placement) set(g.get(), "newrank", "true");  // ranks across clusters: still left to right
    set(g.get(), "fontname", "Helvetica");
    set(g.get(), "nodesep", "0.35");
    set(g.get(), "ranksep", "0.6");
    set_default(g.get(), AGNODE, "fontname", "Helvetica");
    set_default(g.get(), AGNODE, "fontsize", "11");
    set_default(g.get(), AGNODE, "shape", "box");
    set_default(g.get(), AGNODE, "style", "rounded,filled");
    set_default(g.get(), AGNODE, "fillcolor", "#e8eef8");
    set_default(g.get(), AGEDGE, "fontname", "Helvetica");
    set_default(g.get(), AGEDGE, "fontsize", "9");
    // With a placement, each partition is a cluster holding its processes and the channels
    // that stay inside it; a channel between partitions is drawn dashed, outside them all.
    std::map<int, Agraph_t*> clusters;
    auto home = [&](int partition) {
        if (!placement || partition < 0) return g.get();
        Agraph_t*& c = clusters[partition];
        if (!c) {
            std::string name = "cluster_rank_" + std::to_string(partition);
            c = agsubg(g.get(), name.data(), 1);
            set(c, "label", "rank " + std::to_string(partition));
            set(c, "style", "rounded,dashed");
            set(c, "color", "#7f7f7f");
            set(c, "fontsize", "10");
        }
        return c;
    };
    std::map<std::string, Agnode_t*> nodes;
    for (const Box& b : pic.boxes) {
        std::string id = b.id;
        Agnode_t* n = agnode(home(b.partition), id.data(), 1);
        set(n, "label", b.label);
        if (b.stacked) {  // a stack of boxes: the replicas
            set(n, "shape", "box3d");
            set(n, "style", "filled");
        }
        if (b.busy >= 0) set(n, "fillcolor", busy_colour(b.busy));
        if (b.gpu) {  // a GPU's green frame, whatever fills the box
            set(n, "color", "#76b900");
            set(n, "penwidth", "2.5");
        }
        nodes[b.id] = n;
    }
    std::size_t edge_count = 0;
    auto edge = [&](Agnode_t* from, Agnode_t* to) {
        std::string id = "e" + std::to_string(edge_count++);
        return agedge(g.get(), from, to, id.data(), 1);
    };
    auto paint_edge = [&](Agedge_t* e, const Wire& w) {
        if (w.weight >= 0) set(e, "penwidth", std::to_string(1.0 + 4.0 * w.weight));
        if (w.bottleneck) set(e, "color", "#d62728");
        if (placement && w.partition < 0) set(e, "style", "dashed");
    };
    for (const Wire& w : pic.wires) {
        if (w.writers.empty() || w.readers.empty()) continue;
        if (w.ends <= 2 && w.writers.size() == 1 && w.readers.size() == 1) {
            const End& from = *w.writers.begin();
            const End& to = *w.readers.begin();
            Agedge_t* e = edge(nodes.at(from.box), nodes.at(to.box));
            set(e, "label", w.label);
            set(e, "taillabel", from.port);
            set(e, "headlabel", to.port);
            paint_edge(e, w);
            if (w.bottleneck) set(e, "fontcolor", "#d62728");
            continue;
        }
        // Several ends: a small node for the channel shows the fan-out and the fan-in.
        std::string id = "channel " + w.name;
        Agnode_t* c = agnode(home(w.partition), id.data(), 1);
        set(c, "label", w.label);
        set(c, "shape", "ellipse");
        set(c, "style", "filled");
        set(c, "fillcolor", "#fdf3e1");
        set(c, "fontsize", "9");
        set(c, "margin", "0.04");
        if (w.bottleneck) {
            set(c, "color", "#d62728");
            set(c, "fillcolor", "#f9d6d5");
            set(c, "penwidth", "2");
        }
        for (const End& from : w.writers) {
            Agedge_t* e = edge(nodes.at(from.box), c);
            set(e, "taillabel", from.port);
            paint_edge(e, w);
        }
        for (const End& to : w.readers) {
            Agedge_t* e = edge(c, nodes.at(to.box));
            set(e, "headlabel", to.port);
            paint_edge(e, w);
        }
    }
    if (stats) add_legend(g.get());
    return g;
}

#endif  // CHANFLOW_HAVE_GRAPHVIZ

}  // namespace

std::string picture_format(const std::string& path) {
    const auto dot = path.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
    if (ext == "dot" || ext == "gv") return "dot";
    if (ext == "svg" || ext == "png") return ext;
    throw std::runtime_error("cannot tell the picture format of '" + path +
                             "' (expected .dot, .gv, .svg or .png)");
}

bool can_draw() noexcept {
#ifdef CHANFLOW_HAVE_GRAPHVIZ
    return true;
#else
    return false;
#endif
}

#ifdef CHANFLOW_HAVE_GRAPHVIZ

std::string to_dot(const Plan& plan, const RunStats* stats, const Placement* placement) {
    GraphPtr g = build(plan, stats, placement);
    char* data = nullptr;
    std::size_t size = 0;
    std::FILE* f = open_memstream(&data, &size);
    if (!f) throw std::runtime_error("cannot write DOT to memory");
    agwrite(g.get(), f);
    std::fclose(f);
    std::string text(data, size);
    std::free(data);
    return text;
}

std::string render(const Plan& plan, const std::string& format, const RunStats* stats,
                   const Placement* placement) {
    if (format == "dot" || format == "gv") return to_dot(plan, stats, placement);
    if (format != "svg" && format != "png")
        throw std::runtime_error("unknown picture format '" + format +
                                 "' (expected dot, gv, svg or png)");
    GraphPtr g = build(plan, stats, placement);
    // One GraphViz context for the life of the program, used by one drawing at a time: the
    // text layout plugin (pango) keeps font names across contexts, and reads them after a
    // freed context has freed them.
    static std::mutex mu;
    static GVC_t* const gvc = gvContext();
    if (!gvc) throw std::runtime_error("GraphViz could not start");
    std::lock_guard lock(mu);
    std::string layout = "dot";
    char* data = nullptr;
    unsigned int size = 0;
    int failed = gvLayout(gvc, g.get(), layout.c_str());
    if (!failed) {
        failed = gvRenderData(gvc, g.get(), format.c_str(), &data, &size);
        gvFreeLayout(gvc, g.get());
    }
    std::string bytes = data ? std::string(data, size) : std::string();
    if (data) gvFreeRenderData(data);
    if (failed) throw std::runtime_error("GraphViz could not draw the graph as " + format);
    return bytes;
}

void draw(const Plan& plan, const std::string& path, const RunStats* stats,
          const Placement* placement) {
    const std::string bytes =
        render(plan, path == "-" ? "dot" : picture_format(path), stats, placement);
    std::FILE* f = path == "-" ? stdout : std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
    const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    const bool closed = path == "-" ? std::fflush(f) == 0 : std::fclose(f) == 0;
    if (!written || !closed)
        throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
}

#else

std::string to_dot(const Plan&, const RunStats*, const Placement*) {
    throw std::runtime_error("this chanflow was built without GraphViz: it cannot draw graphs");
}

std::string render(const Plan&, const std::string&, const RunStats*, const Placement*) {
    throw std::runtime_error("this chanflow was built without GraphViz: it cannot draw graphs");
}

void draw(const Plan&, const std::string&, const RunStats*, const Placement*) {
    throw std::runtime_error("this chanflow was built without GraphViz: it cannot draw graphs");
}

#endif

}  // namespace chanflow
