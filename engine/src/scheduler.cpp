#include "scheduler.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "chanflow/runtime.hpp"
#include "channel.hpp"
#include "process_state.hpp"

namespace chanflow {

unsigned usable_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return static_cast<unsigned>(CPU_COUNT(&set));
    return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace chanflow

namespace chanflow::detail {

namespace {
// initial-exec: these are read on every channel operation, and the general TLS model
// would call __tls_get_addr each time from a shared library.
#define CHANFLOW_TLS __attribute__((tls_model("initial-exec"))) thread_local
CHANFLOW_TLS Scheduler::Worker* tl_worker = nullptr;
CHANFLOW_TLS const Scheduler* tl_scheduler = nullptr;

// How long an idle worker looks for work before it parks, and after how many rounds it
// may take a process from another worker's `next` slot (left alone at first, so that a
// hand-off stays on the thread that made it).
constexpr int kSpinRounds = 200;
constexpr int kStealNextAfter = 40;
// Fairness, as in Go's scheduler: processes handed on through `next` share one turn, so
// after kNextBudget of them in a row older work goes first; and every kGlobalEvery-th
// look-up starts with the global queue (where timers and other threads put processes).
// Without these, two processes that keep waking each other hold a worker forever, and
// every other process queued there (a timer's wake-up, a poisoner) never runs.
constexpr std::uint32_t kNextBudget = 8;
constexpr std::uint32_t kGlobalEvery = 61;
// Polls of a polled transport (set_poll_hook) per round of looking for work.
constexpr int kPollsPerRound = 16;
}  // namespace

thread_local ProcessState* Scheduler::current_ = nullptr;

Scheduler::Scheduler(unsigned workers, Hooks hooks, bool trace)
    : hooks_(std::move(hooks)), trace_(trace) {
    if (workers == 0) workers = usable_cores();
    for (unsigned i = 0; i < workers; ++i) {
        workers_.push_back(std::make_unique<Worker>());
        workers_.back()->index = i;
    }
}

Scheduler::~Scheduler() {
    shutdown();
}

void Scheduler::shutdown() {
    while (waking_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    park_cv_.notify_all();
    for (auto& w : workers_)
        if (w->thread.joinable()) w->thread.join();
    for (auto& d : dedicated_) {
        {
            std::lock_guard lock(d->mu);
            d->runnable = true;  // wakes it to see that it is stopping
        }
        d->cv.notify_all();
        if (d->thread.joinable()) d->thread.join();
    }
    {
        std::lock_guard lock(timer_mu_);
        timer_stop_ = true;
    }
    timer_cv_.notify_all();
    if (timer_thread_.joinable()) timer_thread_.join();
}

void Scheduler::add_process(ProcessState* p) {
    live_.fetch_add(1, std::memory_order_relaxed);
    if (p->own_thread) {
        dedicated_.push_back(std::make_unique<Dedicated>());
        p->dedicated = dedicated_.back().get();
    }
}

void Scheduler::start(const std::vector<ProcessState*>& initial) {
    {
        std::lock_guard lock(mu_);
        started_ = true;
    }
    // Spread the initial processes over the pool workers before they start.
    std::size_t i = 0;
    std::vector<ProcessState*> own_thread;
    for (auto* p : initial) {
        if (p->dedicated) {
            own_thread.push_back(p);
            continue;
        }
        auto& w = *workers_[i++ % workers_.size()];
        w.queue.push_back(p);
        w.queued.fetch_add(1, std::memory_order_relaxed);
    }
    for (auto& w : workers_) {
        Worker* wp = w.get();
        wp->thread = std::thread([this, wp] { worker_loop(*wp); });
    }
    for (auto* p : own_thread) schedule(p);
}

void Scheduler::schedule(ProcessState* p) {
    p->woken_at = ticks();
    if (p->dedicated) {
        {
            std::lock_guard lock(mu_);
            ++dedicated_runnable_;
        }
        auto& d = *p->dedicated;
        {
            std::lock_guard lock(d.mu);
            d.runnable = true;
            if (!d.thread.joinable())
                d.thread = std::thread([this, p, &d] { dedicated_loop(p, d); });
        }
        d.cv.notify_one();
        return;
    }
    Worker* w = tl_worker;
    if (w && tl_scheduler == this) {
        // Go's `runnext`: the woken process runs next on this thread; the one it displaces
        // becomes stealable work for an idle worker.
        ProcessState* displaced = w->next.exchange(p, std::memory_order_acq_rel);
        if (!displaced) return;
        {
            std::lock_guard lock(w->lock);
            w->queue.push_back(displaced);
        }
        // One displaced process is no surplus: this worker runs it as soon as the current
        // one blocks, which in a CSP graph is soon. Waking a parked worker for it would
        // only move a hand-off partner to another core (see find_work).
        if (w->queued.fetch_add(1, std::memory_order_seq_cst) >= 1) wake_one_if_idle();
        return;
    }
    push_global(p);
}

void Scheduler::push_global(ProcessState* p) {
    {
        std::lock_guard lock(mu_);
        global_.push_back(p);
        global_size_.fetch_add(1, std::memory_order_seq_cst);
        if (!started_) return;
        if (parked_.load() > 0 && wake_tokens_ < parked_.load()) {
            ++wake_tokens_;
            park_cv_.notify_one();
        }
    }
}

// The caller has just made work visible with a seq_cst increment of a `queued` counter;
// a parking worker increments parked_ (seq_cst) and then reads every `queued`. In the
// single order of seq_cst operations one of the two sees the other: no lost wake-up.
void Scheduler::wake_one_if_idle() {
    if (parked_.load(std::memory_order_seq_cst) == 0 || spinning_.load() > 0) return;
    std::lock_guard lock(mu_);
    if (parked_.load() > wake_tokens_) {
        ++wake_tokens_;
        park_cv_.notify_one();
    }
}

ProcessState* Scheduler::pop_global() {
    if (global_size_.load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lock(mu_);
    if (global_.empty()) return nullptr;
    auto* p = global_.front();
    global_.pop_front();
    global_size_.fetch_sub(1, std::memory_order_relaxed);
    return p;
}

ProcessState* Scheduler::find_work(Worker& w, bool steal_next) {
    if (w.until_global-- == 0) {  // a countdown: no division on every look-up
        w.until_global = kGlobalEvery - 1;
        if (auto* p = pop_global()) {
            w.next_streak = 0;
            return p;
        }
    }
    if (w.next_streak < kNextBudget)
        if (auto* p = w.next.exchange(nullptr, std::memory_order_acq_rel)) {
            ++w.next_streak;
            return p;
        }
    w.next_streak = 0;
    if (w.queued.load(std::memory_order_relaxed) > 0) {
        std::lock_guard lock(w.lock);
        if (!w.queue.empty()) {
            auto* p = w.queue.front();  // FIFO: fair among runnable processes
            w.queue.pop_front();
            w.queued.fetch_sub(1, std::memory_order_relaxed);
            return p;
        }
    }
    if (auto* p = pop_global()) return p;
    // The budget was spent but nothing older waits: `next` goes on.
    if (auto* p = w.next.exchange(nullptr, std::memory_order_acq_rel)) return p;
    const std::size_t n = workers_.size();
    // A thief takes a lone queued process only once it has looked for a while (steal_next):
    // that process is usually the partner of a hand-off about to happen on its own worker,
    // and moving it would turn every following hand-off into a cross-core one.
    const std::size_t surplus = steal_next ? 1 : 2;
    for (std::size_t k = 1; k < n; ++k) {
        Worker& v = *workers_[(w.index + k) % n];
        if (v.queued.load(std::memory_order_relaxed) >= surplus) {
            std::lock_guard lock(v.lock);
            if (!v.queue.empty()) {
                auto* p = v.queue.back();
                v.queue.pop_back();
                v.queued.fetch_sub(1, std::memory_order_relaxed);
                return p;
            }
        }
        if (steal_next)
            if (auto* p = v.next.exchange(nullptr, std::memory_order_acq_rel)) return p;
    }
    return nullptr;
}

namespace {
std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

void Scheduler::run_process(ProcessState* p, TraceRing* trace) {
    if (p->resume_hook) {
        auto hook = p->resume_hook;
        if (!hook(p->resume_hook_arg)) return;  // the operation blocked again
        p->resume_hook = nullptr;
    }
    p->on_resume(ticks());
    current_ = p;
    if (trace_) {
        const std::int64_t begin = steady_ns();
        p->handle.resume();
        trace->record(p, begin, steady_ns());
    } else {
        p->handle.resume();
    }
    current_ = nullptr;
}

std::vector<const TraceRing*> Scheduler::traces() const {
    std::vector<const TraceRing*> out;
    for (const auto& w : workers_) out.push_back(&w->trace);
    for (const auto& d : dedicated_) out.push_back(&d->trace);
    return out;
}

void Scheduler::worker_loop(Worker& w) {
    tl_worker = &w;
    tl_scheduler = this;
    for (;;) {
        if (auto* p = find_work(w, false)) {
            run_process(p, &w.trace);
            continue;
        }
        ProcessState* found = nullptr;
        spinning_.fetch_add(1);
        for (int round = 0; round < kSpinRounds && !found; ++round) {
            found = find_work(w, round >= kStealNextAfter);
            if (!found && poll_hook_) {
                // A polled transport: the polls are the pause (no PAUSE loop between them:
                // on these CPUs 32 of them took as long as 7 polls), so that an arrival is
                // seen within a poll's time (a ping-pong's latency).
                for (int k = 0; k < kPollsPerRound && !found; ++k)
                    if (poll_hook_()) found = find_work(w, true);
            }
            if (!found) {
                if (!poll_hook_)
                    for (int k = 0; k < 32; ++k) CHANFLOW_CPU_RELAX();
                if (round % 16 == 15) std::this_thread::yield();
            }
        }
        spinning_.fetch_sub(1);
        if (found) {
            run_process(found, &w.trace);
            continue;
        }
        if (parking_hook_) parking_hook_();
        if (hooks_.on_idle) hooks_.on_idle();
        std::unique_lock lock(mu_);
        if (stopping_) break;
        if (!global_.empty()) continue;
        parked_.fetch_add(1, std::memory_order_seq_cst);
        check_stuck_locked();
        // A process pushed to another worker's queue before we counted ourselves parked
        // would otherwise wait for nobody.
        bool work_left = false;
        for (auto& v : workers_)
            if (v->queued.load(std::memory_order_seq_cst) > 0) work_left = true;
        if (!work_left) {
            park_cv_.wait(lock, [&] { return wake_tokens_ > 0 || stopping_; });
            if (wake_tokens_ > 0) --wake_tokens_;
        }
        parked_.fetch_sub(1, std::memory_order_seq_cst);
        if (stopping_) break;
    }
    tl_worker = nullptr;
}

void Scheduler::dedicated_loop(ProcessState* p, Dedicated& d) {
    tl_scheduler = this;
    for (;;) {
        {
            std::unique_lock lock(d.mu);
            d.cv.wait(lock, [&] { return d.runnable; });
            d.runnable = false;
        }
        {
            std::lock_guard lock(mu_);
            if (stopping_ || !p->handle) break;
        }
        const bool ended = p->ended;
        if (!ended) run_process(p, &d.trace);
        std::lock_guard lock(mu_);
        --dedicated_runnable_;
        check_stuck_locked();
        if (p->ended) break;
    }
}

bool Scheduler::only_external_waits() {
    std::lock_guard lock(mu_);
    return only_external_waits_locked();
}

void Scheduler::unless_quiet(const std::function<void()>& f) {
    std::lock_guard lock(mu_);
    if (!only_external_waits_locked()) f();
}

bool Scheduler::only_external_waits_locked() {
    if (deadlock_ || stopping_ || parked_.load() != workers_.size() || dedicated_runnable_ > 0 ||
        timers_pending_ > 0 || !global_.empty() || live_.load() <= 0 ||
        external_pending_.load() == 0)
        return false;
    for (const auto& w : workers_)
        if (w->queued.load() > 0 || w->next.load()) return false;
    return true;
}

// Called with mu_ held whenever something may have become idle: if nothing can run and
// no timer can wake anything, the live processes are deadlocked.
void Scheduler::check_stuck_locked() {
    if (deadlock_ || stopping_) return;
    if (parked_.load() != workers_.size() || dedicated_runnable_ > 0 || timers_pending_ > 0 ||
        !global_.empty())
        return;
    if (live_.load() <= 0) return;
    if (external_pending_ > 0) {  // only another partition can wake it
        if (quiet_hook_) quiet_hook_();
        return;
    }
    deadlock_ = true;
    main_cv_.notify_all();
}

void Scheduler::process_ended() {
    if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mu_);
        main_cv_.notify_all();
    }
}

Scheduler::Stop Scheduler::wait() {
    std::unique_lock lock(mu_);
    main_cv_.wait(lock, [&] { return live_.load() <= 0 || deadlock_; });
    if (live_.load() <= 0) return Stop::AllEnded;
    return Stop::Deadlock;
}

void Scheduler::wait_all_ended() {
    std::unique_lock lock(mu_);
    main_cv_.wait(lock, [&] { return live_.load() <= 0; });
}

// Lock-free: a bridge waits and is woken once per message it moves. The count is read under
// mu_ by check_stuck_locked; a wait begins before its process suspends, so a worker that
// parks after that sees it.
void Scheduler::external_wait_begin() {
    external_pending_.fetch_add(1, std::memory_order_seq_cst);
}

void Scheduler::external_wait_end() {
    if (external_pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        parked_.load(std::memory_order_seq_cst) == workers_.size()) {
        std::lock_guard lock(mu_);
        check_stuck_locked();
    }
}

void Scheduler::own_wait_begin() {
    std::lock_guard lock(mu_);
    ++timers_pending_;
}

// As a timer fires: the process is runnable before the wait stops counting. The caller may
// be a thread of its own (a GPU callback): once the process runs, the run may end and this
// scheduler go, so shutdown() waits until no such call is under way.
void Scheduler::own_wait_end(ProcessState* wake) {
    waking_.fetch_add(1, std::memory_order_acq_rel);
    if (wake) schedule(wake);
    {
        std::lock_guard lock(mu_);
        --timers_pending_;
        check_stuck_locked();
    }
    waking_.fetch_sub(1, std::memory_order_release);
}

// ---- timers -------------------------------------------------------------------------------

std::uint64_t Scheduler::add_timer(std::chrono::nanoseconds d, ProcessState* p, AltState* alt,
                                   std::uint32_t guard) {
    {
        std::lock_guard lock(mu_);
        ++timers_pending_;
    }
    std::lock_guard lock(timer_mu_);
    if (!timer_thread_.joinable()) timer_thread_ = std::thread([this] { timer_loop(); });
    const auto deadline = std::chrono::steady_clock::now() + d;
    const std::uint64_t id = next_timer_id_++;
    timers_.emplace(std::make_pair(deadline, id), Timer{p, alt, guard});
    timer_deadlines_.emplace(id, deadline);
    timer_cv_.notify_one();
    return id;
}

void Scheduler::cancel_timer(std::uint64_t id) {
    bool removed = false;
    {
        std::lock_guard lock(timer_mu_);
        auto it = timer_deadlines_.find(id);
        if (it != timer_deadlines_.end()) {
            timers_.erase({it->second, id});
            timer_deadlines_.erase(it);
            removed = true;
        }
    }
    if (removed) {
        std::lock_guard lock(mu_);
        --timers_pending_;
        check_stuck_locked();
    }
}

void Scheduler::timer_loop() {
    tl_scheduler = this;
    std::unique_lock lock(timer_mu_);
    while (!timer_stop_) {
        if (timers_.empty()) {
            timer_cv_.wait(lock);
            continue;
        }
        auto first = timers_.begin();
        // A copy: wait_until reads its deadline again after waking, and cancel_timer may
        // have freed the map node meanwhile.
        const auto deadline = first->first.first;
        if (std::chrono::steady_clock::now() < deadline) {
            timer_cv_.wait_until(lock, deadline);
            continue;
        }
        const Timer t = first->second;
        timer_deadlines_.erase(first->first.second);
        timers_.erase(first);
        // Fire under timer_mu_, so that cancel_timer() returning means "not running".
        const bool wake = !t.alt || t.alt->claim(t.guard);
        if (wake) schedule(t.process);
        std::lock_guard sched_lock(mu_);
        --timers_pending_;
        check_stuck_locked();
    }
}

}  // namespace chanflow::detail
