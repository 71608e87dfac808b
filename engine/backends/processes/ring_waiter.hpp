// ring_waiter.hpp — lets the bridges of the processes backend be ordinary processes on the
// workers: a bridge that finds its ring full (or empty) registers the ring's futex word
// here and suspends; one thread per partition waits on all registered words at once
// (futex_waitv) and schedules each process whose word changed. No thread per bridge, no
// worker blocked in a ring, and no polling.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "shm_ring.hpp"

namespace chanflow::detail {

class Scheduler;
struct ProcessState;

class RingWaiter {
public:
    /// `on_wake`, when given, runs on the waiter's thread before it schedules anything;
    /// `recheck`, when given, runs there at least every kRecheck while it waits.
    explicit RingWaiter(Scheduler& sched, std::function<void()> on_wake = {},
                        std::function<void()> recheck = {});
    static constexpr std::chrono::milliseconds kRecheck{25};
    ~RingWaiter();
    RingWaiter(const RingWaiter&) = delete;
    RingWaiter& operator=(const RingWaiter&) = delete;

    /// Schedules `p` once `w.word` no longer holds `w.seen`. Called by p itself, about to
    /// suspend (it counts as an external wait for deadlock detection until then).
    void wait(ShmRing::Wait w, ProcessState* p);

    /// co_await ring_waiter.room(ring, size) / .data(ring): suspends until it may be worth
    /// trying again (or at once, when it already is).
    struct Awaiter {
        RingWaiter& waiter;
        std::optional<ShmRing::Wait> w;
        bool await_ready() const noexcept { return !w; }
        void await_suspend(std::coroutine_handle<>);
        void await_resume() const noexcept;
    };
    Awaiter room(ShmRing& ring, std::size_t size) { return {*this, ring.wait_for_room(size)}; }
    Awaiter data(ShmRing& ring) { return {*this, ring.wait_for_data()}; }

private:
    struct Entry {
        ShmRing::Wait w;
        ProcessState* process;
    };
    void loop();

    Scheduler& sched_;
    std::function<void()> on_wake_, recheck_;
    std::mutex mu_;
    std::vector<Entry> waits_;
    bool stop_ = false;
    std::atomic<std::uint32_t> control_{0};  // bumped to make the thread look again
    std::thread thread_;
};

}  // namespace chanflow::detail
