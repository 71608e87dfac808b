// One partition of the processes backend, as the launcher's forked child runs it, and what
// it hands back to the launcher when it ends.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/runtime.hpp"
#include "shm_ring.hpp"

namespace chanflow::detail {

/// The rings' size: a 1 MiB tensor's batch fits whole.
constexpr std::size_t kRingBytes = 2 << 20;

/// Runs partition k of a plan in this process, its crossing channels bridged through the
/// run's segment. Its result's status is this partition's; the launcher reports the run's.
/// Writes one byte to `ready_fd` (then closes it) once it has joined the run.
RunResult run_partition(const Plan& plan, const Placement& placement, int k, ShmSegment& seg,
                        int ready_fd, const RunOptions& options);

/// What a partition leaves for the launcher, in a memory file the launcher made: its
/// statistics and trace, its own deadlock report, and what its `collect` processes kept.
struct PartitionResults {
    RunStats stats;
    std::string trace;
    std::string deadlock;  // a deadlock within the partition, as it described it
    std::map<std::string, std::vector<Value>> collected;
};
/// Writes r's results to fd; false when the write failed.
bool leave_results(int fd, const RunResult& r);
/// Reads what a partition left in fd; false when it left nothing whole (it died first).
/// Throws on results that do not parse.
bool take_results(int fd, const std::string& who, PartitionResults& out);

}  // namespace chanflow::detail
