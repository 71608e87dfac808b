// chanflow/process.hpp — writing a node: a sequential CSP process as a C++20 coroutine.
//
// A node body is a coroutine returning chanflow::Task. It reads and writes its ports with
// co_await; the engine runs many such processes M:N on a few worker threads.
//
//   chanflow::Task double_it(chanflow::ProcessContext& ctx) {
//       auto& in = ctx.in();
//       auto& out = ctx.out();
//       while (auto x = co_await in.read())      // std::nullopt at end of stream
//           co_await out.write(x->as_int() * 2);
//   }                                            // returning retires every port
//
// Rules (docs/semantics.md): when every reader of an output has retired, a write ends the process
// normally (it unwinds with WriterRetired, which the engine treats as a return). An
// operation on a poisoned channel throws Poisoned; the engine then poisons every port of
// the process. Any other exception fails the process and poisons its ports.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chanflow/channel_types.hpp"
#include "chanflow/detail/waiter.hpp"
#include "chanflow/progress.hpp"
#include "chanflow/value.hpp"

namespace chanflow {

class Expr;
struct NodeType;

/// Thrown by a channel operation on a poisoned channel.
class Poisoned : public std::exception {
public:
    const char* what() const noexcept override { return "channel poisoned"; }
};

/// Thrown by a write when every reader has retired: the process ends normally.
class WriterRetired : public std::exception {
public:
    const char* what() const noexcept override { return "every reader retired"; }
};

/// The coroutine type of a process body.
class Task {
public:
    struct promise_type {
        detail::ProcessState* process = nullptr;
        std::exception_ptr error;
        Task get_return_object() noexcept {
            return Task(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        detail::FinalAwaiter final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };

    Task() = default;
    explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
    Task(Task&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            if (handle_) handle_.destroy();
            handle_ = std::exchange(o.handle_, {});
        }
        return *this;
    }
    ~Task() {
        if (handle_) handle_.destroy();
    }
    /// Hands the coroutine to the engine, which destroys it when it ends.
    std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, {}); }

private:
    std::coroutine_handle<promise_type> handle_;
};

/// The reading end of a channel, as a process sees it.
class InPort {
public:
    // The common case, a message from the port's batch, is inline: no call into the library.
    class ReadAwaiter {
    public:
        explicit ReadAwaiter(InPort& p) noexcept : port(p) {}
        bool await_ready() {
            waiter.process = nullptr;
            if (!port.marks_.empty()) port.mark_boundary();
            if (!port.take_held(value)) return false;
            waiter.outcome = detail::Done;
            return true;
        }
        bool await_suspend(std::coroutine_handle<> h);
        std::optional<Value> await_resume() {
            if (!waiter.process && waiter.outcome == detail::Done) {
                ++port.reads_;
                return std::move(value);
            }
            return finish();
        }

    private:
        std::optional<Value> finish();  // after a channel operation: end, poison, wait state
        InPort& port;
        Value value;
        detail::Waiter waiter;  // set up by await_ready / await_suspend
    };
    /// Reads one message; std::nullopt once every writer has retired and the buffer is
    /// drained. Throws Poisoned on a poisoned channel.
    ReadAwaiter read() noexcept { return ReadAwaiter(*this); }
    /// Stops reading: retires this end (writers see it once every reader has retired).
    void retire();
    /// Poisons the channel.
    void poison();
    const std::string& channel_name() const noexcept;
    /// Messages read so far.
    std::uint64_t reads() const noexcept { return reads_; }

