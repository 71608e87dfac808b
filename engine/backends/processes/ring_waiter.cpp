// ring_waiter.cpp — one thread waits on the futex words of every waiting bridge.
#include "ring_waiter.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>
#include <stdexcept>

#include "process_state.hpp"
#include "scheduler.hpp"

namespace chanflow::detail {

RingWaiter::RingWaiter(Scheduler& sched, std::function<void()> on_wake,
                       std::function<void()> recheck)
    : sched_(sched), on_wake_(std::move(on_wake)), recheck_(std::move(recheck)) {
    thread_ = std::thread([this] { loop(); });
}

RingWaiter::~RingWaiter() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    control_.fetch_add(1);
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&control_), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
    thread_.join();
}

void RingWaiter::wait(ShmRing::Wait w, ProcessState* p) {
    {
        std::lock_guard lock(mu_);
        if (waits_.size() + 1 >= FUTEX_WAITV_MAX)
            throw std::runtime_error("more than 127 bridges wait in one partition");
        waits_.push_back({w, p});
    }
    control_.fetch_add(1);
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&control_), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

void RingWaiter::Awaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    p->begin_wait(WaitKind::Sleep);  // neither a read nor a write of a channel
    waiter.sched_.external_wait_begin();
    waiter.wait(*w, p);  // from here on p may run elsewhere: nothing below touches it
}

void RingWaiter::Awaiter::await_resume() const noexcept {
    if (w) Scheduler::current()->wait = WaitKind::None;
}

void RingWaiter::loop() {
    std::vector<futex_waitv> v;
    std::vector<ProcessState*> ready;
    auto next_recheck = std::chrono::steady_clock::now() + kRecheck;
    for (;;) {
        if (recheck_ && std::chrono::steady_clock::now() >= next_recheck) {
            recheck_();
            next_recheck = std::chrono::steady_clock::now() + kRecheck;
        }
        v.clear();
        {
            std::lock_guard lock(mu_);
            if (stop_) return;
            // The control word first: a new wait, or the end, changes it.
            v.push_back({control_.load(), reinterpret_cast<std::uintptr_t>(&control_),
                         FUTEX_32 | FUTEX_PRIVATE_FLAG, 0});
            for (const Entry& e : waits_)
                v.push_back({e.w.seen, reinterpret_cast<std::uintptr_t>(e.w.word), FUTEX_32, 0});
        }
        // Returns at once when a word no longer holds its value, else when one is woken (or
        // at the next recheck: steady_clock is CLOCK_MONOTONIC).
        timespec until{};
        if (recheck_) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                next_recheck.time_since_epoch())
                                .count();
            until.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
            until.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        }
        syscall(SYS_futex_waitv, v.data(), static_cast<unsigned>(v.size()), 0,
                recheck_ ? &until : nullptr, CLOCK_MONOTONIC);
        ready.clear();
        {
            std::lock_guard lock(mu_);
            std::erase_if(waits_, [&](const Entry& e) {
                if (e.w.word->load(std::memory_order_seq_cst) == e.w.seen) return false;
                ready.push_back(e.process);
                return true;
            });
        }
        if (!ready.empty() && on_wake_) on_wake_();
        for (ProcessState* p : ready) {
            sched_.schedule(p);
            sched_.external_wait_end();
        }
    }
}

}  // namespace chanflow::detail
