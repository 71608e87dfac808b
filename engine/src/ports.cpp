// Ports and alternation: the awaitables a process uses to talk over channels.
#include <algorithm>
#include <stdexcept>

#include "channel.hpp"
#include "process_state.hpp"
#include "runtime_impl.hpp"
#include "scheduler.hpp"

namespace chanflow {

using detail::AltState;
using detail::Channel;
using detail::Outcome;
using detail::ProcessState;
using detail::Scheduler;
using detail::WaitKind;

// ---- end of a process ---------------------------------------------------------------------

void detail::FinalAwaiter::await_suspend(std::coroutine_handle<> h) noexcept {
    auto typed = std::coroutine_handle<Task::promise_type>::from_address(h.address());
    ProcessState* p = typed.promise().process;
    std::exception_ptr error = typed.promise().error;
    p->wait = WaitKind::None;
    p->busy += ticks() - p->resumed_at;
    p->runtime->finish(*p, std::move(error));
    typed.destroy();
    p->handle = {};
    p->ended = true;
    p->runtime->scheduler().process_ended();
}

// ---- InPort -------------------------------------------------------------------------------

// Reads and single-target writes do all their work in await_suspend, under one lock: try,
// and queue the waiter if the channel cannot complete it now. A completed operation
// returns false there and the coroutine goes on without having been suspended.
static_assert(Outcome::Done == 1, "InPort's inline fast path assumes Done == 1");

InPort::InPort(Channel* ch) noexcept
    : channel_(ch),
      poisoned_(&ch->poisoned_flag()),
      batching_(ch->capacity() >= 2 && ch->single_reader()) {}

bool InPort::ReadAwaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    waiter.prepare(p, &value);
    p->begin_wait(WaitKind::Read);
    p->wait_channel = port.channel_;
    // Either call queues the waiter when the channel is still empty.
    const Outcome o = port.batching_
                          ? port.channel_->read_batch(waiter, port.batch_, port.batch_pos_)
                          : port.channel_->read(waiter);
    if (o == Outcome::Pending) return true;  // from here on the frame is not ours
    waiter.outcome = o;
    p->cancel_wait();
    return false;
}

std::optional<Value> InPort::ReadAwaiter::finish() {
    if (waiter.process) waiter.process->wait = WaitKind::None;
    switch (waiter.outcome) {
        case Outcome::Done:
            ++port.reads_;
            return std::move(value);
        case Outcome::Ended:
            if (!port.at_end_)
                for (Channel* out : port.marks_) out->push_mark(detail::OrderMark::End);
            port.at_end_ = true;
            return std::nullopt;
        default:
            throw Poisoned();
    }
}

void InPort::mark_boundary() {
    if (at_end_) return;
    if (read_before_)
        for (Channel* out : marks_) out->push_mark(detail::OrderMark::Boundary);
    read_before_ = true;
}

void detail::mark_boundaries_on(InPort& in, std::vector<Channel*> outputs) {
    in.marks_ = std::move(outputs);
}

bool InPort::try_read(Value& out) {
    bool got = take_held(out);
    if (!got && !poisoned_->load(std::memory_order_relaxed)) {
        detail::Waiter w{};
        w.prepare(nullptr, &out);  // no process: one attempt, never queued
        got = (batching_ ? channel_->read_batch(w, batch_, batch_pos_) : channel_->read(w)) ==
              Outcome::Done;
    }
    if (!got) return false;
    if (!marks_.empty()) mark_boundary();  // as read() does, for the message it reads
    ++reads_;
    return true;
}

bool InPort::has_more() {
    return has_held() || channel_->occupancy() > 0;
}

void InPort::retire() {
    if (retired_) return;
    retired_ = true;
    drop_held();
    channel_->retire_reader();
}

void InPort::poison() {
    retired_ = true;
    drop_held();
    channel_->poison();
}

const std::string& InPort::channel_name() const noexcept {
    return channel_->name();
}

// ---- OutPort ------------------------------------------------------------------------------

OutPort::OutPort(std::string name, std::vector<Channel*> targets, Deliver deliver) noexcept
    : name_(std::move(name)),
      targets_(std::move(targets)),
      deliver_(deliver),
      target_ended_(targets_.size(), false) {}

namespace {
// docs/graph-format.md: the key of a non-empty list is its element 0, of a record its field `key`.
const Value& hash_key(const Value& v) noexcept {
    if (v.is_list() && !v.as_list().empty()) return v.as_list().front();
    if (const Value* k = v.field("key")) return *k;
    return v;
}
}  // namespace

