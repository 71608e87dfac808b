// mpi_backend.cpp — the MPI backend (chanflow/mpi.hpp): one rank's partition, its bridges
// over MpiHub, and the run's result gathered to rank 0.
#include "chanflow/mpi.hpp"

#include <malloc.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include "bridges.hpp"
#include "chanflow/partitions.hpp"
#include "codec.hpp"
#include "mpi_hub.hpp"
#include "partition_results.hpp"
#include "runtime_impl.hpp"

namespace chanflow {
namespace {

using detail::Bytes;
using detail::MpiHub;

bool out_of_line(const Value& v) {
    return v.is_tensor() && v.as_tensor().data.size() >= detail::kTensorOutOfLine;
}

// Reads the local side of bridge b and sends what it reads, in batches of what the channel
// holds when it reads; a large tensor goes on its own, from its own memory.
NodeBody sender(MpiHub& hub, std::size_t b) {
    return [&hub, b](ProcessContext& ctx) -> Task {
        auto& in = ctx.in();
        Bytes frame;
        Value y;
        while (auto x = co_await in.read()) {
            if (frame.capacity() < 4096) frame.reserve(4096);  // once per buffer: they cycle
            frame.assign(1, detail::kFrameData);
            std::optional<Value> tensor;
            if (out_of_line(*x))
                tensor = std::move(*x);
            else
                detail::encode(*x, frame);
            // Only what is there now: a read that could wait would keep the batch from the
            // reader. (Waiting for credit, one value a frame would cross ranks a window at a
            // time while the channel's other readers took the rest.)
            while (!tensor && frame.size() < detail::kFrameTarget && in.try_read(y)) {
                if (out_of_line(y))
                    tensor = std::move(y);
                else
                    detail::encode(y, frame);
            }
            while (frame.size() > 1) {
                const MpiHub::Sent s = hub.try_send(b, frame);
                if (s == MpiHub::Sent::Ok) break;
                if (s == MpiHub::Sent::Gone) co_return;  // retire this end
                if (s == MpiHub::Sent::Aborted) throw Poisoned();
                co_await hub.room(b);
            }
            while (tensor) {
                const MpiHub::Sent s = hub.try_send_tensor(b, *tensor);
                if (s == MpiHub::Sent::Ok) break;
                if (s == MpiHub::Sent::Gone) co_return;
                if (s == MpiHub::Sent::Aborted) throw Poisoned();
                co_await hub.room(b);
            }
        }
        hub.close(b);
    };
}

// Takes in what bridge b brings and writes it into the local side. A reading side that
// retired tells the sender.
NodeBody receiver(MpiHub& hub, std::size_t b, std::string channel, int from) {
    return [&hub, b, channel, from](ProcessContext& ctx) -> Task {
        auto& out = ctx.out();
        const std::string origin = "rank " + std::to_string(from);
        MpiHub::Arrival a;
        std::vector<Value> batch;
        for (;;) {
            const MpiHub::Took t = hub.try_take(b, a);
            if (t == MpiHub::Took::Empty) {
                co_await hub.data(b);
                continue;
            }
            if (t == MpiHub::Took::Closed) co_return;
            if (t == MpiHub::Took::Aborted) throw Poisoned();
            if (!a.values.empty()) {
                batch = std::move(a.values);
            } else if (a.size == 0) {
                batch.assign(1, std::move(a.tensor));
            } else if (a.frame[0] == detail::kFrameData) {
                detail::decode_batch(std::span<const unsigned char>(a.frame.data() + 1, a.size - 1),
                                     batch, channel, origin);
            } else {
                throw std::runtime_error("channel '" + channel +
                                         "': a frame of an unknown kind from " + origin);
            }
            if (!co_await out.try_write_all(batch)) {  // every reader retired
                hub.reader_gone(b);
                co_return;
            }
        }
    };
}

// Rank 0 gets every rank's string (in rank order); the others get nothing.
std::vector<std::string> gather(MPI_Comm comm, int size, const std::string& mine) {
    const int n = static_cast<int>(mine.size());
    std::vector<int> counts(static_cast<std::size_t>(size)), displs(counts.size());
    MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
    int total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
        displs[r] = total;
        total += counts[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    MPI_Gatherv(mine.data(), n, MPI_CHAR, all.data(), counts.data(), displs.data(), MPI_CHAR, 0,
                comm);
    std::vector<std::string> out;
    for (std::size_t r = 0; r < counts.size(); ++r)
        out.push_back(
            all.substr(static_cast<std::size_t>(displs[r]), static_cast<std::size_t>(counts[r])));
    return out;
}

struct Comm {
    MPI_Comm comm = MPI_COMM_NULL;
    Comm() { MPI_Comm_dup(MPI_COMM_WORLD, &comm); }
    ~Comm() { MPI_Comm_free(&comm); }
    Comm(const Comm&) = delete;
    Comm& operator=(const Comm&) = delete;
};

}  // namespace

bool MpiSession::every_rank(bool here) const {
    int all = here ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all != 0;
}

MpiSession::MpiSession(int& argc, char**& argv) {
    // Large buffers (tensors that arrive) come from and go back to the heap rather than
    // being mapped and unmapped each time: page faults on every arrival halved the
    // bandwidth of 1 MiB tensors (bench/RESULTS.md).
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        throw std::runtime_error(
            "this MPI library cannot be called from several threads (MPI_THREAD_SERIALIZED), "
            "which the MPI backend needs");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm host;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &host);
    MPI_Comm_size(host, &local_size_);
    MPI_Comm_free(&host);
}

MpiSession::~MpiSession() {
    MPI_Finalize();
}

RunResult run_mpi(const MpiSession& session, const Plan& plan, const Placement& placement,
                  const RunOptions& options) {
    const int rank = session.rank(), size = session.size();
    if (placement.partitions != size)
        throw std::invalid_argument("the placement is for " + std::to_string(placement.partitions) +
                                    " partitions, and MPI runs " + std::to_string(size) + " ranks");
    Comm comm;
    const std::vector<detail::Bridge> bridges = detail::bridges_of(plan, placement);
    // Every rank must run the same plan: compare its shape across ranks.
    long long shape[3] = {static_cast<long long>(plan.processes.size()),
                          static_cast<long long>(plan.channels.size()),
                          static_cast<long long>(bridges.size())};
    long long lo[3], hi[3];
    MPI_Allreduce(shape, lo, 3, MPI_LONG_LONG, MPI_MIN, comm.comm);
    MPI_Allreduce(shape, hi, 3, MPI_LONG_LONG, MPI_MAX, comm.comm);
    if (!std::equal(lo, lo + 3, hi))
        throw std::runtime_error(
            "the ranks loaded different graphs (from " + std::to_string(lo[0]) + " to " +
            std::to_string(hi[0]) +
            " processes): every rank must read the same file with the same --set values");
    int* tag_ub = nullptr;
    int has_ub = 0;
    MPI_Comm_get_attr(comm.comm, MPI_TAG_UB, &tag_ub, &has_ub);
    if (has_ub && 16 + 2 * bridges.size() + 2 > static_cast<std::size_t>(*tag_ub))
        throw std::runtime_error("the graph needs " + std::to_string(bridges.size()) +
                                 " bridges between ranks, more than this MPI's tags allow");

    RunOptions o = options;
    if (o.workers == 0) {  // the host's cores shared out, and no more than mpirun bound it to
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        o.workers = std::min(usable_cores(),
                             std::max(1u, cores / static_cast<unsigned>(session.ranks_on_host())));
    }
    // One clock for the traces of every rank: rank 0's (exact on one host).
    long long origin = o.trace_origin_ns ? o.trace_origin_ns
                                         : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now().time_since_epoch())
                                               .count();
    MPI_Bcast(&origin, 1, MPI_LONG_LONG, 0, comm.comm);
    o.trace_origin_ns = origin;

