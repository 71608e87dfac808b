// fuse_gpu_maps: which maps on a GPU become one process, and how the plan is rewired.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "chanflow/chanflow.hpp"

using namespace chanflow;

namespace {

std::vector<std::string> names(const Plan& p) {
    std::vector<std::string> out;
    for (const auto& proc : p.processes) out.push_back(proc.name);
    return out;
}

const PlanProcess& named(const Plan& p, const std::string& name) {
    for (const auto& proc : p.processes)
        if (proc.name == name) return proc;
    FAIL("no process " << name);
    return p.processes.front();
}

}  // namespace

TEST_CASE("gpu fusion: a chain of GPU maps becomes its first, wired to the last one's output") {
    Graph g("chain");
    g.process("numbers", "range").with("stop", 5).out("out", "a");
    g.process("m1", "map").with("expr", "x + 1").in("in", "a").out("out", "b").gpu(GpuMode::Prefer);
    g.process("m2", "map").with("expr", "x * 2").in("in", "b").out("out", "c").gpu(GpuMode::Prefer);
    g.process("m3", "map").with("expr", "x - 3").in("in", "c").out("out", "d").gpu(GpuMode::Prefer);
    g.process("cpu", "map").with("expr", "x").in("in", "d").out("out", "e");
    g.process("sink", "collect").in("in", "e");
    Plan plan = g.plan();
    CHECK(fuse_gpu_maps(plan) == 2);
    CHECK(names(plan) == std::vector<std::string>{"numbers", "m1", "cpu", "sink"});
    const PlanProcess& m1 = named(plan, "m1");
    REQUIRE(m1.fused.size() == 2);
    CHECK(m1.fused[0].name == "m2");
    CHECK(m1.fused[0].expr.source() == "x * 2");
    CHECK(m1.fused[1].name == "m3");
    // m1 now writes d, which cpu reads; b and c are gone.
    std::vector<std::string> channels;
    for (const auto& c : plan.channels) channels.push_back(c.name);
    CHECK(channels == std::vector<std::string>{"a", "d", "e"});
    REQUIRE(m1.outputs.size() == 1);
    const PlanChannel& d = plan.channels[m1.outputs[0].channels.at(0)];
    CHECK(d.name == "d");
    REQUIRE(d.writers.size() == 1);
    CHECK(plan.processes[d.writers[0].process].name == "m1");
    CHECK(plan.processes[d.readers.at(0).process].name == "cpu");
    CHECK(fuse_gpu_maps(plan) == 0);  // nothing left to fuse
}

TEST_CASE("gpu fusion: maps that are not alone on their channel, replicated or apart stay") {
    Graph g("apart");
    g.process("numbers", "range").with("stop", 5).out("out", "a");
    g.process("m1", "map").with("expr", "x + 1").in("in", "a").out("out", "b").gpu(GpuMode::Prefer);
    // b has two readers: no fusion across it.
    g.process("m2", "map").with("expr", "x * 2").in("in", "b").out("out", "c").gpu(GpuMode::Prefer);
    g.process("m2b", "map")
        .with("expr", "x * 2")
        .in("in", "b")
        .out("out", "c2")
        .gpu(GpuMode::Prefer);
    // Replicated: stays.
    g.process("m3", "map")
        .with("expr", "x")
        .in("in", "c")
        .out("out", "d")
        .replicas(2)
        .gpu(GpuMode::Prefer);
    // A filter is no map; a CPU map is not on a GPU.
    g.process("f", "filter")
        .with("expr", "x > 0")
        .in("in", "c2")
        .out("out", "e")
        .gpu(GpuMode::Prefer);
    g.process("m4", "map").with("expr", "x").in("in", "e").out("out", "g");
    g.process("sink", "collect").in("in", "d");
    g.process("sink2", "collect").in("in", "g");
    Plan plan = g.plan();
    CHECK(fuse_gpu_maps(plan) == 0);
    CHECK(plan.processes.size() == 10);  // m3 counts twice: its two replicas
}
