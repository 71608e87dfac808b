// Progress reports: what sources report while a run is on, and the line that shows it.
#include <doctest/doctest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "chanflow/chanflow.hpp"

using namespace chanflow;

namespace {

// Runs a plan with a progress callback; returns the final sample and how many came before.
struct Samples {
    Progress last;
    int before_end = 0;
    bool final_seen_twice = false;
};

Samples run_sampled(const Plan& plan, std::chrono::milliseconds every) {
    Samples s;
    std::mutex mu;
    RunOptions o;
    o.workers = 2;
    o.progress_interval = every;
    o.on_progress = [&](const Progress& p) {
        std::lock_guard lock(mu);
        if (p.final) {
            s.final_seen_twice = s.last.final;
            s.last = p;
        } else {
            ++s.before_end;
            CHECK_FALSE(s.last.final);  // nothing after the final sample
        }
    };
    const RunResult r = run(plan, o);
    CHECK(r.status == RunStatus::Ok);
    return s;
}

}  // namespace

TEST_CASE("progress: range and random.uniform report their counts, replicas summed") {
    Graph g("progress");
    g.process("numbers", "range")
        .with("start", 10)
        .with("stop", 3)
        .with("step", -2)
        .out("out", "a");
    g.process("noise", "random.uniform").replicas(3).with("count", 1000).out("out", "b");
    g.process("sink_a", "discard").in("in", "a");
    g.process("sink_b", "discard").in("in", "b");
    const Samples s = run_sampled(g.plan(), std::chrono::milliseconds(200));
    CHECK(s.last.final);
    CHECK_FALSE(s.final_seen_twice);
    REQUIRE(s.last.sources.size() == 2);
    CHECK(s.last.sources[0].name == "numbers");
    CHECK(s.last.sources[0].unit == ProgressUnit::Items);
    CHECK(s.last.sources[0].total == 4);  // 10, 8, 6, 4
    CHECK(s.last.sources[0].done == 4);
    CHECK(s.last.sources[1].name == "noise");
    CHECK(s.last.sources[1].total == 3000);
    CHECK(s.last.sources[1].done == 3000);
    CHECK(s.last.messages == 3004);
    CHECK(s.last.elapsed > 0);
}

TEST_CASE("progress: text.lines reports bytes of the file's size") {
    const auto path = std::filesystem::temp_directory_path() /
                      ("chanflow-progress-" + std::to_string(getpid()) + ".txt");
    {
        std::ofstream f(path);
        for (int i = 0; i < 5000; ++i) f << "line " << i << '\n';
        f << "no newline at the end";
    }
    Graph g("lines");
    g.process("read", "text.lines").with("path", path.string()).out("out", "lines");
    g.process("sink", "discard").in("in", "lines");
    const Samples s = run_sampled(g.plan(), std::chrono::milliseconds(1));
    const auto size = std::filesystem::file_size(path);
    std::filesystem::remove(path);
    REQUIRE(s.last.sources.size() == 1);
    CHECK(s.last.sources[0].unit == ProgressUnit::Bytes);
    CHECK(s.last.sources[0].total == size);
    CHECK(s.last.sources[0].done == size);
    CHECK(s.last.messages == 5001);
}

TEST_CASE("progress: a graph without sized sources counts messages, no callback, no sampling") {
    Graph g("unsized");
    g.process("v", "values").with("items", Value(List{1, 2, 3})).out("out", "c");
    g.process("sink", "discard").in("in", "c");
    const Samples s = run_sampled(g.plan(), std::chrono::milliseconds(200));
    CHECK(s.last.sources.empty());
    CHECK(s.last.messages == 3);
    CHECK(run(g.plan(), {}).status == RunStatus::Ok);  // without on_progress
}

TEST_CASE("progress: the line shows bar, done/total, rate and ETA of the slowest source") {
    Progress p;
    p.elapsed = 2.0;
    p.sources = {{"read", ProgressUnit::Bytes, 25 * 1024 * 1024, 50 * 1024 * 1024},
                 {"fast", ProgressUnit::Items, 900, 1000}};
    CHECK(progress_line(p, 100) ==
          "read [####################....................]  50%  25.0 MiB / 50.0 MiB  "
          "12.5 MiB/s  ETA 2.0s");
    // Narrow terminals get a shorter bar, and no bar when even that does not fit.
    const std::string narrow = progress_line(p, 70);
    CHECK(narrow.size() <= 70);
    CHECK(narrow.rfind("read [", 0) == 0);
    CHECK(progress_line(p, 40) ==
          std::string("read   50%  25.0 MiB / 50.0 MiB  12.5 MiB/s  ETA 2.0s").substr(0, 40));
    p.sources = {{"tasks", ProgressUnit::Items, 0, 3000000}};
    CHECK(progress_line(p, 80).find("0 / 3.00M  0 msg/s  ETA --:--") != std::string::npos);
    p.sources[0].done = 3000000;
    p.elapsed = 75;
    p.final = true;
    CHECK(progress_line(p, 80).find("100%  3.00M / 3.00M  40.0k msg/s  in 1:15") !=
          std::string::npos);
}

TEST_CASE("progress: without sized sources, messages and messages per second") {
    Progress p;
    p.elapsed = 4000;
    p.messages = 123456789;
    CHECK(progress_line(p) == "123M messages  30.9k msg/s  1:06:40");
    p.messages = 512;
    p.elapsed = 0.5;
    CHECK(progress_line(p) == "512 messages  1024 msg/s  0.5s");
}
