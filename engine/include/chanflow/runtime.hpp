// chanflow/runtime.hpp — running a checked graph.
//
//   chanflow::Plan plan = chanflow::load_plan("graphs/commstime.yaml");
//   chanflow::RunResult r = chanflow::run(plan, {.workers = 2});
//   if (r.status == chanflow::RunStatus::Deadlock) std::cerr << r.message;
//   for (const auto& v : r.collected["sink"]) ...;   // what `collect` nodes received
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/value.hpp"

namespace chanflow {

struct RunOptions {
    /// Worker threads of the threads backend; 0 means one per core.
    unsigned workers = 0;
    /// Where `print` writes; stdout by default.
    std::FILE* output = stdout;
};

enum class RunStatus { Ok = 0, Failed = 1, Deadlock = 3 };

struct RunResult {
    RunStatus status = RunStatus::Ok;
    /// For Failed: "process 'divide' failed: division by zero";
    /// for Deadlock: one line per blocked process ("'a' waits to write 'c1' (full)").
    std::string message;
    std::vector<std::string> blocked;
    /// Values received by `collect` processes, by process name as written (replicas merged).
    std::map<std::string, std::vector<Value>> collected;
    /// The exit code of SPEC §6 for this outcome.
    int exit_code() const noexcept { return static_cast<int>(status); }
};

/// Runs a plan on the threads backend to its end.
RunResult run(const Plan& plan, const RunOptions& options = {});

/// The library's version, "MAJOR.MINOR.PATCH".
const char* version() noexcept;
/// What the library was built with ("oneTBB, yaml-cpp, GraphViz, OpenMPI, no CUDA").
const char* build_features() noexcept;

}  // namespace chanflow
