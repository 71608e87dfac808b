// The threads backend's executor: processes (coroutines) run M:N on a few worker threads.
//
// Each worker has a `next` slot and a local queue. A process woken by the running one goes
// into `next`, so a hand-off between two processes (a channel ping-pong) stays on one
// thread and costs a coroutine switch, not a kernel wake-up (about 20 µs on these VMs).
// A process pushed out of `next` lands in the local queue, from which idle workers steal:
// parallelism comes from surplus work. Idle workers spin briefly, then park.
//
// Deadlock: the scheduler knows when nothing can run any more — every pool worker parked,
// no dedicated-thread process runnable, no timer pending — while processes are still
// alive. It then reports it to the runtime instead of sleeping forever.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "spinlock.hpp"

namespace chanflow::detail {

struct ProcessState;
struct AltState;

/// One slice of a process running on a thread, for `run --trace`.
struct TraceSlice {
    const ProcessState* process;
    std::int64_t begin_ns, end_ns;  // steady_clock
};

/// The last `capacity` slices one thread ran (older ones are overwritten: a long run keeps
/// its end). Written only by its thread; read when the run is over.
class TraceRing {
public:
    void record(const ProcessState* p, std::int64_t begin, std::int64_t end) {
        if (slices_.size() < kCapacity) {
            slices_.push_back({p, begin, end});
        } else {
            slices_[next_] = {p, begin, end};
            wrapped_ = true;
        }
        next_ = (next_ + 1) % kCapacity;
    }
    /// Oldest first.
    std::vector<TraceSlice> slices() const {
        if (!wrapped_) return slices_;
        std::vector<TraceSlice> out(slices_.begin() + static_cast<std::ptrdiff_t>(next_),
                                    slices_.end());
        out.insert(out.end(), slices_.begin(),
                   slices_.begin() + static_cast<std::ptrdiff_t>(next_));
        return out;
    }
    bool wrapped() const noexcept { return wrapped_; }

private:
    static constexpr std::size_t kCapacity = 1 << 18;
    std::vector<TraceSlice> slices_;
    std::size_t next_ = 0;
    bool wrapped_ = false;
};

class Scheduler {
public:
    struct alignas(64) Worker {
        std::atomic<ProcessState*> next{nullptr};
        SpinLock lock;
        std::deque<ProcessState*> queue;
        std::atomic<std::size_t> queued{0};
        std::thread thread;
        unsigned index = 0;
        // Owned by the worker's thread: look-ups until the next that starts with the global
        // queue, and processes run from `next` in a row (see find_work).
        std::uint32_t until_global = 0;
        std::uint32_t next_streak = 0;
        TraceRing trace;  // with tracing on
    };
    struct Dedicated {
        std::mutex mu;
        std::condition_variable cv;
        bool runnable = false;
        std::thread thread;
        TraceRing trace;  // with tracing on
    };
    struct Hooks {
        std::function<void()> on_idle;  // a worker is about to park (e.g. flush output)
    };

    Scheduler(unsigned workers, Hooks hooks, bool trace = false);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// Registers a process before it first runs (counts it as live).
    void add_process(ProcessState* p);
    /// Makes a process runnable; callable from any thread.
    void schedule(ProcessState* p);
    /// Called by a process when it has ended for good.
    void process_ended();

    /// Starts the workers with the initial processes; then wait() until every process
    /// ended or a deadlock happened.
    void start(const std::vector<ProcessState*>& initial);
    enum class Stop { AllEnded, Deadlock };
    Stop wait();
    /// After a deadlock, the runtime unblocks the processes; wait for them to end.
    void wait_all_ended();
    /// Stops and joins every thread (also done by the destructor); idempotent.
    void shutdown();

    /// Timers: wakes `p` after `d`, or claims `alt` for guard `guard` (a timeout).
    std::uint64_t add_timer(std::chrono::nanoseconds d, ProcessState* p, AltState* alt,
                            std::uint32_t guard);
    /// Cancels a timer; when it returns, the timer's callback is not running and never will.
    void cancel_timer(std::uint64_t id);

    /// A wait that ends on its own, as a timer does (a Completion): while one is pending,
    /// nothing is a deadlock. Begin before the process suspends; end by scheduling it (or,
    /// when it did not suspend after all, without).
    void own_wait_begin();
    void own_wait_end(ProcessState* wake);