    MpiHub hub(comm.comm, rank, size, bridges);
    if (size > 1)
        hub.watch_silence(detail::silence_before_notice(),
                          [user = options.on_notice](const std::string& n) {
                              if (user) return user(n);
                              std::fprintf(stderr, "warning: %s\n", n.c_str());
                              std::fflush(stderr);
                          });
    // Progress (run --progress) as rank 0 asks: every rank samples, rank 0 adds them up.
    int progress = options.on_progress ? 1 : 0;
    MPI_Bcast(&progress, 1, MPI_INT, 0, comm.comm);
    o.on_progress = nullptr;
    std::optional<Progress> final_sample;  // rank 0's last: shown once every rank is done
    if (progress)
        o.on_progress = [&hub, &final_sample, rank, user = options.on_progress](const Progress& p) {
            hub.set_progress(p);
            if (rank != 0 || !user) return;
            if (p.final)
                final_sample = p;
            else
                user(hub.progress_of_all(p));
        };
    RunResult result;
    {
        detail::Runtime rt(o);
        rt.share_output();
        rt.on_failure([&hub, rank](const std::string& message) {
            hub.fail("rank " + std::to_string(rank) + ": " + message);
        });
        rt.on_quiet([&hub](const std::vector<std::string>& blocked) {
            hub.set_quiet(detail::quiet_report(blocked, "rank"));
        });
        rt.scheduler().set_poll_hook([&hub] { return hub.poll(); },
                                     [&hub] { hub.worker_parking(); });
        rt.on_tick([&hub] { hub.tick(); });
        std::vector<std::string> names;
        for (const detail::Bridge& b : bridges) names.push_back(plan.channels[b.channel].name);
        detail::BridgeBodies bodies{
            [&](std::size_t b) { return sender(hub, b); },
            [&](std::size_t b) { return receiver(hub, b, names[b], bridges[b].from); },
            [&](std::size_t b, detail::Channel& into) { hub.deliver_directly(b, into); },
            [&](std::size_t b, detail::Channel& from) { hub.send_directly(b, from); }};
        detail::Wiring w;
        detail::wire_partition(plan, placement, rank, bridges, rt, bodies, w);
        detail::add_plan_processes(
            rt, plan, [&](std::size_t i) { return placement.of_process[i] == rank; }, w);
        hub.start(rt.scheduler());
        try {
            result = rt.run();
        } catch (const std::exception& e) {  // the others must not wait for this rank
            hub.fail("rank " + std::to_string(rank) + ": " + e.what());
            result.status = RunStatus::Failed;
            result.message = e.what();
        }
        hub.finish();
        result.stats = detail::partition_stats(plan, placement, rank, rt);
    }
    if (final_sample && options.on_progress)
        options.on_progress(hub.progress_of_all(*final_sample));

