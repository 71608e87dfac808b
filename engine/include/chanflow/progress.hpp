// Progress of a run while it is on (`chanflow run --progress`): sources that know their size
// report how much they have done; the runtime samples them and the channels' message counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chanflow {

/// What a source counts: messages it will emit, or bytes it will read.
enum class ProgressUnit { Items, Bytes };

/// One source that knows its size (its replicas summed).
struct SourceProgress {
    std::string name;  // the process as written: "read"
    ProgressUnit unit = ProgressUnit::Items;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
};

/// A sample of the run, taken every RunOptions::progress_interval and once at the end.
struct Progress {
    double elapsed = 0;                   // seconds since the run began
    std::vector<SourceProgress> sources;  // the sources that know their size
    std::uint64_t messages = 0;           // written to channels so far, all channels summed
    bool final = false;                   // the last sample: the run has ended
};

/// One line for a terminal, at most `width` columns: a bar with done/total, rate and ETA of
/// the source furthest from its end, or messages and messages per second when no source
/// knows its size.
std::string progress_line(const Progress& p, std::size_t width = 80);

}  // namespace chanflow