    explicit InPort(detail::Channel* ch) noexcept;
    /// True when the next read() is served from messages this port already holds: it will
    /// not block. A node that gathers its output for write_all() flushes when this is false.
    bool has_held() const noexcept { return batch_pos_ < batch_.size(); }
    /// True when the next read() finds a message at once: held by this port, or buffered
    /// in the channel now (which takes the channel's lock; another reader may still take
    /// it first). A node that gathers output flushes it before a read that may block.
    bool has_more();
    /// True when each read marks where the outputs of the previous input end (a replica of
    /// an `ordered: true` process): a node that gathers output flushes it before every read.
    bool marks_boundaries() const noexcept { return !marks_.empty(); }
    /// Reads a message if one is there now (held by this port, buffered in the channel, or
    /// offered by a writer waiting at a rendezvous): never waits. False when there is none
    /// now, also at the end or on poison, which the next read() tells. Another reader of
    /// the channel may take a message first. For a batch of what is there: a node that
    /// sends batches onward (a bridge to another partition) reads the first with read().
    bool try_read(Value& out);

private:
    friend class Alternation;
    friend void detail::mark_boundaries_on(InPort& in, std::vector<detail::Channel*> outputs);
    detail::Channel* channel() const noexcept { return channel_; }
    /// Takes a message this port already holds (see batch_); false when it holds none.
    bool take_held(Value& out) {
        if (batch_pos_ == batch_.size()) return false;
        if (poisoned_->load(std::memory_order_relaxed)) {  // poison is immediate
            drop_held();
            return false;
        }
        out = std::move(batch_[batch_pos_++]);
        if (batch_pos_ == batch_.size()) drop_held();
        return true;
    }
    void mark_boundary();
    void drop_held() noexcept {
        batch_.clear();
        batch_pos_ = 0;
    }
    detail::Channel* channel_;
    const std::atomic<bool>* poisoned_;  // the channel's poison flag, read without its lock
    // The only reader of a buffered channel takes everything buffered at once, under one
    // lock, and serves the following reads from here: a pipeline pays for the channel's
    // lock once per batch instead of once per message.
    std::vector<Value> batch_;
    std::size_t batch_pos_ = 0;
    bool batching_ = false;
    bool retired_ = false;
    std::uint64_t reads_ = 0;
    bool read_before_ = false;  // ordered replicas: a read has started before this one
    bool at_end_ = false;       // a read returned end of stream
    std::vector<detail::Channel*> marks_;
};

/// The writing end of a channel. With `deliver` round_robin, hash or broadcast the
/// channel is one buffer per reader end, and the writing end routes each message.
class OutPort {
public:
    class WriteAwaiter {
    public:
        WriteAwaiter(OutPort& p, Value v) noexcept : port(p), value(std::move(v)) {}
        bool await_ready();
        bool await_suspend(std::coroutine_handle<> h);
        void await_resume() {
            if (waiter.process || waiter.outcome != detail::Done) finish();
            ++port.writes_;
        }

    private:
        friend class OutPort;
        void finish();  // after a wait, or an end or poison: may throw
        OutPort& port;
        Value value;
        detail::Waiter waiter;      // set up by await_ready / await_suspend
        std::size_t target = 0;     // index into the port's targets being written
        std::size_t remaining = 0;  // targets still to visit
        Value copy;                 // broadcast: the copy offered to the current target
        bool started = false;
        bool delivered = false;  // broadcast: some reader took it
    };
    /// Writes one message; blocks while the buffer is full (or, for a rendezvous, until a
    /// reader takes it).
    WriteAwaiter write(Value v) noexcept { return WriteAwaiter(*this, std::move(v)); }

    /// Writes every value of a batch, as write() would one by one, but taking each channel's
    /// lock once for as many values as fit: for nodes that emit many messages at a time.
    /// Every reader gets its values in order. With round_robin or hash, values for a reader
    /// with room go on while another reader's buffer is full, and the write waits on the
    /// earliest value not yet taken, as single writes would. Completes when all are written
    /// (WriterRetired when no reader is left); `values` is left empty.
    class WriteAllAwaiter {
    public:
        WriteAllAwaiter(OutPort& p, std::vector<Value>& v) noexcept : port(p), values(v) {}
        bool await_ready();
        bool await_suspend(std::coroutine_handle<> h);
        void await_resume();

    protected:
        friend class OutPort;
        OutPort& port;
        std::vector<Value>& values;
        detail::Waiter waiter;
        std::size_t target = 0;  // the target being written
        std::size_t count = 0;   // how many values the batch had
    };
    WriteAllAwaiter write_all(std::vector<Value>& values) noexcept {
        return WriteAllAwaiter(*this, values);
    }
    /// Like write_all(), but says whether the values went: false, instead of WriterRetired,
    /// when no reader is left (for a bridge, which then tells the other side).
    class TryWriteAllAwaiter : public WriteAllAwaiter {
    public:
        using WriteAllAwaiter::WriteAllAwaiter;
        bool await_resume();
    };
    TryWriteAllAwaiter try_write_all(std::vector<Value>& values) noexcept {
        return TryWriteAllAwaiter(*this, values);
    }
    void retire();
    void poison();
    const std::string& channel_name() const noexcept { return name_; }
    /// Messages written so far.
    std::uint64_t writes() const noexcept { return writes_; }