    // The run's outcome, the same on every rank: a failure anywhere first, then a deadlock.
    const bool failed_here =
        result.status == RunStatus::Failed || (hub.aborted() && !hub.deadlocked());
    const bool deadlock_here = hub.deadlocked() || result.status == RunStatus::Deadlock;
    int flags[2] = {failed_here, deadlock_here}, any[2];
    MPI_Allreduce(flags, any, 2, MPI_INT, MPI_MAX, comm.comm);
    // What rank 0 reports: a failure as heard first here or else by the lowest rank; a
    // deadlock as every rank described it.
    std::string said = hub.failure();
    if (said.empty() && result.status == RunStatus::Failed) said = result.message;
    if (result.status == RunStatus::Deadlock) said = result.message;
    const std::vector<std::string> messages = gather(comm.comm, size, said);
    const std::vector<std::string> stats = gather(comm.comm, size, to_json(result.stats));
    const std::vector<std::string> traces = gather(comm.comm, size, o.trace ? result.trace : "");
    const std::vector<std::string> collected =
        gather(comm.comm, size, detail::encode_collected(result.collected));

    RunResult out;
    out.status = any[0] ? RunStatus::Failed : any[1] ? RunStatus::Deadlock : RunStatus::Ok;
    if (rank != 0) return out;
    if (out.status == RunStatus::Failed) {
        out.message = hub.failure();
        for (const std::string& m : messages)
            if (out.message.empty()) out.message = m;
    } else if (out.status == RunStatus::Deadlock) {
        out.message = hub.deadlock_report();
        for (const std::string& m : messages)
            if (!m.empty()) out.message += (out.message.empty() ? "" : "\n") + m;
    }
    std::vector<RunStats> parts;
    for (int r = 0; r < size; ++r)
        parts.push_back(detail::parse_run_stats(stats[static_cast<std::size_t>(r)],
                                                "rank " + std::to_string(r)));
    out.stats = merge_partition_stats(plan, parts);
    if (o.trace) out.trace = merge_partition_traces(traces, "rank");
    for (const std::string& c : collected) detail::merge_collected(c, out.collected);
    return out;
}

}  // namespace chanflow
