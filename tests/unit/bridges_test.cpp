// Which bridges a placement needs (engine/backends/shared/bridges.cpp): `any` through its home
// partition, per-reader lanes for round_robin and hash, and a tree for broadcast.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "bridges.hpp"
#include "chanflow/chanflow.hpp"

using namespace chanflow;
using chanflow::detail::Bridge;

namespace {

Plan plan_of(const std::string& deliver, int replicas, const std::string& writer_rank = "0") {
    const std::string yaml =
        "chanflow: 1\nprocesses:\n"
        "  src: {node: range, with: {stop: 10}, out: {out: a}, rank: " +
        writer_rank +
        "}\n"
        "  work: {node: map, with: {expr: \"x\"}, replicas: " +
        std::to_string(replicas) + ", in: {in: {channel: a, deliver: " + deliver +
        "}}, out: {out: b}}\n" + "  sink: {node: discard, in: {in: b}, rank: 0}\n";
    return check_graph(parse_graph_spec(yaml, "b.yaml"));
}

std::size_t channel_a(const Plan& plan) {
    for (std::size_t i = 0; i < plan.channels.size(); ++i)
        if (plan.channels[i].name == "a") return i;
    FAIL("no channel a");
    return 0;
}

}  // namespace

TEST_CASE("bridges: a broadcast to 8 partitions goes down a tree, at most 2 sends per partition") {
    const Plan plan = plan_of("broadcast", 16);
    const Placement pl = place(plan, 8);
    std::map<int, int> sends;     // by partition: streams it sends on
    std::map<int, int> receives;  // by partition: streams it receives
    for (const Bridge& b : detail::bridges_of(plan, pl)) {
        if (b.channel != channel_a(plan)) continue;
        CHECK(b.lane == detail::kStream);
        CHECK(b.origin == 0);
        ++sends[b.from];
        ++receives[b.to];
    }
    // Partitions 1..7 each get the stream once; nobody sends it more than twice.
    CHECK(receives.size() == 7);
    for (const auto& [k, n] : receives) CHECK(n == 1);
    CHECK(receives.count(0) == 0);
    for (const auto& [k, n] : sends) CHECK(n <= 2);
    CHECK(sends.at(0) == 2);  // the root: 1 and 2; then 1 feeds 3 and 4, 2 feeds 5 and 6, 3 feeds 7
    CHECK(sends.at(1) == 2);
    CHECK(sends.at(3) == 1);
}

TEST_CASE("bridges: each writing partition has a broadcast tree of its own") {
    const Plan plan = plan_of("broadcast", 3, "1");  // src on 1, readers on 0, 1, 2
    const Placement pl = place(plan, 3);
    std::set<std::pair<int, int>> edges;
    for (const Bridge& b : detail::bridges_of(plan, pl))
        if (b.channel == channel_a(plan)) {
            CHECK(b.origin == 1);
            edges.insert({b.from, b.to});
        }
    CHECK(edges == std::set<std::pair<int, int>>{{1, 0}, {1, 2}});
}

TEST_CASE("bridges: round_robin gives every remote reader a lane of its own") {
    const Plan plan = plan_of("round_robin", 4);
    const Placement pl = place(plan, 2);  // work[1] and work[3] on partition 1
    int lanes = 0;
    for (const Bridge& b : detail::bridges_of(plan, pl))
        if (b.channel == channel_a(plan)) {
            ++lanes;
            CHECK((b.lane == 1 || b.lane == 3));
            CHECK(b.from == 0);
            CHECK(b.to == 1);
        }
    CHECK(lanes == 2);
}
