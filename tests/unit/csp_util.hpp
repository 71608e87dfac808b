// Shared helpers for the channel, alternation and scheduler tests (CSP-SCENARIOS.md).
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"

namespace chanflow::test {

using namespace std::chrono_literals;

/// Every scenario runs on 1, 2 and 4 worker threads.
inline constexpr unsigned kWorkerCounts[] = {1, 2, 4};

/// PyCSP runs its timing-sensitive tests with no delay, a fixed 10 ms delay and random
/// 0–10 ms delays on each side of a channel.
enum class Delay { None, Fixed, Random };
inline constexpr Delay kDelays[] = {Delay::None, Delay::Fixed, Delay::Random};

inline std::string delay_name(Delay d) {
    switch (d) {
        case Delay::None:
            return "none";
        case Delay::Fixed:
            return "fixed 10 ms";
        default:
            return "random 0-10 ms";
    }
}

/// One process's source of delays (each process owns one, so no locking is needed).
class Pacer {
public:
    Pacer(Delay mode, unsigned seed) : mode_(mode), rng_(seed) {}
    /// The next pause; 0 makes `co_await sleep_for(...)` return at once.
    std::chrono::nanoseconds next() {
        switch (mode_) {
            case Delay::None:
                return 0ns;
            case Delay::Fixed:
                return 10ms;
            default:
                return std::chrono::microseconds(rng_() % 10'001);
        }
    }

private:
    Delay mode_;
    std::minstd_rand rng_;
};

/// A global clock of events: tick() returns a number larger than every earlier tick, on any
/// thread, so "a happened before b" can be checked after the run.
class Ticker {
public:
    int tick() { return seq_.fetch_add(1, std::memory_order_seq_cst); }

private:
    std::atomic<int> seq_{0};
};

inline void check_ok(const RunResult& r) {
    INFO("message: " << r.message);
    CHECK(r.status == RunStatus::Ok);
}

/// Values that name their writer: writer w's message i is w * 1000 + i.
inline Value tagged(int writer, int i) {
    return Value(writer * 1000 + i);
}
inline int writer_of(std::int64_t v) {
    return static_cast<int>(v / 1000);
}
inline int index_of(std::int64_t v) {
    return static_cast<int>(v % 1000);
}

/// True when, for every writer, the messages of `seen` that came from it are in the order
/// it wrote them (FIFO per writer).
inline bool fifo_per_writer(const std::vector<std::int64_t>& seen) {
    std::vector<int> last(64, -1);
    for (auto v : seen) {
        const int w = writer_of(v);
        if (index_of(v) <= last.at(static_cast<std::size_t>(w))) return false;
        last.at(static_cast<std::size_t>(w)) = index_of(v);
    }
    return true;
}

}  // namespace chanflow::test