    /// Something outside the scheduler (a shared-memory ring) will wake a process: while
    /// such waits are pending, processes blocked on channels are no deadlock. Begin before
    /// the process suspends; end after it was scheduled again.
    void external_wait_begin();
    void external_wait_end();
    /// Called (with the scheduler's lock held: keep it short, call nothing of the scheduler)
    /// whenever nothing can run and only external waits are pending. Set before start().
    void set_quiet_hook(std::function<void()> f) { quiet_hook_ = std::move(f); }
    /// Whether nothing can run now and only external waits are pending (what the quiet hook
    /// was last called for still holds).
    bool only_external_waits();
    /// Calls `f` unless only_external_waits(), under the lock that the quiet hook is called
    /// with: nothing is quiet or woken between the look and `f`.
    void unless_quiet(const std::function<void()>& f);
    /// Called by an idle worker on every round of looking for work before it parks: a
    /// transport that must be polled (MPI) takes in arrivals there, on the thread that will
    /// run who they wake. Returns whether it scheduled anything. `parking` is called when a
    /// worker stops looking without finding work (it parks): whoever else polls takes over.
    /// Set before start().
    void set_poll_hook(std::function<bool()> poll, std::function<void()> parking = {}) {
        poll_hook_ = std::move(poll);
        parking_hook_ = std::move(parking);
    }

    /// The process running on this thread (nullptr outside processes).
    static ProcessState* current() noexcept { return current_; }

    /// With tracing on: what each pool worker, then each dedicated thread, ran (after the
    /// run).
    std::vector<const TraceRing*> traces() const;
    unsigned worker_count() const noexcept { return static_cast<unsigned>(workers_.size()); }

private:
    // The process running on this thread; read on every blocking channel operation, so
    // initial-exec TLS (no __tls_get_addr call from the shared library).
    static thread_local ProcessState* current_ __attribute__((tls_model("initial-exec")));

    struct Timer {
        ProcessState* process;
        AltState* alt;
        std::uint32_t guard;
    };

    void worker_loop(Worker& w);
    void dedicated_loop(ProcessState* p, Dedicated& d);
    void timer_loop();
    void run_process(ProcessState* p, TraceRing* trace);
    ProcessState* find_work(Worker& w, bool steal_next);
    ProcessState* pop_global();
    void push_global(ProcessState* p);
    void wake_one_if_idle();
    void check_stuck_locked();
    bool only_external_waits_locked();
    void park(Worker& w);

    std::vector<std::unique_ptr<Worker>> workers_;
    Hooks hooks_;
    bool trace_ = false;

    // Everything below is guarded by mu_ unless atomic.
    std::mutex mu_;
    std::condition_variable park_cv_;
    std::condition_variable main_cv_;
    std::deque<ProcessState*> global_;
    std::atomic<std::size_t> global_size_{0};
    std::atomic<unsigned> parked_{0};
    std::atomic<unsigned> spinning_{0};
    unsigned wake_tokens_ = 0;
    std::atomic<std::int64_t> live_{0};
    std::int64_t dedicated_runnable_ = 0;
    bool stopping_ = false;
    bool deadlock_ = false;
    bool started_ = false;
    std::vector<std::unique_ptr<Dedicated>> dedicated_;

    // Timers have their own lock and thread, started on first use.
    std::mutex timer_mu_;
    std::condition_variable timer_cv_;
    std::map<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>, Timer> timers_;
    std::map<std::uint64_t, std::chrono::steady_clock::time_point> timer_deadlines_;
    std::uint64_t next_timer_id_ = 1;
    std::int64_t timers_pending_ = 0;  // guarded by mu_: counts for deadlock detection
    std::atomic<std::int64_t> external_pending_{0};  // likewise (read under mu_)
    std::atomic<int> waking_{0};  // own_wait_end calls under way (shutdown waits for them)
    std::function<void()> quiet_hook_;
    std::function<bool()> poll_hook_;
    std::function<void()> parking_hook_;
    std::thread timer_thread_;
    bool timer_stop_ = false;
};

}  // namespace chanflow::detail
