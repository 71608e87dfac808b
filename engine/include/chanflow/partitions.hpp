// chanflow/partitions.hpp — one graph across several OS processes (the processes backend).
//
// The plan is placed (chanflow/placement.hpp); each partition runs its processes on a
// threads backend of its own, in an OS process of its own. A channel with ends in several
// partitions becomes a local channel on each side and bridges between them: a sender on
// the writing side encodes batches into a shared-memory ring, a receiver on the reading
// side decodes them into the local channel. Retire crosses as the ring's close (and its
// reader-gone flag the other way); a failure anywhere claims the run's failure message and
// aborts the shared segment, which poisons every partition.
//
//   launch_partitions(plan, placement, command)   the launcher: creates the segment,
//                                                 starts and supervises the partitions
//   run_partition(plan, placement, k, segment)    what each started process runs
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/runtime.hpp"

namespace chanflow {

/// The processes backend runs at most this many partitions.
inline constexpr int kMaxPartitions = 64;

/// How the launcher starts partition k: the program and its arguments (argv[0] first). It
/// must end up calling run_partition(plan, placement, k, segment, ...) on the same plan.
using PartitionCommand = std::function<std::vector<std::string>(int k, const std::string& segment)>;

/// Starts every partition as an OS process, waits for them, and returns the run's result:
/// Ok, Failed with the first failure (a process that threw, or a partition that died, named
/// with its signal and its processes), or Deadlock; with the statistics of every partition
/// merged (and with RunOptions::trace, their traces as one). Creates the shared segment and
/// removes its name as soon as every partition has it open; each partition leaves its
/// statistics and trace in a memory file the launcher made, so nothing is left behind in the
/// file system however the run ends. On SIGINT, SIGTERM or SIGHUP it stops the partitions.
/// Partitions die with the launcher (PR_SET_PDEATHSIG).
/// From `options` it takes:
///   - trace (and trace_origin_ns): every partition records a trace on one clock;
///   - on_progress: the partitions' progress added up, every 200 ms and once at the end;
///   - on_notice: a partition that has not answered for 10 s (CHANFLOW_SILENCE_S) is named,
///     and named again when it answers (by default on stderr, as "warning: ...").
/// A partition killed by SIGPIPE (its output's reader went away) ends the run with
/// RunResult::output_closed.
RunResult launch_partitions(const Plan& plan, const Placement& placement,
                            const PartitionCommand& command, const RunOptions& options = {});

/// Runs partition k of a plan in this process, its crossing channels bridged through the
/// shared segment named `segment`. Its result's status is this partition's; the launcher
/// reports the run's. Started by launch_partitions, it also does what the launcher asks
/// through the environment (a trace on the launcher's clock) and leaves its statistics and
/// trace where the launcher reads them.
RunResult run_partition(const Plan& plan, const Placement& placement, int k,
                        const std::string& segment, const RunOptions& options = {});

/// The run's statistics from each partition's (RunResult::stats of run_partition): the
/// processes in plan order, each channel's writes and reads summed (every message counts
/// once, where a process wrote it and where one read it), its peak the largest seen.
RunStats merge_partition_stats(const Plan& plan, const std::vector<RunStats>& parts);

/// One Chrome trace from each partition's (RunResult::trace, with RunOptions::trace_origin_ns
/// shared so that their clocks line up): partition k becomes trace process k + 1, named
/// "partition k" (or "rank k": `unit`), with its threads' tracks.
std::string merge_partition_traces(const std::vector<std::string>& parts,
                                   const std::string& unit = "partition");

}  // namespace chanflow