bool OutPort::step(WriteAwaiter& w, ProcessState* p) {
    const std::size_t n = targets_.size();
    const bool broadcast = deliver_ == Deliver::Broadcast;
    if (!w.started) {
        w.started = true;
        w.remaining = n;
        if (deliver_ == Deliver::RoundRobin)
            w.target = sent_ % n;
        else if (deliver_ == Deliver::Hash)
            w.target = stable_hash(hash_key(w.value)) % n;
        else
            w.target = 0;
    }
    auto advance = [&] {
        w.target = (w.target + 1) % n;
        --w.remaining;
    };
    while (w.remaining > 0) {
        if (target_ended_[w.target]) {
            advance();
            continue;
        }
        if (broadcast) w.copy = w.value;
        w.waiter.slot = broadcast ? &w.copy : &w.value;
        w.waiter.process = p;
        // The deadlock report names the target waited on; set before the write can queue
        // (after that the awaiter may already be resumed elsewhere).
        if (p) p->wait_channel = targets_[w.target];
        switch (targets_[w.target]->write(w.waiter)) {
            case Outcome::Pending:
                return false;
            case Outcome::Done:
                if (!broadcast) {
                    ++sent_;
                    w.waiter.outcome = Outcome::Done;
                    return true;
                }
                w.delivered = true;
                advance();
                break;
            case Outcome::Ended:  // this reader retired: the next live one takes it
                target_ended_[w.target] = true;
                advance();
                break;
            default:
                w.waiter.outcome = Outcome::PoisonedOutcome;
                return true;
        }
    }
    w.waiter.outcome = w.delivered ? Outcome::Done : Outcome::Ended;
    if (w.delivered) ++sent_;
    return true;
}

// Resumes a routed write after one of its targets completed the queued part.
bool OutPort::continue_write(void* awaiter) {
    auto& w = *static_cast<WriteAwaiter*>(awaiter);
    OutPort& port = w.port;
    const bool broadcast = port.deliver_ == Deliver::Broadcast;
    switch (w.waiter.outcome) {
        case Outcome::Done:
            if (!broadcast) {
                ++port.sent_;
                return true;
            }
            w.delivered = true;
            break;
        case Outcome::Ended:
            port.target_ended_[w.target] = true;
            break;
        default:
            return true;  // poisoned
    }
    w.target = (w.target + 1) % port.targets_.size();
    --w.remaining;
    return port.step(w, w.waiter.process);
}

// A write usually completes at once (room in the buffer, or a reader waiting): try that
// here, without a process to queue, so the coroutine is not even suspended.
bool OutPort::WriteAwaiter::await_ready() {
    waiter.prepare(nullptr, &value);
    if (port.targets_.size() != 1) return port.step(*this, nullptr);
    const Outcome o = port.targets_.front()->write(waiter);
    waiter.outcome = o;
    return o != Outcome::Pending;
}

bool OutPort::WriteAwaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    p->begin_wait(WaitKind::Write);
    p->wait_channel = port.targets_[target];
    if (port.targets_.size() == 1) {
        waiter.prepare(p, &value);
        const Outcome o = port.targets_.front()->write(waiter);
        if (o == Outcome::Pending) return true;
        waiter.outcome = o;
        p->cancel_wait();
        return false;
    }
    p->resume_hook = &OutPort::continue_write;
    p->resume_hook_arg = this;
    if (!port.step(*this, p)) return true;
    p->resume_hook = nullptr;
    p->cancel_wait();
    return false;
}

namespace {
// How a write ended, as the writing process sees it: on, or unwinding.
void end_write(const detail::Waiter& waiter) {
    if (waiter.process) waiter.process->wait = WaitKind::None;
    switch (waiter.outcome) {
        case Outcome::Done:
            return;
        case Outcome::Ended:
            throw WriterRetired();
        default:
            throw Poisoned();
    }
}
}  // namespace

void OutPort::WriteAwaiter::finish() {
    end_write(waiter);
}

// ---- write_all ----------------------------------------------------------------------------

void OutPort::route_all(WriteAllAwaiter& w) {
    const std::size_t n = targets_.size();
    buckets_.resize(n);
    bucket_order_.resize(n);
    bucket_done_.assign(n, 0);
    std::vector<Value>& values = w.values;
    if (n == 1) {
        buckets_[0].swap(values);
    } else if (deliver_ == Deliver::Broadcast) {
        for (std::size_t t = 0; t < n; ++t) {
            buckets_[t] = values;
            for (std::size_t k = 0; k < values.size(); ++k) bucket_order_[t].push_back(k);
        }
    } else {
        for (std::size_t t = 0; t < n; ++t) {
            buckets_[t].reserve(values.size());
            bucket_order_[t].reserve(values.size());
        }
        auto place = [&](std::size_t k, std::size_t t) __attribute__((always_inline)) {
            buckets_[t].push_back(std::move(values[k]));
            bucket_order_[t].push_back(k);
        };
        if (deliver_ == Deliver::RoundRobin) {
            for (std::size_t k = 0; k < values.size(); ++k) place(k, (sent_ + k) % n);
            sent_ += values.size();
        } else {
            for (std::size_t k = 0; k < values.size(); ++k)
                place(k, stable_hash(hash_key(values[k])) % n);
        }
    }
    values.clear();
}

