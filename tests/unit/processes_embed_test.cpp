// The processes backend as an embedding program uses it: one call, chanflow::run_processes,
// runs a graph built in code across forked partitions and returns what a threads run would.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "chanflow/chanflow.hpp"

using namespace chanflow;

namespace {

std::vector<std::int64_t> sorted_ints(const std::vector<Value>& vs) {
    std::vector<std::int64_t> out;
    for (const auto& v : vs) out.push_back(v.as_int());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("processes (embedded): collected values, statistics and output come back") {
    Graph g("squares");
    g.process("numbers", "range").with("stop", 100).rank(0).out("out", "n");
    g.process("square", "map")
        .with("expr", "x * x")
        .replicas(2)
        .rank(1)
        .in("in", "n")
        .out("out", "sq");
    g.process("sink", "collect").rank(0).in("in", "sq");
    const Plan plan = g.plan();
    const RunResult r = run_processes(plan, place(plan, 2), {.workers = 1});
    REQUIRE(r.status == RunStatus::Ok);
    std::vector<std::int64_t> want;
    for (std::int64_t i = 0; i < 100; ++i) want.push_back(i * i);
    CHECK(sorted_ints(r.collected.at("sink")) == want);
    // Every partition's counters, merged: each message counted once on each side.
    REQUIRE(r.stats.channels.size() == 2);
    CHECK(r.stats.channels[0].writes == 100);
    CHECK(r.stats.channels[0].reads == 100);
    CHECK(r.stats.channels[1].writes == 100);
    REQUIRE(r.stats.processes.size() == 4);  // square's two replicas one by one
    CHECK(r.stats.processes[0].name == "numbers");
    CHECK(r.stats.processes[0].messages_out == 100);
}

TEST_CASE("processes (embedded): a failure and a deadlock in a partition are reported") {
    Graph failing("failing");
    failing.process("numbers", "range").with("stop", 5).rank(0).out("out", "n");
    failing.process("divide", "map")
        .with("expr", "12 // (x - 3)")
        .rank(1)
        .in("in", "n")
        .out("out", "q");
    failing.process("sink", "discard").rank(0).in("in", "q");
    const Plan fp = failing.plan();
    const RunResult f = run_processes(fp, place(fp, 2), {.workers = 1});
    CHECK(f.status == RunStatus::Failed);
    CHECK(f.message == "process 'divide' failed: division by zero in '12 // (x - 3)' (x = 3)");

    // A cycle inside partition 1: that partition finds it and describes it.
    Graph stuck("stuck");
    stuck.process("numbers", "range").with("stop", 3).rank(0).out("out", "n");
    stuck.process("sink", "discard").rank(0).in("in", "n");
    stuck.process("a", "map").with("expr", "x").rank(1).in("in", "ba").out("out", "ab");
    stuck.process("b", "map").with("expr", "x").rank(1).in("in", "ab").out("out", "ba");
    const Plan sp = stuck.plan();
    const RunResult d = run_processes(sp, place(sp, 2), {.workers = 1});
    CHECK(d.status == RunStatus::Deadlock);
    CHECK(d.message.find("'a' waits to read 'ba'") != std::string::npos);
    CHECK(d.message.find("'b' waits to read 'ab'") != std::string::npos);
}

TEST_CASE("processes (embedded): print reaches the program's output file in every partition") {
    // A file the program opened close-on-exec: the partitions still write to it.
    const int fd = memfd_create("chanflow-test-output", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    std::FILE* out = fdopen(fd, "w+");
    REQUIRE(out != nullptr);
    Graph g("printing");
    g.process("numbers", "range").with("stop", 5).rank(0).out("out", "n");
    g.process("double", "map").with("expr", "x * 2").rank(1).in("in", "n").out("out", "d");
    g.process("print", "print").rank(1).in("in", "d");
    const Plan plan = g.plan();
    const RunResult r = run_processes(plan, place(plan, 2), {.workers = 1, .output = out});
    CHECK(r.status == RunStatus::Ok);
    std::rewind(out);
    std::string text;
    for (int c; (c = std::fgetc(out)) != EOF;) text += static_cast<char>(c);
    std::fclose(out);
    CHECK(text == "0\n2\n4\n6\n8\n");
}
