// What the engine keeps for one running process: its coroutine, ports and wait state.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "chanflow/process.hpp"
#include "chanflow/progress.hpp"
#include "scheduler.hpp"

namespace chanflow::detail {

class Channel;
class Runtime;

/// What a blocked process waits on, for the deadlock report.
enum class WaitKind : std::uint8_t { None, Read, Write, Alt, Sleep, Completion };

/// The clock of the run statistics, in microseconds of steady_clock: a value that a ticker
/// thread refreshes every 1 to 4 ms while a run is on (Runtime::run, StatsTicker). Reading it is
/// a plain load, against 10-30 ns for clock_gettime or rdtsc on these VMs, which a
/// rendezvous ping-pong would pay four times per round trip. Intervals shorter than a tick
/// measure as 0 or 1 tick; as their start falls at random between ticks the sums are right
/// in the mean (sampling, as a profiler does), within a few percent over a second.
inline std::atomic<std::uint64_t> stats_clock{0};
inline std::uint64_t ticks() noexcept {
    return stats_clock.load(std::memory_order_relaxed);
}
inline constexpr double kSecondsPerTick = 1e-6;

struct ProcessState {
    std::string name;   // "split[1]"
    std::string group;  // "split"
    int replica = 0;
    int replicas = 1;
    const NodeType* type = nullptr;
    const PlanProcess* plan = nullptr;  // null for processes built directly in tests
    NodeBody body;                      // used when type is null
    Runtime* runtime = nullptr;
    std::coroutine_handle<Task::promise_type> handle;
    bool own_thread = false;
    Scheduler::Dedicated* dedicated = nullptr;  // set for own_thread processes
    bool ended = false;

    std::vector<std::unique_ptr<InPort>> in_storage;
    std::vector<std::unique_ptr<OutPort>> out_storage;
    std::vector<std::pair<std::string, std::vector<InPort*>>> ins;
    std::vector<std::pair<std::string, std::vector<OutPort*>>> outs;
    ProcessContext context{this};

    // A multi-step operation (a broadcast write) continues here instead of resuming the
    // coroutine; it returns true when the operation is complete and the coroutine may go on.
    bool (*resume_hook)(void*) = nullptr;
    void* resume_hook_arg = nullptr;

    WaitKind wait = WaitKind::None;
    const Channel* wait_channel = nullptr;     // Read, Write
    std::vector<const Channel*> alt_channels;  // Alt

    // Statistics (RunStats), in ticks(): always kept, by the thread running the process.
    std::uint64_t busy = 0;           // running
    std::uint64_t blocked_read = 0;   // waiting to read (or in an alternation)
    std::uint64_t blocked_write = 0;  // waiting to write
    std::uint64_t ready = 0;          // woken, waiting for a worker
    // Work done for it on a device (ProcessContext::note_device_work): made by the process
    // on its first note (most processes have none), read once it ended.
    struct DeviceWork {
        std::int64_t ns = 0;
        std::uint64_t bytes_to = 0, bytes_from = 0;
        // With a trace: when each piece began and ended (steady_clock ns), the first
        // kMaxSlices of them.
        static constexpr std::size_t kMaxSlices = 65536;
        std::vector<std::pair<std::int64_t, std::int64_t>> slices;
    };
    std::unique_ptr<DeviceWork> device;
    std::uint64_t resumed_at = 0;    // when it last started running
    std::uint64_t suspended_at = 0;  // when it last began to wait; 0 while running
    std::uint64_t woken_at = 0;      // when it was last made runnable (Scheduler::schedule)

    // Progress of a source that knows its size (RunOptions::on_progress): written by the
    // process, sampled by the statistics ticker. The unit is set before the total (release).
    std::atomic<std::uint64_t> progress_done{0};
    std::atomic<std::uint64_t> progress_total{0};  // 0 until the source says
    ProgressUnit progress_unit = ProgressUnit::Items;

    /// About to wait (before the channel operation that may queue it).
    void begin_wait(WaitKind k) noexcept {
        wait = k;
        const std::uint64_t now = ticks();
        busy += now - resumed_at;
        suspended_at = now;
    }
    /// The operation completed at once after all: the process goes on running.
    void cancel_wait() noexcept {
        wait = WaitKind::None;
        resumed_at = suspended_at;
        suspended_at = 0;
    }
    /// Starts running (the worker is about to resume it).
    void on_resume(std::uint64_t now) noexcept {
        if (suspended_at != 0) {
            // Blocked until woken, then ready until a worker took it.
            const std::uint64_t woken = woken_at > suspended_at && woken_at < now ? woken_at : now;
            if (wait == WaitKind::Write)
                blocked_write += woken - suspended_at;
            else if (wait == WaitKind::Read || wait == WaitKind::Alt)
                blocked_read += woken - suspended_at;
            ready += now - woken;
        }
        suspended_at = 0;
        resumed_at = now;
    }
};

}  // namespace chanflow::detail
