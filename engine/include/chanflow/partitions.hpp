// chanflow/partitions.hpp — one graph across several OS processes (the processes backend).
//
// The plan is placed (chanflow/placement.hpp); each partition runs its processes on a
// threads backend of its own, in an OS process of its own, forked from the caller. A
// channel with ends in several partitions becomes a local channel on each side and bridges
// between them: a sender on the writing side encodes batches into a shared-memory ring, a
// receiver on the reading side decodes them into the local channel. Retire crosses as the
// ring's close (and its reader-gone flag the other way); a failure anywhere claims the
// run's failure message and aborts the shared memory, which poisons every partition.
//
//   chanflow::Plan plan = chanflow::load_plan("graphs/wordcount.yaml");
//   chanflow::RunResult r = chanflow::run_processes(plan, chanflow::place(plan, 2));
#pragma once

#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/runtime.hpp"

namespace chanflow {

/// The processes backend runs at most this many partitions.
inline constexpr int kMaxPartitions = 64;

/// Runs a plan across placement.partitions OS processes and returns the run's result: Ok,
/// Failed with the first failure (a process that threw, or a partition that died, named
/// with its signal and its processes), or Deadlock (within a partition or across them);
/// with the statistics of every partition merged, what `collect` processes kept, and with
/// RunOptions::trace, the partitions' traces as one.
///
/// The partitions are forked from this process, so they have the plan, the node types and
/// the plugins it has; a program's other threads do not exist in them. They share memory
/// that has no name, so nothing is left behind however the run ends; they die with this
/// process (PR_SET_PDEATHSIG). SIGINT, SIGTERM and SIGHUP are held while it runs and stop
/// the partitions. From `options` it takes:
///   - workers: per partition (0: the cores this process may run on, shared among them);
///   - output, trace (and trace_origin_ns): as for run();
///   - on_progress: the partitions' progress added up, every 200 ms and once at the end;
///   - on_notice: a partition that has not answered for 10 s (CHANFLOW_SILENCE_S) is named,
///     and named again when it answers (by default on stderr, as "warning: ...").
/// A partition killed by SIGPIPE (its output's reader went away) ends the run with
/// RunResult::output_closed.
RunResult run_processes(const Plan& plan, const Placement& placement,
                        const RunOptions& options = {});

/// The run's statistics from each partition's (RunResult::stats of one partition's run): the
/// processes in plan order, each channel's writes and reads summed (every message counts
/// once, where a process wrote it and where one read it), its peak the largest seen.
RunStats merge_partition_stats(const Plan& plan, const std::vector<RunStats>& parts);

/// One Chrome trace from each partition's (RunResult::trace, with RunOptions::trace_origin_ns
/// shared so that their clocks line up): partition k becomes trace process k + 1, named
/// "partition k" (or "rank k": `unit`), with its threads' tracks.
std::string merge_partition_traces(const std::vector<std::string>& parts,
                                   const std::string& unit = "partition");

}  // namespace chanflow
