// A test-and-test-and-set spin lock for critical sections of a few dozen instructions
// (channel state, run queues), where parking in the kernel would cost far more than waiting.
#pragma once

#include <atomic>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CHANFLOW_CPU_RELAX() _mm_pause()
#else
#define CHANFLOW_CPU_RELAX() std::atomic_signal_fence(std::memory_order_seq_cst)
#endif

namespace chanflow::detail {

class SpinLock {
public:
    void lock() noexcept {
        for (unsigned spins = 0;; ++spins) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            while (locked_.load(std::memory_order_relaxed)) {
                if (++spins > 1024) {
                    std::this_thread::yield();  // the holder was preempted
                    spins = 0;
                } else {
                    CHANFLOW_CPU_RELAX();
                }
            }
        }
    }
    bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> locked_{false};
};

}  // namespace chanflow::detail