// Writes what is left of the buckets: first, to every target, as much as goes without
// waiting; then it waits on the target of the earliest value left (queued when p is set), as
// a sequence of single writes would. True when the write is complete (waiter.outcome says
// how), false when it waits.
bool OutPort::step_all(WriteAllAwaiter& w, ProcessState* p) {
    const std::size_t n = targets_.size();
    const bool broadcast = deliver_ == Deliver::Broadcast;
    auto left = [&](std::size_t t) { return bucket_done_[t] < buckets_[t].size(); };
    auto finish = [&](Outcome o) {
        w.waiter.outcome = o;
        for (auto& b : buckets_) b.clear();
        for (auto& b : bucket_order_) b.clear();
        return true;
    };
    // A retired reader's values go to the next live one (docs/semantics.md); a broadcast skips it.
    auto reroute = [&](std::size_t t) {
        std::size_t next = n;
        for (std::size_t k = 1; k < n && !broadcast; ++k)
            if (!target_ended_[(t + k) % n]) {
                next = (t + k) % n;
                break;
            }
        if (next != n) {
            for (std::size_t i = bucket_done_[t]; i < buckets_[t].size(); ++i) {
                buckets_[next].push_back(std::move(buckets_[t][i]));
                bucket_order_[next].push_back(bucket_order_[t][i]);
            }
        }
        bucket_done_[t] = buckets_[t].size();
    };
    for (;;) {
        // Everything that goes without waiting.
        for (std::size_t t = 0; t < n; ++t) {
            while (left(t) && target_ended_[t]) reroute(t);
            if (!left(t)) continue;
            w.waiter.process = nullptr;
            const Outcome o = targets_[t]->write_many(buckets_[t].data() + bucket_done_[t],
                                                      buckets_[t].size() - bucket_done_[t],
                                                      bucket_done_[t], w.waiter);
            if (o == Outcome::PoisonedOutcome) return finish(Outcome::PoisonedOutcome);
            if (o == Outcome::Ended) {
                target_ended_[t] = true;
                t = static_cast<std::size_t>(-1);  // start over: values may have moved
            }
        }
        // The earliest value left decides where to wait.
        std::size_t wait_on = n;
        for (std::size_t t = 0; t < n; ++t)
            if (left(t) && (wait_on == n || bucket_order_[t][bucket_done_[t]] <
                                                bucket_order_[wait_on][bucket_done_[wait_on]]))
                wait_on = t;
        if (wait_on == n) {
            const bool some_reader =
                std::find(target_ended_.begin(), target_ended_.end(), false) != target_ended_.end();
            return finish(some_reader ? Outcome::Done : Outcome::Ended);
        }
        if (!p) return false;
        w.target = wait_on;
        w.waiter.process = p;
        p->wait_channel = targets_[wait_on];
        // write_many counts what it placed before it queues: from then on this frame may
        // be resumed elsewhere, and nothing here may touch it.
        const Outcome o = targets_[wait_on]->write_many(
            buckets_[wait_on].data() + bucket_done_[wait_on],
            buckets_[wait_on].size() - bucket_done_[wait_on], bucket_done_[wait_on], w.waiter);
        if (o == Outcome::Pending) return false;  // queued: the frame is not ours any more
        if (o == Outcome::PoisonedOutcome) return finish(Outcome::PoisonedOutcome);
        if (o == Outcome::Ended) target_ended_[wait_on] = true;
    }
}

// Resumes a write_all after a reader took the value it waited with (or its target ended).
bool OutPort::continue_write_all(void* awaiter) {
    auto& w = *static_cast<WriteAllAwaiter*>(awaiter);
    OutPort& port = w.port;
    switch (w.waiter.outcome) {
        case Outcome::Done:
            ++port.bucket_done_[w.target];
            break;
        case Outcome::Ended:
            port.target_ended_[w.target] = true;
            break;
        default:
            for (auto& b : port.buckets_) b.clear();
            for (auto& b : port.bucket_order_) b.clear();
            return true;  // poisoned
    }
    return port.step_all(w, w.waiter.process);
}

