// bridges.hpp — what the backends that split a plan over address spaces (processes, MPI)
// share: which bridges a placement needs, how one partition builds its part of the plan
// around them, and its share of the run's statistics. The transport (a shared-memory ring,
// MPI messages) is the backend's: it supplies the bridge processes' bodies.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/runtime.hpp"
#include "codec.hpp"

namespace chanflow::detail {

class Channel;
class Runtime;
struct Wiring;

/// One direction of one crossing channel: for `any` delivery the channel's home partition
/// (its first reader's) collects from the writing partitions and hands out to the reading
/// ones; `broadcast` goes from each writing partition down a tree of the reading ones, each
/// sending every message on to at most two others (a stream per writing partition); for
/// `round_robin` and `hash` every reader has its own lane, fed from each partition that
/// writes. Every partition computes the same list from the same plan: a bridge's index is
/// its place in it.
constexpr int kStream = -2;  // Bridge::lane of a broadcast stream
struct Bridge {
    std::size_t channel;
    int lane;  // the reader end of a per-reader policy; -1 for `any`; kStream
    int from, to;
    int origin = -1;  // a broadcast stream's writing partition
};

std::vector<Bridge> bridges_of(const Plan& plan, const Placement& pl);

/// The bodies of the bridge processes: a sender reads the local side of bridge b and sends
/// it on, a receiver writes what arrives into the local side. `single_target`, if set, is
/// told of each receiver that writes into one channel only (not a broadcast's lanes), and
/// `single_source` of each sender that is the only reader of its channel. No channel is
/// both: the first are where bridges deliver, the second where they only collect.
struct BridgeBodies {
    std::function<NodeBody(std::size_t b)> sender, receiver;
    std::function<void(std::size_t b, Channel& into)> single_target = {};
    std::function<void(std::size_t b, Channel& from)> single_source = {};
};

/// Adds partition k's channels (local ones as on threads; crossing ones with their bridge
/// processes) to `rt`, and fills `w` for add_plan_processes.
void wire_partition(const Plan& plan, const Placement& pl, int k,
                    const std::vector<Bridge>& bridges, Runtime& rt, const BridgeBodies& bodies,
                    Wiring& w);

/// A frame's first byte: a whole batch, or a piece of one continued by the next frame.
constexpr unsigned char kFrameData = 'D';
constexpr unsigned char kFrameMore = 'C';
/// A sender sends what it has read once its frame reaches this size.
constexpr std::size_t kFrameTarget = 64 * 1024;

/// Decodes a batch's values (the frame without its kind byte) into `batch`; a malformed one
/// throws std::runtime_error naming the channel and where it came from ("partition 1").
void decode_batch(std::span<const unsigned char> bytes, std::vector<Value>& batch,
                  const std::string& channel, const std::string& from);

/// What a quiet partition reports for a deadlock: its processes' (not the bridges') blocked
/// lines, a bridge as a peer named by where its other end is ("writers in rank 1"). `unit`
/// is "partition" or "rank".
std::string quiet_report(const std::vector<std::string>& blocked, const std::string& unit);

/// How long a partition or rank may be silent before the run says so (a warning, not an
/// error): 10 s, or CHANFLOW_SILENCE_S seconds from the environment (0: never).
std::chrono::milliseconds silence_before_notice();

/// Partition k's share of the run's statistics: its own processes (not the bridges), and
/// for each channel with an end here what its processes here wrote and read. Summed over
/// the partitions (merge_partition_stats) each message counts once.
RunStats partition_stats(const Plan& plan, const Placement& pl, int k, const Runtime& rt);

}  // namespace chanflow::detail
