// The threads backend: owns the channels, processes and scheduler of one run.
// run(plan) builds one from a Plan; unit tests build one directly with lambdas as bodies.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "chanflow/runtime.hpp"
#include "channel.hpp"
#include "process_state.hpp"
#include "scheduler.hpp"

namespace chanflow::detail {

/// Refreshes stats_clock (process_state.hpp) from a thread of its own while it lives.
class StatsTicker {
public:
    /// `every_tick`, when given, runs on the ticker's thread after each refresh. `exact`:
    /// every millisecond, without the timer slack (a trace's occupancy samples).
    explicit StatsTicker(std::function<void()> every_tick = {}, bool exact = false);
    ~StatsTicker();
    StatsTicker(const StatsTicker&) = delete;
    StatsTicker& operator=(const StatsTicker&) = delete;

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::function<void()> every_tick_;
    std::thread thread_;
};

/// A sample of how full a channel was, for the trace.
struct OccupancySample {
    std::int64_t ns;  // steady_clock
    std::uint32_t channel;
    std::uint32_t messages;
};

/// Where the ends of a plan's channels are in one runtime: what each writer of channel c
/// writes to (targets[c]: one channel, or one per reader end), and which channel reader
/// end r of c reads (reader_of[c][r], for the ends this runtime has).
struct Wiring {
    std::vector<std::vector<Channel*>> targets;
    std::vector<std::map<std::size_t, Channel*>> reader_of;
};

/// The statistics `to_json` wrote, read back; errors name `source` (a file, a rank).
RunStats parse_run_stats(const std::string& text, const std::string& source);

class Runtime;
/// Adds channel c (index into the plan) with all its ends in `rt`: `writers` and `readers`
/// of them (replicas one by one), and records them in `w`.
void add_local_channel(Runtime& rt, const PlanChannel& pc, int writers, int readers, std::size_t c,
                       Wiring& w);
/// Adds the plan's processes for which here(i) holds, bound as `w` says; an ordered
/// replica marks the boundaries of its inputs on its outputs.
/// Which partition of the processes backend this OS process runs (set by the partition
/// before its runtime starts); -1 in the program that placed the graph.
int this_partition() noexcept;
void set_this_partition(int k) noexcept;

/// What one process did, for RunStats (every backend builds its statistics so).
ProcessStats stats_of(const ProcessState& p);

void add_plan_processes(Runtime& rt, const Plan& plan, const std::function<bool(std::size_t)>& here,
                        const Wiring& w);

class Runtime {
public:
    explicit Runtime(const RunOptions& options);
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    Channel& add_channel(std::string name, std::size_t capacity, int writers, int readers);
    /// A process running `type`'s body, or `body` when type is null.
    ProcessState& add_process(std::string name, std::string group, const NodeType* type,
                              NodeBody body = {});
    InPort& bind_in(ProcessState& p, const std::string& port, Channel& ch);
    OutPort& bind_out(ProcessState& p, const std::string& port, std::string channel_name,
                      std::vector<Channel*> targets, Deliver deliver);

    /// Runs every process added to its end (or to a deadlock).
    RunResult run();

    // Called by processes.
    void finish(ProcessState& p, std::exception_ptr error);
    /// Appends whole lines, each ending in '\n', to the output (stdout, or the run's output).
    /// Throws when the output refused what was written before (a full disk, a closed pipe):
    /// the writing process fails, and the run with it.
    void write_lines(std::string_view lines);
    void collect(const ProcessState& p, Value v);
    Scheduler& scheduler() noexcept { return *sched_; }
    bool tracing() const noexcept { return options_.trace; }

    /// Called once, with the message, when the first process fails (the processes backend
    /// ends the other partitions with it). Set before run().
    void on_failure(std::function<void(const std::string&)> f) { on_failure_ = std::move(f); }
    /// Several processes write the same output: write it in whole lines of at most
    /// PIPE_BUF bytes per write(2), so that lines never interleave. Set before run().
    void share_output() noexcept { shared_output_ = true; }
    /// Called when nothing can run until a ring wakes a process (the processes backend),
    /// with what every blocked process waits on. Set before run().
    void on_quiet(std::function<void(const std::vector<std::string>&)> f);
    /// Called on the ticker's thread every 1 to 4 ms while the run is on (the MPI
    /// backend looks there whether a worker still polls). Keep it short. Set before run().
    void on_tick(std::function<void()> f) { on_tick_ = std::move(f); }

    // After run(): for the statistics.
    const std::vector<std::unique_ptr<ProcessState>>& processes() const noexcept {
        return processes_;
    }
    double wall_seconds() const noexcept { return wall_; }
    const std::vector<std::unique_ptr<Channel>>& channels() const noexcept { return channels_; }

private:
    struct Ends {
        std::vector<const ProcessState*> writers, readers;
    };
    void flush_output();
    int write_output_locked();
    static std::string output_failure(int error);
    void sample_occupancy();
    Progress progress(std::chrono::steady_clock::time_point start, bool final);
    std::string trace_json(std::int64_t start_ns) const;
    void record_failure(const ProcessState& p, const std::string& why);
    std::vector<std::string> describe_blocked() const;
    std::string describe_wait(const ProcessState& p, bool with_peers) const;

    RunOptions options_;
    std::vector<std::unique_ptr<Channel>> channels_;
    std::vector<std::unique_ptr<ProcessState>> processes_;
    std::unordered_map<const Channel*, Ends> ends_;

    std::mutex mu_;  // guards what follows
    bool failed_ = false;
    std::string failure_;
    std::map<std::string, std::vector<Value>> collected_;

    std::function<void(const std::string&)> on_failure_;
    std::function<void()> on_tick_;
    bool shared_output_ = false;

    std::mutex output_mu_;
    std::string output_;
    int output_error_ = 0;  // the errno of a write the output refused: nothing more is written
    std::atomic<bool> output_pending_{false};

    double wall_ = 0;
    std::vector<OccupancySample> occupancy_;  // with tracing; written by the ticker thread

    std::unique_ptr<Scheduler> sched_;  // last: its threads stop before anything else goes
};

}  // namespace chanflow::detail
