// chanflow/runtime.hpp — running a checked graph.
//
//   chanflow::Plan plan = chanflow::load_plan("graphs/commstime.yaml");
//   chanflow::RunResult r = chanflow::run(plan, {.workers = 2});
//   if (r.status == chanflow::RunStatus::Deadlock) std::cerr << r.message;
//   for (const auto& v : r.collected["sink"]) ...;   // what `collect` nodes received
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/progress.hpp"
#include "chanflow/value.hpp"

namespace chanflow {

/// The cores this process may run on: its CPU affinity (under `taskset`, or a rank that
/// mpirun bound to one core), else the machine's; at least 1.
unsigned usable_cores();

struct RunOptions {
    /// Worker threads of the threads backend; 0 means one per usable core.
    unsigned workers = 0;
    /// Where `print` writes; stdout by default.
    std::FILE* output = stdout;
    /// Record a trace (RunResult::trace): what every thread ran when, and how full the
    /// channels were. Costs two clock reads per process switch.
    bool trace = false;
    /// Where the trace's clock starts, in steady_clock nanoseconds; 0: the run's start. The
    /// partitions of one run share their launcher's, so that their traces line up.
    std::int64_t trace_origin_ns = 0;
    /// Called with a sample of the run's progress every progress_interval, on a thread of
    /// the runtime's (keep it short), and once more at the end, on the calling thread, with
    /// Progress::final set. Empty: no sampling.
    std::function<void(const Progress&)> on_progress;
    std::chrono::milliseconds progress_interval{200};
    /// Called with a warning about the run that is no error, on a thread of the runtime's:
    /// on MPI, rank 0's word that a rank stopped answering (and answers again). Empty: the
    /// warning goes to stderr as "warning: ...".
    std::function<void(const std::string&)> on_notice;
};

enum class RunStatus { Ok = 0, Failed = 1, Deadlock = 3 };

/// What one process did in a run (`chanflow run --stats`). Times are seconds.
struct ProcessStats {
    std::string name;   // "split[1]"
    std::string group;  // "split", the process as written
    int replica = 0;
    std::string node;
    std::uint64_t messages_in = 0, messages_out = 0;
    double busy = 0;           // running
    double blocked_read = 0;   // waiting for a message (or in an alternation)
    double blocked_write = 0;  // waiting for room or for a reader
    double ready = 0;          // woken, waiting for a worker thread
    bool gpu = false;          // ran on a GPU (`on: gpu`, a GPU could be used)
    double device = 0;         // its kernels and copies on the device, submitted to done
    std::uint64_t bytes_to_device = 0, bytes_from_device = 0;
};

/// What went through one channel as written (its per-reader buffers summed).
struct ChannelStats {
    std::string name;
    std::string kind;     // one2one, ...
    std::string deliver;  // any, round_robin, ...
    std::size_t capacity = 0;
    std::uint64_t writes = 0, reads = 0;
    std::size_t peak = 0;  // the most messages its buffer held at once
};

struct RunStats {
    double wall = 0;                      // seconds
    std::vector<ProcessStats> processes;  // replicas one by one, in plan order
    std::vector<ChannelStats> channels;   // in plan order
};

struct RunResult {
    RunStatus status = RunStatus::Ok;
    /// For Failed: "process 'divide' failed: division by zero";
    /// for Deadlock: one line per blocked process ("'a' waits to write 'c1' (full)").
    std::string message;
    std::vector<std::string> blocked;
    /// Values received by `collect` processes, by process name as written (replicas merged).
    std::map<std::string, std::vector<Value>> collected;
    /// Counters of every process and channel (always kept; what the engine adds to a plan,
    /// such as ordered merges, is left out).
    RunStats stats;
    /// With RunOptions::trace: a Chrome trace event file (chrome://tracing, Perfetto): a
    /// track per worker thread with a slice per process run, and counter tracks for the
    /// occupancy of up to 64 channels, sampled every millisecond. Each thread keeps its
    /// last 262 144 slices, so a long run keeps its end.
    std::string trace;
    /// Failed because the output's reader went away (a broken pipe, as in `chanflow run g |
    /// head`): a Unix filter ends quietly then, and so does `chanflow run`.
    bool output_closed = false;
    /// The exit code for this outcome (0, 1 or 3; docs/graph-format.md).
    int exit_code() const noexcept { return static_cast<int>(status); }
};

/// The statistics as JSON (what `chanflow run --stats=FILE` writes).
std::string to_json(const RunStats& stats);
/// Reads a file that `chanflow run --stats=FILE` wrote; throws std::runtime_error naming
/// the file (and the line and column of what is wrong).
RunStats read_run_stats(const std::string& path);

/// Runs a plan on the threads backend to its end.
RunResult run(const Plan& plan, const RunOptions& options = {});

/// The library's version, "MAJOR.MINOR.PATCH".
const char* version() noexcept;
/// What the library was built with ("oneTBB, yaml-cpp, GraphViz, OpenMPI, no CUDA").
const char* build_features() noexcept;

}  // namespace chanflow
