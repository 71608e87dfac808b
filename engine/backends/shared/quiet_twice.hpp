// The deadlock rule of the backends that span partitions (OS processes, MPI ranks): a run is
// deadlocked when every partition is quiet (nothing can run until a message arrives) with
// nothing in flight between them, at two checks in a row that saw the same progress
// counters. One check is not enough: a message may be on its way, or a partition may have
// woken and gone quiet again between two looks at it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace chanflow::detail {

class QuietTwice {
public:
    /// One check. `all_quiet`: every partition quiet with nothing in flight, now.
    /// `counters`: numbers that change whenever a partition makes progress (wake-ups,
    /// state changes). True when this check and the one before both found the run quiet,
    /// with the same counters.
    bool check(bool all_quiet, std::vector<std::uint64_t> counters) {
        const bool again = all_quiet && counters == last_;
        last_ = all_quiet ? std::move(counters) : std::vector<std::uint64_t>{};
        return again;
    }

private:
    std::vector<std::uint64_t> last_;  // the counters of the last quiet check; empty if none
};

}  // namespace chanflow::detail