bool OutPort::WriteAllAwaiter::await_ready() {
    waiter.prepare(nullptr, nullptr);
    waiter.outcome = Outcome::Done;
    count = values.size();
    if (values.empty()) return true;
    port.route_all(*this);
    return port.step_all(*this, nullptr);
}

bool OutPort::WriteAllAwaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    waiter.prepare(p, nullptr);
    p->begin_wait(WaitKind::Write);
    p->resume_hook = &OutPort::continue_write_all;
    p->resume_hook_arg = this;
    if (!port.step_all(*this, p)) return true;  // from here on the frame is not ours
    p->resume_hook = nullptr;
    p->cancel_wait();
    return false;
}

void OutPort::WriteAllAwaiter::await_resume() {
    end_write(waiter);
    port.writes_ += count;
}

bool OutPort::TryWriteAllAwaiter::await_resume() {
    if (waiter.outcome == Outcome::Ended) {
        if (waiter.process) waiter.process->wait = WaitKind::None;
        return false;
    }
    WriteAllAwaiter::await_resume();
    return true;
}

void OutPort::retire() {
    if (retired_) return;
    retired_ = true;
    for (auto* t : targets_) t->retire_writer();
}

void OutPort::poison() {
    retired_ = true;
    for (auto* t : targets_) t->poison();
}

// ---- Alternation --------------------------------------------------------------------------

Alternation::~Alternation() {
    delete state_;
}

std::size_t Alternation::add_input(InPort& in) {
    guards_.emplace_back();
    guards_.back().in = &in;
    return guards_.size() - 1;
}

std::size_t Alternation::add_output(OutPort& out, Value value) {
    if (out.targets().size() != 1)
        throw std::logic_error("an output guard needs a channel with deliver 'any'");
    guards_.emplace_back();
    guards_.back().out = &out;
    guards_.back().offered = std::move(value);
    return guards_.size() - 1;
}

void Alternation::offer(std::size_t index, Value value) {
    guards_.at(index).offered = std::move(value);
}
void Alternation::enable(std::size_t index, bool on) {
    guards_.at(index).enabled = on;
}

Channel* Alternation::channel_of(const Guard& g) noexcept {
    return g.in ? g.in->channel() : g.out->targets().front();
}

namespace {

// Locks the channels of an alternation in address order, so that two alternations over
// the same channels cannot deadlock each other.
class LockAll {
public:
    explicit LockAll(std::vector<Channel*> chans) : chans_(std::move(chans)) {
        std::sort(chans_.begin(), chans_.end());
        chans_.erase(std::unique(chans_.begin(), chans_.end()), chans_.end());
        for (auto* c : chans_) c->lock();
    }
    ~LockAll() { release(); }
    void release() {
        for (auto* c : chans_) c->unlock();
        chans_.clear();
    }

private:
    std::vector<Channel*> chans_;
};
}  // namespace

bool Alternation::try_select(SelectAwaiter& a, ProcessState* p) {
    std::vector<Channel*> chans;
    for (auto& g : guards_)
        if (g.enabled && !g.retired) chans.push_back(channel_of(g));
    LockAll locks(chans);
    const std::size_t n = guards_.size();
    const std::size_t start = (priority_ || n == 0) ? 0 : next_ % n;
    std::size_t live = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (start + k) % n;
        Guard& g = guards_[i];
        if (!g.enabled || g.retired) continue;
        ProcessState* woken = nullptr;
        g.waiter.alt = nullptr;
        g.waiter.process = nullptr;
        Outcome o;
        if (g.in && g.in->take_held(g.received)) {
            o = Outcome::Done;  // a batch taken by an earlier read() on this port
        } else if (g.in) {
            g.waiter.slot = &g.received;
            o = g.in->channel()->read_locked(g.waiter, woken);
        } else {
            g.waiter.slot = &g.offered;
            o = g.out->targets().front()->write_locked(g.waiter, woken);
        }
        switch (o) {
            case Outcome::Done:
                locks.release();
                if (woken) woken->runtime->scheduler().schedule(woken);
                a.result.kind = g.in ? AltResult::Read : AltResult::Written;
                a.result.index = i;
                if (g.in) a.result.value = std::move(g.received);
                next_ = i + 1;
                return true;
            case Outcome::Ended:
                g.retired = true;
                break;
            case Outcome::Pending:
                ++live;
                break;
            default:
                locks.release();
                throw Poisoned();
        }
    }
    if (live == 0) {
        a.result.kind = AltResult::End;
        return true;
    }
    if (skip_) {
        a.result.kind = AltResult::Skip;
        return true;
    }
    if (!p) return false;

    // Nothing ready: queue on every live guard, all channels still locked.
    if (!state_) state_ = new AltState();
    state_->chosen.store(AltState::kFree, std::memory_order_relaxed);
    state_->live_guards.store(static_cast<int>(live), std::memory_order_relaxed);
    state_->process = p;
    a.waited = true;
    p->begin_wait(WaitKind::Alt);
    p->alt_channels.clear();
    for (std::size_t i = 0; i < n; ++i) {
        Guard& g = guards_[i];
        if (!g.enabled || g.retired) continue;
        g.waiter.alt = state_;
        g.waiter.guard = static_cast<std::uint32_t>(i);
        g.waiter.process = p;
        g.waiter.outcome = Outcome::Pending;
        Channel* ch = channel_of(g);
        p->alt_channels.push_back(ch);
        if (g.in)
            ch->enqueue_reader_locked(g.waiter);
        else
            ch->enqueue_writer_locked(g.waiter);
    }
    if (timeout_)
        timer_ = p->runtime->scheduler().add_timer(*timeout_, p, state_, AltState::kTimeoutGuard);
    return false;  // the locks' release publishes the waiters
}