    OutPort(std::string name, std::vector<detail::Channel*> targets, Deliver deliver) noexcept;
    std::span<detail::Channel* const> targets() const noexcept { return targets_; }
    Deliver deliver() const noexcept { return deliver_; }

private:
    friend struct WriteAwaiter;
    // Routes a write over several targets; true when the write is complete.
    bool step(WriteAwaiter& w, detail::ProcessState* p);
    static bool continue_write(void* awaiter);
    void route_all(WriteAllAwaiter& w);
    bool step_all(WriteAllAwaiter& w, detail::ProcessState* p);
    static bool continue_write_all(void* awaiter);
    // write_all's values by target, their places in the batch, and how many of each went.
    std::vector<std::vector<Value>> buckets_;
    std::vector<std::vector<std::size_t>> bucket_order_;
    std::vector<std::size_t> bucket_done_;
    std::string name_;
    std::vector<detail::Channel*> targets_;
    Deliver deliver_;
    std::uint64_t sent_ = 0;
    std::uint64_t writes_ = 0;
    std::vector<bool> target_ended_;
    bool retired_ = false;
};

/// Waits on several guards at once (docs/semantics.md): inputs, outputs, a timeout and a skip.
/// Choice is fair (round-robin after the guard chosen last) unless priority is asked for.
///
///   chanflow::Alternation alt;
///   for (auto* in : ctx.ins("in")) alt.add_input(*in);
///   while (true) {
///       auto r = co_await alt.select();
///       if (r.kind == chanflow::AltResult::End) break;
///       co_await out.write(std::move(r.value));
///   }
struct AltResult {
    enum Kind : std::uint8_t { Read, Written, Timeout, Skip, End } kind = End;
    std::size_t index = 0;  // the guard chosen (Read, Written)
    Value value;            // the message read (Read)
};

class Alternation {
public:
    explicit Alternation(bool priority = false) noexcept : priority_(priority) {}
    ~Alternation();
    Alternation(const Alternation&) = delete;
    Alternation& operator=(const Alternation&) = delete;
    /// Adds an input guard; returns its index.
    std::size_t add_input(InPort& in);
    /// Adds an output guard that offers `value` on `out` (a port with one target);
    /// returns its index. Change the offered value with offer().
    std::size_t add_output(OutPort& out, Value value = {});
    void offer(std::size_t index, Value value);
    /// Turns a guard on or off (a disabled guard is never chosen).
    void enable(std::size_t index, bool on);
    /// With a timeout, select() returns Timeout when nothing was ready in time.
    void set_timeout(std::optional<std::chrono::nanoseconds> t) noexcept { timeout_ = t; }
    /// With skip, select() returns Skip at once when nothing is ready.
    void set_skip(bool on) noexcept { skip_ = on; }
    void set_priority(bool on) noexcept { priority_ = on; }

    struct SelectAwaiter {
        Alternation& alt;
        AltResult result;
        bool waited = false;
        bool await_ready();
        bool await_suspend(std::coroutine_handle<> h);
        AltResult await_resume();
    };
    SelectAwaiter select() noexcept { return SelectAwaiter{*this, {}, false}; }

private:
    friend struct SelectAwaiter;
    struct Guard {
        InPort* in = nullptr;
        OutPort* out = nullptr;
        Value offered;
        bool enabled = true;
        bool retired = false;  // input at end of stream / output with no readers left
        detail::Waiter waiter{};
        Value received;
    };
    static detail::Channel* channel_of(const Guard& g) noexcept;
    // Completes a ready guard (true) or, given a process, queues on every guard (false).
    bool try_select(SelectAwaiter& a, detail::ProcessState* p);
    AltResult finish_wait();
    std::vector<Guard> guards_;
    std::optional<std::chrono::nanoseconds> timeout_;
    bool skip_ = false;
    bool priority_ = false;
    std::size_t next_ = 0;  // fair choice starts here
    detail::AltState* state_ = nullptr;
    std::uint64_t timer_ = 0;  // the pending timeout, 0 for none
};

