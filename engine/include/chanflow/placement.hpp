// Placement: which partition (OS process, MPI rank) runs each process of a plan
// (docs/graph-format.md).
#pragma once

#include <cstddef>
#include <vector>

#include "chanflow/graph.hpp"

namespace chanflow {

/// The partition of every process of a plan, by index into Plan::processes.
struct Placement {
    int partitions = 1;
    std::vector<int> of_process;

    /// The processes of partition k, in plan order.
    std::vector<std::size_t> processes_of(int k) const;
    /// True when a channel has ends in more than one partition: a bridge carries it.
    bool crosses(const Plan& plan, std::size_t channel) const;
};

/// Places a plan on `partitions` partitions: a process pinned with `rank: K` runs on K
/// (every replica); the replicas of other replicated processes are spread round-robin
/// (replica i on i mod N); everything else runs on partition 0, the engine's own processes
/// (an ordered fan-out's merge) included. Throws GraphError, naming the `rank` value's place,
/// for a pin to a partition the run does not have, and std::invalid_argument for
/// partitions < 1.
Placement place(const Plan& plan, int partitions);

}  // namespace chanflow