AltResult Alternation::finish_wait() {
    ProcessState* p = state_->process;
    p->wait = WaitKind::None;
    const std::int64_t chosen = state_->chosen.load(std::memory_order_acquire);
    for (auto& g : guards_) {
        if (!g.waiter.alt) continue;
        Channel* ch = channel_of(g);
        ch->lock();
        if (g.in)
            ch->unlink_reader_locked(g.waiter);
        else
            ch->unlink_writer_locked(g.waiter);
        ch->unlock();
        g.waiter.alt = nullptr;
        if (g.waiter.outcome == Outcome::Ended) g.retired = true;
    }
    // Only now: a short timeout can fire and resume us before try_select, still holding
    // the guards' channel locks, has stored timer_; taking those locks above orders that.
    if (timer_) {
        if (chosen != AltState::kTimeoutGuard) p->runtime->scheduler().cancel_timer(timer_);
        timer_ = 0;
    }
    AltResult r;
    if (chosen == AltState::kTimeoutGuard) {
        r.kind = AltResult::Timeout;
        return r;
    }
    if (chosen == AltState::kAllEndedGuard) {
        r.kind = AltResult::End;
        return r;
    }
    const auto i = static_cast<std::size_t>(chosen);
    Guard& g = guards_[i];
    if (g.waiter.outcome != Outcome::Done) throw Poisoned();
    r.kind = g.in ? AltResult::Read : AltResult::Written;
    r.index = i;
    if (g.in) r.value = std::move(g.received);
    next_ = i + 1;
    return r;
}

bool Alternation::SelectAwaiter::await_ready() {
    return alt.try_select(*this, nullptr);
}

bool Alternation::SelectAwaiter::await_suspend(std::coroutine_handle<>) {
    return !alt.try_select(*this, Scheduler::current());
}

AltResult Alternation::SelectAwaiter::await_resume() {
    if (!waited) return std::move(result);
    return alt.finish_wait();
}

// ---- sleep --------------------------------------------------------------------------------

void SleepAwaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    p->begin_wait(WaitKind::Sleep);
    p->runtime->scheduler().add_timer(duration_, p, nullptr, 0);
}

// The waiter is published before the state says a process waits (release); complete()
// takes the state (acquire) and so sees it. Whoever moves the state second acts: a wait that
// finds it done does not suspend, a complete() that finds a process waiting wakes it.
bool CompletionAwaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    p->begin_wait(WaitKind::Completion);
    Scheduler& sched = p->runtime->scheduler();
    sched.own_wait_begin();
    c_.waiter_ = p;
    int idle = Completion::kIdle;
    if (c_.state_.compare_exchange_strong(idle, Completion::kWaiting, std::memory_order_acq_rel))
        return true;
    sched.own_wait_end(nullptr);  // completed meanwhile: go on
    p->cancel_wait();
    return false;
}

void CompletionAwaiter::await_resume() const noexcept {
    if (ProcessState* p = Scheduler::current()) p->wait = WaitKind::None;
}

void Completion::complete() noexcept {
    if (state_.exchange(kDone, std::memory_order_acq_rel) != kWaiting) return;
    ProcessState* p = waiter_;
    p->runtime->scheduler().own_wait_end(p);
}

void SleepAwaiter::await_resume() const noexcept {
    if (ProcessState* p = Scheduler::current()) p->wait = WaitKind::None;
}

}  // namespace chanflow
