// chanflow/mpi.hpp — one graph across MPI ranks (the MPI backend; libchanflow_mpi).
//
//   int main(int argc, char** argv) {
//       chanflow::MpiSession mpi(argc, argv);           // MPI_Init ... MPI_Finalize
//       chanflow::Plan plan = chanflow::load_plan("graphs/wordcount.yaml");
//       chanflow::Placement pl = chanflow::place(plan, mpi.size());
//       chanflow::RunResult r = chanflow::run_mpi(mpi, plan, pl);
//       if (mpi.rank() == 0 && r.status != chanflow::RunStatus::Ok) std::cerr << r.message;
//       return r.exit_code();
//   }
//
// Every rank loads the same plan and places it the same way; each runs its own partition on
// a threads backend of its own. A channel with ends on several ranks becomes a local channel
// on each side and bridges between them, as on the processes backend, with MPI point-to-point
// messages in place of shared memory: batches in the engine's binary codec, large tensors
// sent from and received into their own memory, credits for flow control.
#pragma once

#include "chanflow/graph.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/runtime.hpp"

namespace chanflow {

/// MPI for the life of this object: MPI_Init_thread on construction (asking for
/// MPI_THREAD_SERIALIZED, which the backend needs), MPI_Finalize on destruction. Outside
/// mpirun, MPI starts as a single rank. It also tells malloc to keep large blocks in the
/// heap (mallopt M_MMAP_THRESHOLD 64 MiB, M_TRIM_THRESHOLD 256 MiB), so that arriving
/// tensors reuse memory instead of faulting in fresh pages.
class MpiSession {
public:
    MpiSession(int& argc, char**& argv);
    ~MpiSession();
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;

    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }
    /// How many ranks run on this rank's host (for a default number of worker threads).
    int ranks_on_host() const noexcept { return local_size_; }
    /// True when every rank says true: a collective, which every rank must call (so that
    /// what one rank finds wrong before a run, such as an output file it cannot write,
    /// stops them all).
    bool every_rank(bool here) const;

private:
    int rank_ = 0, size_ = 1, local_size_ = 1;
};

/// Runs this rank's partition of `plan` (placement.partitions must be session.size()), its
/// channels to other ranks over MPI. Every rank calls it with the same plan; it returns on
/// every rank when the run is over everywhere, with the same status on each. On rank 0 the
/// result is the whole run's:
///   - Failed with the first failure anywhere, named with its rank
///     ("rank 1: process 'split[1]' failed: ...");
///   - Deadlock with what the processes of every rank wait on (a channel's other end on
///     another rank reads "writers in rank 1");
///   - stats, trace and collected values of every rank (traces as partitions).
/// With RunOptions::on_progress on rank 0, every rank samples its progress and rank 0's
/// callback gets them added up (each other rank's latest sample).
/// A rank that dies ends the job through mpirun.
/// With RunOptions::workers 0, each rank takes its share of its host's cores, and no more
/// than the cores it may run on (mpirun binds each rank to one core when they fill the host).
RunResult run_mpi(const MpiSession& session, const Plan& plan, const Placement& placement,
                  const RunOptions& options = {});

}  // namespace chanflow
