// partition.cpp — one partition of the processes backend: its part of the plan, with a
// sender or receiver process for each ring of a crossing channel, on a threads runtime of
// its own; and the results it hands back to the launcher.
#include "partition.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <utility>

#include "bridges.hpp"
#include "codec.hpp"
#include "partition_results.hpp"
#include "ring_waiter.hpp"
#include "runtime_impl.hpp"

namespace chanflow::detail {
namespace {

// ---- the bridges --------------------------------------------------------------------------

// A frame is a kind byte and encoded values; a batch larger than a ring goes as a run of
// kFrameMore frames ended by a kFrameData frame.
// Reads the local side of a crossing channel and sends what it reads, in batches of what
// the channel holds when it reads. An ordinary process: when the ring is full it waits
// through the partition's RingWaiter, not on its thread.
NodeBody sender(ShmRing ring, RingWaiter& waiter) {
    return [ring, &waiter](ProcessContext& ctx) mutable -> Task {
        auto& in = ctx.in();
        Bytes frame;
        Value y;
        while (auto x = co_await in.read()) {
            frame.assign(1, kFrameData);
            detail::encode(*x, frame);
            // Only what is there now: a read that could wait would keep the batch from the
            // reader.
            while (frame.size() < kFrameTarget && in.try_read(y)) detail::encode(y, frame);
            // In pieces when larger than the ring: each piece goes with a kind byte written
            // over the last byte of the piece before (already sent), so nothing is copied.
            const std::size_t piece = ring.max_frame() - 1;
            for (std::size_t at = 1; at < frame.size();) {
                const std::size_t n = std::min(piece, frame.size() - at);
                unsigned char* start = frame.data() + at - 1;
                const unsigned char saved = *start;
                *start = at + n == frame.size() ? kFrameData : kFrameMore;
                for (;;) {
                    const ShmRing::Status s = ring.try_push(start, n + 1);
                    if (s == ShmRing::Status::Ok) break;
                    if (s == ShmRing::Status::ReaderGone) co_return;  // retire this end
                    if (s == ShmRing::Status::Aborted) throw Poisoned();
                    co_await waiter.room(ring, n + 1);
                }
                *start = saved;
                at += n;
            }
        }
        ring.close();
    };
}

// Receives what the other side sends and writes it into the local side. A reading side that
// retired tells the sender through the ring.
NodeBody receiver(ShmRing ring, RingWaiter& waiter, std::string channel, int from) {
    return [ring, &waiter, channel, from](ProcessContext& ctx) mutable -> Task {
        auto& out = ctx.out();
        Bytes copy, pending;
        std::vector<Value> batch;
        for (;;) {
            ShmRing::Status status = ShmRing::Status::Ok;
            std::span<const unsigned char> frame;
            if (!ring.try_peek(frame, copy, status)) {
                co_await waiter.data(ring);
                continue;
            }
            if (status == ShmRing::Status::Closed) co_return;
            if (status != ShmRing::Status::Ok) throw Poisoned();  // aborted
            if (frame.empty() || (frame[0] != kFrameData && frame[0] != kFrameMore)) {
                ring.release();
                throw std::runtime_error("channel '" + channel +
                                         "': a frame of an unknown kind from partition " +
                                         std::to_string(from));
            }
            // A whole batch is decoded where it lies in the ring; pieces are joined first.
            const bool whole = frame[0] == kFrameData && pending.empty();
            const bool more = frame[0] == kFrameMore;
            if (!whole) pending.insert(pending.end(), frame.begin() + 1, frame.end());
            std::span<const unsigned char> bytes =
                whole ? frame.subspan(1) : std::span<const unsigned char>(pending);
            if (more) {
                ring.release();
                continue;
            }
            try {
                detail::decode_batch(bytes, batch, channel, "partition " + std::to_string(from));
            } catch (...) {
                ring.release();
                throw;
            }
            ring.release();  // the values own their bytes now: the room goes back
            pending.clear();
            if (!co_await out.try_write_all(batch)) {  // every reader retired
                ring.reader_gone();
                co_return;
            }
        }
    };
}

bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void add_section(std::string& out, std::string_view name, std::string_view bytes) {
    out.append(name).append(" ").append(std::to_string(bytes.size())).append("\n").append(bytes);
}

}  // namespace

// ---- one partition's runtime ---------------------------------------------------------------

RunResult run_partition(const Plan& plan, const Placement& placement, int k, ShmSegment& seg,
                        int ready_fd, const RunOptions& options) {
    const std::vector<Bridge> bridges = bridges_of(plan, placement);
    if (seg.ring_count() < bridges.size())
        throw std::logic_error("the shared segment was made for another plan");
    const char byte = 'r';
    if (::write(ready_fd, &byte, 1) != 1) {
        // The launcher is gone; PR_SET_PDEATHSIG ends this process.
    }
    ::close(ready_fd);

    set_this_partition(k);
    RunOptions run_options = options;
    // Progress goes to the segment, for the launcher to add up.
    run_options.on_progress = [&seg, k](const Progress& p) { seg.set_progress(k, p); };
    Runtime rt(run_options);
    rt.share_output();
    rt.on_failure([&seg](const std::string& message) {
        seg.claim_failure(message);
        seg.abort();
    });
    // The launcher watches for a partition that stops answering.
    rt.on_tick([&seg, k] { seg.beat(k); });
    // For the launcher's deadlock check: say when nothing here can run until a ring
    // changes, with what the processes (not the bridges) wait on; and when a ring woke us.
    rt.on_quiet([&seg, k](const std::vector<std::string>& blocked) {
        seg.set_quiet(k, quiet_report(blocked, "partition"));
    });
    // A quiet report can outlive the wake that ended it (made while the wake was on its way
    // to the scheduler): the waiter takes it back, within kRecheck, if it no longer holds.
    auto& sched = rt.scheduler();
    RingWaiter waiter(
        sched, [&seg, k] { seg.set_woken(k); },
        [&seg, &sched, k] {
            if (seg.quiet(k)) sched.unless_quiet([&seg, k] { seg.set_woken(k); });
        });
    Wiring w;
    const std::vector<std::string> channel_names = [&] {
        std::vector<std::string> out;
        for (const Bridge& b : bridges) out.push_back(plan.channels[b.channel].name);
        return out;
    }();
    BridgeBodies bodies{[&](std::size_t b) { return sender(seg.ring(b), waiter); },
                        [&](std::size_t b) {
                            return receiver(seg.ring(b), waiter, channel_names[b], bridges[b].from);
                        }};
    wire_partition(plan, placement, k, bridges, rt, bodies, w);
    add_plan_processes(
        rt, plan, [&](std::size_t i) { return placement.of_process[i] == k; }, w);
    RunResult result = rt.run();
    result.stats = partition_stats(plan, placement, k, rt);
    // A partition stopped by another's failure is poisoned without a failure of its own.
    if (result.status == RunStatus::Ok && seg.aborted()) {
        result.status = RunStatus::Failed;
        result.message = seg.failure();
    }
    return result;
}

// ---- what a partition hands back ------------------------------------------------------------

// Sections of "NAME SIZE\n" and SIZE bytes: stats (JSON), trace, deadlock, collected.
bool leave_results(int fd, const RunResult& r) {
    std::string text;
    add_section(text, "stats", to_json(r.stats));
    add_section(text, "trace", r.trace);
    add_section(text, "deadlock", r.status == RunStatus::Deadlock ? r.message : "");
    add_section(text, "collected", encode_collected(r.collected));
    return write_all(fd, text);
}

bool take_results(int fd, const std::string& who, PartitionResults& out) {
    std::string text;
    if (lseek(fd, 0, SEEK_SET) != 0) return false;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        text.append(buf, static_cast<std::size_t>(n));
    }
    std::string_view rest = text;
    auto section = [&rest](std::string_view name, std::string& into) {
        if (rest.substr(0, name.size() + 1) != std::string(name) + " ") return false;
        rest.remove_prefix(name.size() + 1);
        const std::size_t nl = rest.find('\n');
        std::size_t size = 0;
        const auto [end, ec] = std::from_chars(rest.data(), rest.data() + nl, size);
        if (nl == std::string_view::npos || ec != std::errc() || end != rest.data() + nl ||
            size > rest.size() - nl - 1)
            return false;
        into = rest.substr(nl + 1, size);
        rest.remove_prefix(nl + 1 + size);
        return true;
    };
    std::string json, collected;
    if (!section("stats", json) || !section("trace", out.trace) ||
        !section("deadlock", out.deadlock) || !section("collected", collected))
        return false;
    out.stats = parse_run_stats(json, who);
    merge_collected(collected, out.collected);
    return true;
}

}  // namespace chanflow::detail
