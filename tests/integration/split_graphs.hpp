// What the tests of the backends that split a graph (processes, MPI) share: a graph file of
// a test's own, how soon a run must end after a fault, and the graphs that exercise them.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace chanflow::test {

/// A graph file of the test's own, removed at the end.
struct GraphFile {
    std::filesystem::path path;
    explicit GraphFile(const std::string& text) {
        static int n = 0;
        path = std::filesystem::temp_directory_path() /
               ("chanflow-split-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".yaml");
        std::ofstream(path) << text;
    }
    ~GraphFile() { std::filesystem::remove(path); }
    GraphFile(const GraphFile&) = delete;
    GraphFile& operator=(const GraphFile&) = delete;
};

/// How soon a run must end after a fault (more under a sanitizer, whose report of a crash
/// alone takes seconds).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr auto kPromptly = std::chrono::seconds(20);
#else
constexpr auto kPromptly = std::chrono::seconds(2);
#endif

/// A replica on partition (rank) 1 divides by zero at x = 5001.
inline const char* const kFailsOnPartition1 = R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 100000000}, out: {out: a}}
  divide:
    node: map
    with: {expr: "12 // (x - 5001)"}
    replicas: 2
    in: {in: {channel: a, deliver: round_robin}}
    out: {out: b}
  sink: {node: discard, in: {in: b}}
)Y";
inline const char* const kFailsOnPartition1Error =
    "error: process 'divide[1]' failed: division by zero in '12 // (x - 5001)' (x = 5001)\n";

/// Runs for a long while, with replicas on partitions 0 and 1.
inline const char* const kLongRun = R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 1000000000}, out: {out: a}}
  work:    {node: map, with: {expr: "x * 2"}, replicas: 2, in: {in: a}, out: {out: b}}
  sink:    {node: discard, in: {in: b}}
)Y";

/// a (on 0) and b (on 1) wait for each other; c and d (on 2) run to their end.
inline const char* const kDeadlockAcross = R"Y(chanflow: 1
processes:
  a: {node: map, with: {expr: "x"}, in: {in: ba}, out: {out: ab}, rank: 0}
  b: {node: map, with: {expr: "x"}, in: {in: ab}, out: {out: ba}, rank: 1}
  c: {node: range, with: {stop: 3}, out: {out: idle}, rank: 2}
  d: {node: print, in: {in: idle}, rank: 2}
)Y";

/// The reader's partition is quiet for a while (longer than two deadlock checks) while the
/// writer, on partition 1, computes.
inline const char* const kBusyWriter = R"Y(chanflow: 1
processes:
  slow: {node: pi.sample, with: {samples: 30000000}, in: {in: tasks}, out: {out: counts}, rank: 1}
  tasks: {node: range, with: {stop: 2}, out: {out: tasks}}
  show: {node: print, in: {in: counts}}
)Y";

/// A reader on partition (rank) 1 that stops after 5 of a practically endless source on
/// partition 0: its end must cross back and stop the source.
inline const char* const kTakeOnPartition1 = R"Y(chanflow: 1
processes:
  numbers: {node: range, with: {stop: 100000000000}, out: {out: a}}
  first:   {node: take, with: {count: 5}, in: {in: a}, out: {out: b}, rank: 1}
  print:   {node: print, in: {in: b}}
)Y";

/// A broadcast to 10 readers, whose sum is kBroadcastSum.
inline const char* const kBroadcastTo10 = R"Y(chanflow: 1
processes:
  items: {node: range, with: {stop: 200}, out: {out: v}}
  tag:
    node: map
    replicas: 10
    with: {expr: "x * 10"}
    in: {in: {channel: v, deliver: broadcast}}
    out: {out: t}
  total: {node: reduce, with: {op: sum}, in: {in: t}, out: {out: s}}
  count: {node: print, in: {in: s}}
)Y";
inline const char* const kBroadcastSum = "1990000\n";  // 10 readers x 10 x (0 + ... + 199)

}  // namespace chanflow::test
