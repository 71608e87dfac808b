// A CSP channel between processes of one address space (docs/semantics.md).
//
// One spin lock guards a bounded ring buffer and two intrusive wait queues (blocked
// readers, blocked writers). capacity 0 is a rendezvous: a writer waits with its value in
// its Waiter until a reader takes it. Retire and poison are states of the channel, not
// messages: the last writer retiring ends readers once the buffer is drained; the last
// reader retiring ends writers; poison fails every operation, blocked or later.
//
// Alternations wait on several channels at once with one Waiter per guard, all pointing at
// one AltState; whoever completes a guard first claims the AltState (a CAS), the others
// skip that alternation's stale waiters until the owner unlinks them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chanflow/process.hpp"
#include "chanflow/value.hpp"
#include "spinlock.hpp"

namespace chanflow::detail {

class Scheduler;

/// Shared by every guard of one alternation while it waits.
struct AltState {
    static constexpr int kFree = -1;
    static constexpr std::uint32_t kTimeoutGuard = 0xfffffff0u;
    static constexpr std::uint32_t kAllEndedGuard = 0xfffffff1u;
    std::atomic<std::int64_t> chosen{kFree};  // the guard that completed
    std::atomic<int> live_guards{0};          // enabled guards not yet ended
    ProcessState* process = nullptr;
    std::uint8_t outcome = Pending;
    bool claim(std::uint32_t guard) noexcept {
        std::int64_t expected = kFree;
        return chosen.compare_exchange_strong(expected, guard, std::memory_order_acq_rel);
    }
};

/// Wait queue: FIFO, intrusive, O(1) unlink.
struct WaitQueue {
    Waiter* head = nullptr;
    Waiter* tail = nullptr;
    void push(Waiter* w) noexcept;
    void unlink(Waiter* w) noexcept;
    bool empty() const noexcept { return head == nullptr; }
};

/// A channel's buffer: a vector read from a moving head, grown on demand up to the
/// channel's capacity (so 100 000 idle channels cost little memory). The only reader of a
/// channel takes everything at once by swapping vectors with it: the lock is held for a
/// constant time, however much was buffered.
class Buffer {
public:
    std::size_t size() const noexcept { return items_.size() - head_; }
    bool empty() const noexcept { return head_ == items_.size(); }
    void push(Value&& v) {
        // Before the vector would grow, reuse the room that reading freed at its front,
        // once that is at least half of it (so each value moves at most once on average).
        if (items_.size() == items_.capacity() && 2 * head_ >= items_.size() && head_ != 0)
            compact();
        items_.push_back(std::move(v));
    }
    Value pop() noexcept {
        Value v = std::move(items_[head_++]);
        if (head_ == items_.size()) clear();
        return v;
    }
    void clear() noexcept {
        items_.clear();
        head_ = 0;
    }
    /// Hands everything buffered to `out` (which must hold nothing) and takes out's storage
    /// in exchange; the caller reads out from `out_head` on.
    void take_all(std::vector<Value>& out, std::size_t& out_head) noexcept {
        out.clear();
        out.swap(items_);
        out_head = head_;
        head_ = 0;
    }

private:
    void compact();
    std::vector<Value> items_;
    std::size_t head_ = 0;
};

struct ChannelCounters {
    std::uint64_t writes = 0;
    std::uint64_t reads = 0;
    std::size_t peak = 0;
};

/// Where a channel's values go when its only reader is a bridge to another address space
/// (a transport that can send from any thread): a writer that finds the bridge waiting, so
/// that nothing it wrote before is still on the way, hands its values to the sink instead,
/// and they leave at once, without a switch to the bridge. take() takes all n or none; it
/// is called with the channel's lock held, so it must not touch the channel or block long.
class ChannelSink {
public:
    virtual bool take(const Value* values, std::size_t n) noexcept = 0;

protected:
    ~ChannelSink() = default;
};

class Channel {
public:
    Channel(std::string name, std::size_t capacity, int writers, int readers, Scheduler& sched);

    const std::string& name() const noexcept { return name_; }
    std::size_t capacity() const noexcept { return capacity_; }

