// shm_ring.hpp — what the processes backend moves messages through: one POSIX shared-memory
// segment per run, holding a control block and one single-producer single-consumer byte
// ring per bridged direction of a channel. Waiting uses futexes on words in the segment
// (shared between processes, so not FUTEX_PRIVATE), after a short spin: a wake-up through
// the kernel costs ~20 µs on these machines, and a busy pipeline never needs one.
//
// A ring carries frames: a u32 length, then that many bytes. A frame larger than the ring
// is refused; the bridge splits its batches to fit. The consumer can say that nobody will
// read any more (reader_gone), and the segment can be aborted as a whole (a partition died
// or failed): every waiter, in every process, wakes and sees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chanflow/partitions.hpp"
#include "chanflow/progress.hpp"

namespace chanflow::detail {

class ShmRing;

/// The run's shared segment: a control block, then the rings.
class ShmSegment {
public:
    /// Creates and maps a new segment named `name` ("/chanflow.<pid>.<n>") with `rings`
    /// rings of `ring_bytes` each (rounded up to a power of two).
    static ShmSegment create(const std::string& name, std::size_t rings, std::size_t ring_bytes);
    /// Maps a new segment with no name: shared with the processes this one forks after.
    static ShmSegment anonymous(std::size_t rings, std::size_t ring_bytes);
    /// Maps an existing segment (a partition joining the run).
    static ShmSegment open(const std::string& name);
    /// Maps the segment behind an inherited descriptor, then closes it.
    static ShmSegment adopt(int fd);
    /// Removes the name from /dev/shm; the mappings stay valid until unmapped.
    static void unlink(const std::string& name) noexcept;

    ShmSegment(ShmSegment&& o) noexcept;
    ShmSegment& operator=(ShmSegment&& o) noexcept;
    ~ShmSegment();

    std::size_t ring_count() const noexcept;
    ShmRing ring(std::size_t i) const;

    /// Ends the run for everyone: waiters wake and every operation reports Aborted.
    void abort() noexcept;
    bool aborted() const noexcept;
    /// The first failure of the run, claimed by whichever partition fails first (true when
    /// this call claimed it); `failure()` reads it back. A message longer than 2 KiB keeps
    /// its first and last KiB.
    bool claim_failure(const std::string& message) noexcept;
    std::string failure() const;

    /// The launcher's view of partition k, for deadlock detection across partitions: quiet
    /// means nothing in it can run until one of its rings changes.
    static constexpr int kMaxPartitions = chanflow::kMaxPartitions;
    static constexpr std::size_t kReportBytes = 4096;
    struct PartitionState {
        bool quiet = false;
        std::uint64_t wakes = 0;  // how often a ring woke it
        std::string report;       // when quiet: what its processes wait on, one per line
    };
    /// Partition k is quiet; `report` says what its processes wait on.
    void set_quiet(int k, const std::string& report) noexcept;
    /// Whether partition k last said it is quiet (the flag alone: not its report).
    bool quiet(int k) const noexcept;
    /// Partition k was woken by a ring: it is not quiet any more.
    void set_woken(int k) noexcept;
    /// Partition k is alive (its statistics ticker says so every few milliseconds); the
    /// launcher watches the count for a partition that stopped answering.
    void beat(int k) noexcept;
    std::uint64_t beats(int k) const noexcept;
    PartitionState partition(int k) const;
    /// Partition k's progress (run --progress); the launcher adds every partition's up.
    static constexpr std::size_t kMaxSources = 16;
    void set_progress(int k, const Progress& p) noexcept;
    void add_progress(int k, Progress& into) const;
    /// True when ring i holds what its waiting side waits for: a wake-up is on its way.
    bool wake_pending(std::size_t i) const;

private:
    struct Header;
    static std::size_t header_bytes() noexcept;
    static ShmSegment map(int fd, const std::string& what);
    static std::size_t size_for(std::size_t rings, std::size_t ring_bytes);
    static ShmSegment lay_out(void* base, std::size_t size, std::size_t rings,
                              std::size_t ring_bytes);
    ShmSegment(void* base, std::size_t size) noexcept : base_(base), size_(size) {}
    Header& header() const noexcept { return *static_cast<Header*>(base_); }
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

/// One direction of a bridged channel: a producer in one process, a consumer in another.
/// A handle into the segment; cheap to copy.
class ShmRing {
public:
    enum class Status { Ok, Aborted, ReaderGone, Closed, Full };
    /// A futex word to wait on and the value it had: the wait ends when it changes.
    struct Wait {
        std::atomic<std::uint32_t>* word;
        std::uint32_t seen;
    };

    /// Appends one frame, waiting for room. ReaderGone: the consumer will read no more
    /// (the frame was dropped); Aborted: the run is over.
    Status push(const unsigned char* data, std::size_t size);
    /// The next frame into `out`, waiting for one. Closed: the producer closed the ring and
    /// every frame was read.
    Status pop(std::vector<unsigned char>& out);
    /// Like pop, but does not wait: false when nothing is there now.
    bool try_pop(std::vector<unsigned char>& out, Status& status);
    /// Like push, but does not wait: Full when there is no room now.
    Status try_push(const unsigned char* data, std::size_t size);
    /// Like try_pop, but without copying the frame where it lies in one piece in the ring:
    /// `frame` views it there (or, where it wraps, its copy in `copy`) until release().
    bool try_peek(std::span<const unsigned char>& frame, std::vector<unsigned char>& copy,
                  Status& status);
    /// Gives the room of the frame try_peek returned back to the producer.
    void release() noexcept;

    /// For a waiter of its own (a process that must not block its thread): announce the
    /// wait, then wait until *word != seen. Nothing to wait for (the state changed while
    /// announcing): std::nullopt, try again at once.
    std::optional<Wait> wait_for_room(std::size_t size);
    std::optional<Wait> wait_for_data();

    /// The producer's end: no more frames (the consumer reads what is left, then Closed).
    void close() noexcept;
    /// The consumer's end: it reads no more; the producer's pushes report ReaderGone.
    void reader_gone() noexcept;

    std::size_t capacity() const noexcept;
    /// The largest frame that fits.
    std::size_t max_frame() const noexcept { return capacity() - 4; }

private:
    friend class ShmSegment;
    bool ended(std::uint64_t head, Status& status) const noexcept;
    struct Control;
    ShmRing(Control* c, unsigned char* data, const std::atomic<std::uint32_t>* aborted) noexcept
        : c_(c), data_(data), aborted_(aborted) {}
    Control* c_;
    unsigned char* data_;
    std::uint64_t peeked_ = 0;  // bytes of the frame try_peek gave, header included
    const std::atomic<std::uint32_t>* aborted_;
};

}  // namespace chanflow::detail