/// Suspends the process for a while (the timer counts as pending for deadlock detection).
class SleepAwaiter {
public:
    explicit SleepAwaiter(std::chrono::nanoseconds d) noexcept : duration_(d) {}
    bool await_ready() const noexcept { return duration_.count() <= 0; }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept;

private:
    std::chrono::nanoseconds duration_;
};
inline SleepAwaiter sleep_for(std::chrono::nanoseconds d) noexcept {
    return SleepAwaiter(d);
}

/// Something outside the engine that a process waits for, finished from any thread: work
/// queued on a GPU stream, a child process, an I/O request. A process waiting on one is no
/// part of a deadlock: the wait counts as pending, as a timer does.
///
///   chanflow::Completion done;
///   std::thread([&] { work(); done.complete(); }).detach();
///   co_await chanflow::wait_for(done);  // suspends; the thread's complete() wakes it
///
/// One process waits on it at a time; complete() before the wait lets the wait pass at
/// once. reset() makes it ready for another round, once the last wait has returned.
class Completion {
public:
    Completion() = default;
    Completion(const Completion&) = delete;
    Completion& operator=(const Completion&) = delete;

    /// Marks it done and wakes the process that waits on it; from any thread.
    void complete() noexcept;
    bool done() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }
    void reset() noexcept { state_.store(kIdle, std::memory_order_release); }

private:
    friend class CompletionAwaiter;
    static constexpr int kIdle = 0, kWaiting = 1, kDone = 2;
    std::atomic<int> state_{kIdle};
    detail::ProcessState* waiter_ = nullptr;
};

class CompletionAwaiter {
public:
    explicit CompletionAwaiter(Completion& c) noexcept : c_(c) {}
    bool await_ready() const noexcept { return c_.done(); }
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept;

private:
    Completion& c_;
};
/// Suspends the process until `c` is complete.
inline CompletionAwaiter wait_for(Completion& c) noexcept {
    return CompletionAwaiter(c);
}

/// What a running process sees of itself: its name, parameters and ports.
class ProcessContext {
public:
    /// "split[1]" for replica 1 of a replicated process, else the process name.
    const std::string& name() const noexcept;
    int replica() const noexcept;
    int replicas() const noexcept;
    const NodeType& node_type() const noexcept;

    /// A parameter's value (the default where the graph gave none). Throws on unknown names.
    const Value& param(std::string_view name) const;
    /// True when the graph gave the parameter or it has a default.
    bool has_param(std::string_view name) const noexcept;
    /// A compiled expression parameter.
    const Expr& expr(std::string_view name) const;

    /// The single channel bound to a port (throws if the port takes a list).
    InPort& in(std::string_view port = "in");
    OutPort& out(std::string_view port = "out");
    /// All channels bound to a list port, in the order given.
    std::span<InPort* const> ins(std::string_view port = "in");
    std::span<OutPort* const> outs(std::string_view port = "out");

    /// Records a value for the embedding program (see RunResult::collected).
    void collect(Value v);

    /// For progress reports (`run --progress`): a source that knows its size says so once,
    /// then reports how much of it it has done (a running total, not an increment). Cheap:
    /// one relaxed store.
    void progress_total(std::uint64_t total, ProgressUnit unit = ProgressUnit::Items) noexcept;
    void progress_done(std::uint64_t done) noexcept;

    /// Appends whole lines, each ending in '\n', to the run's output (stdout, or where the
    /// embedding program sends it). Lines from different processes, threads or partitions
    /// never interleave, and each process's lines keep their order. Throws when the output
    /// refused an earlier write (a full disk, a closed pipe): the process, and the run,
    /// fail. Gather many lines into one call; a call takes a lock.
    void write_lines(std::string_view lines);

    /// Work done for this process elsewhere (a GPU's kernels and copies): `run --stats`
    /// shows the time it took and the bytes moved to and from the device.
    void note_device_work(std::chrono::nanoseconds time, std::uint64_t bytes_to_device,
                          std::uint64_t bytes_from_device);

    explicit ProcessContext(detail::ProcessState* s) noexcept : state_(s) {}

private:
    detail::ProcessState* state_;
};

}  // namespace chanflow