    /// One read: Done (value stored in `w.slot`), Ended, PoisonedOutcome, or, when
    /// `w.process` is set and nothing is there, Pending after queueing `w`.
    Outcome read(Waiter& w);
    /// Like read(), and when the buffer holds more, hands the rest over too (for the
    /// channel's only reader): `batch` from `batch_pos` on, `batch` holding nothing before.
    /// Blocked writers are admitted into the freed room.
    Outcome read_batch(Waiter& w, std::vector<Value>& batch, std::size_t& batch_pos);
    /// One write of *w.slot: Done, Ended (no readers left), PoisonedOutcome, or Pending
    /// after queueing `w` (the value stays in *w.slot until a reader takes it).
    Outcome write(Waiter& w);

    /// Writes values[0..count) in order, as many as can go now under one lock: to waiting
    /// readers first, then into the buffer, and adds how many went to `placed` (under the
    /// lock). Done when all went; Ended (no readers left) or PoisonedOutcome; else Pending,
    /// after queueing `w` (when w.process is set) with w.slot at the first value left.
    Outcome write_many(Value* values, std::size_t count, std::size_t& placed, Waiter& w);

    /// Appends an order mark beyond the capacity, never blocking (ordered fan-out; see
    /// InPort::mark_boundaries_on). Dropped when the channel is poisoned or has no reader.
    void push_mark(OrderMark m);

    void retire_writer();
    void retire_reader();
    void poison();

    // Used by alternations, with the channel already locked (see lock()).
    Outcome read_locked(Waiter& w, ProcessState*& woken);
    Outcome write_locked(Waiter& w, ProcessState*& woken);
    void enqueue_reader_locked(Waiter& w) noexcept { readers_.push(&w); }
    void enqueue_writer_locked(Waiter& w) noexcept { writers_.push(&w); }
    // A Waiter does not know its queue, so the caller says which end it waits on.
    void unlink_reader_locked(Waiter& w) noexcept { readers_.unlink(&w); }
    void unlink_writer_locked(Waiter& w) noexcept { writers_.unlink(&w); }
    void lock() noexcept { lock_.lock(); }
    void unlock() noexcept { lock_.unlock(); }

    // For the deadlock report and statistics (read when the run is quiet).
    bool poisoned() const noexcept { return poisoned_.load(std::memory_order_relaxed); }
    const std::atomic<bool>& poisoned_flag() const noexcept { return poisoned_; }
    /// True when the channel was made with one reader end: that reader may take batches.
    bool single_reader() const noexcept { return single_reader_; }
    /// Set before the run, on a channel whose only reader is a bridge (see ChannelSink).
    void set_sink(ChannelSink* sink) noexcept { sink_ = sink; }
    bool empty() const noexcept { return buffer_.empty(); }
    /// Messages buffered now (takes the lock: for sampling while the run is on).
    std::size_t occupancy() {
        lock_.lock();
        const std::size_t n = buffer_.size();
        lock_.unlock();
        return n;
    }
    ChannelCounters counters() const noexcept { return stats_; }
    /// Messages written so far (takes the lock: for sampling while the run is on).
    std::uint64_t writes_now() {
        lock_.lock();
        const std::uint64_t n = stats_.writes;
        lock_.unlock();
        return n;
    }

private:
    Waiter* take_waiter(WaitQueue& q) noexcept;
    template <bool kRead>
    Outcome attempt(Waiter& w);
    void end_waiters(WaitQueue& q, Outcome outcome, std::vector<ProcessState*>& wake) noexcept;
    void wake(const std::vector<ProcessState*>& ps);

    SpinLock lock_;
    std::size_t capacity_;
    Buffer buffer_;
    WaitQueue readers_;  // blocked readers (buffer empty)
    WaitQueue writers_;  // blocked writers (buffer full, or rendezvous)
    int writers_alive_;
    int readers_alive_;
    std::atomic<bool> poisoned_{false};  // read without the lock by batching readers
    bool single_reader_;
    ChannelSink* sink_ = nullptr;
    ChannelCounters stats_;
    Scheduler& sched_;
    std::string name_;
};

}  // namespace chanflow::detail
