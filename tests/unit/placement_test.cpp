// Placement (docs/graph-format.md): pins with `rank`, replicas spread round-robin, the rest on
// partition 0.
#include <doctest/doctest.h>

#include <string>

#include "chanflow/chanflow.hpp"

using namespace chanflow;

namespace {

Plan plan_of(std::string_view yaml) {
    return check_graph(parse_graph_spec(yaml, "p.yaml"));
}

int partition_of(const Plan& plan, const Placement& pl, const std::string& name) {
    for (std::size_t i = 0; i < plan.processes.size(); ++i)
        if (plan.processes[i].name == name) return pl.of_process[i];
    FAIL("no process " << name);
    return -1;
}

std::size_t channel_index(const Plan& plan, const std::string& name) {
    for (std::size_t i = 0; i < plan.channels.size(); ++i)
        if (plan.channels[i].name == name) return i;
    FAIL("no channel " << name);
    return 0;
}

const char* const kGraph = R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 10}, out: {out: a}}
  work:    {node: map, with: {expr: "x + 1"}, replicas: 5, in: {in: a}, out: {out: b}}
  pinned:  {node: map, with: {expr: "x"}, replicas: 2, rank: 2, in: {in: b}, out: {out: c}}
  print:   {node: print, in: {in: c}}
)Y";

}  // namespace

TEST_CASE("placement: pins, replicas round-robin, the rest on partition 0") {
    const Plan plan = plan_of(kGraph);
    const Placement pl = place(plan, 3);
    CHECK(pl.partitions == 3);
    CHECK(partition_of(plan, pl, "numbers") == 0);
    for (int r = 0; r < 5; ++r)
        CHECK(partition_of(plan, pl, "work[" + std::to_string(r) + "]") == r % 3);
    CHECK(partition_of(plan, pl, "pinned[0]") == 2);
    CHECK(partition_of(plan, pl, "pinned[1]") == 2);
    CHECK(partition_of(plan, pl, "print") == 0);
    CHECK(pl.processes_of(1) == std::vector<std::size_t>{2, 5});  // work[1], work[4]
    // a: numbers on 0, work on 0..2; c: pinned on 2, print on 0.
    CHECK(pl.crosses(plan, channel_index(plan, "a")));
    CHECK(pl.crosses(plan, channel_index(plan, "c")));
    CHECK(place(plan, 3).of_process == pl.of_process);  // the same every time
}

TEST_CASE("placement: one partition holds everything, ordered merges stay on partition 0") {
    const Plan plan = plan_of(R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 10}, out: {out: a}}
  work:    {node: map, with: {expr: "x + 1"}, replicas: 4, ordered: true, in: {in: a}, out: {out: b}}
  print:   {node: print, in: {in: b}}
)Y");
    const Placement one = place(plan, 1);
    for (int k : one.of_process) CHECK(k == 0);
    for (std::size_t c = 0; c < plan.channels.size(); ++c) CHECK_FALSE(one.crosses(plan, c));
    const Placement two = place(plan, 2);
    for (std::size_t i = 0; i < plan.processes.size(); ++i) {
        const PlanProcess& p = plan.processes[i];
        CAPTURE(p.name);
        CHECK(two.of_process[i] == (p.hidden || p.replicas == 1 ? 0 : p.replica % 2));
    }
}

TEST_CASE("placement: a pin beyond the partitions names the rank's place") {
    const Plan plan = plan_of(kGraph);
    try {
        place(plan, 2);
        FAIL("no error");
    } catch (const GraphError& e) {
        REQUIRE(e.diagnostics().size() == 1);  // one per process as written, not per replica
        CHECK(e.diagnostics()[0].str() ==
              "p.yaml:5:62: error: process 'pinned' is pinned to rank 2, but the run has 2 "
              "partitions (0..1)");
    }
    CHECK_THROWS_AS(place(plan, 0), std::invalid_argument);
}
