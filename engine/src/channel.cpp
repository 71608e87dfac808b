#include "channel.hpp"

#include <bit>
#include <mutex>

#include "process_state.hpp"
#include "scheduler.hpp"

namespace chanflow::detail {

// ---- WaitQueue ----------------------------------------------------------------------------

void WaitQueue::push(Waiter* w) noexcept {
    w->next = nullptr;
    w->prev = tail;
    if (tail)
        tail->next = w;
    else
        head = w;
    tail = w;
    w->linked = true;
}

void WaitQueue::unlink(Waiter* w) noexcept {
    if (!w->linked) return;
    if (w->prev)
        w->prev->next = w->next;
    else
        head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        tail = w->prev;
    w->prev = w->next = nullptr;
    w->linked = false;
}

// ---- Buffer -------------------------------------------------------------------------------

// Moves the unread values to the front instead of growing the vector.
void Buffer::compact() {
    std::move(items_.begin() + static_cast<std::ptrdiff_t>(head_), items_.end(), items_.begin());
    items_.resize(items_.size() - head_);
    head_ = 0;
}

// ---- Channel ------------------------------------------------------------------------------

Channel::Channel(std::string name, std::size_t capacity, int writers, int readers, Scheduler& sched)
    : capacity_(capacity),
      writers_alive_(writers),
      readers_alive_(readers),
      single_reader_(readers == 1),
      sched_(sched),
      name_(std::move(name)) {}

// Takes the first waiter that can still complete: a plain one, or an alternation's that we
// win the claim for. Stale alternation waiters (already claimed elsewhere) are skipped and
// left for their owner to unlink.
Waiter* Channel::take_waiter(WaitQueue& q) noexcept {
    for (Waiter* w = q.head; w; w = w->next) {
        if (w->alt && !w->alt->claim(w->guard)) continue;
        q.unlink(w);
        return w;
    }
    return nullptr;
}

static ProcessState* owner(const Waiter* w) noexcept {
    return w->alt ? w->alt->process : w->process;
}

Outcome Channel::read_locked(Waiter& w, ProcessState*& woken) {
    if (poisoned_.load(std::memory_order_relaxed)) return PoisonedOutcome;
    if (!buffer_.empty()) {
        *w.slot = buffer_.pop();
        ++stats_.reads;
        if (Waiter* wr = writers_.head ? take_waiter(writers_) : nullptr) {  // room now
            buffer_.push(std::move(*wr->slot));
            ++stats_.writes;
            wr->outcome = Done;
            woken = owner(wr);
        }
        return Done;
    }
    if (Waiter* wr = writers_.head ? take_waiter(writers_) : nullptr) {  // rendezvous
        *w.slot = std::move(*wr->slot);
        ++stats_.writes;
        ++stats_.reads;
        wr->outcome = Done;
        woken = owner(wr);
        return Done;
    }
    if (writers_alive_ == 0) return Ended;
    return Pending;
}

Outcome Channel::write_locked(Waiter& w, ProcessState*& woken) {
    if (poisoned_.load(std::memory_order_relaxed)) return PoisonedOutcome;
    if (readers_alive_ == 0) return Ended;
    if (readers_.head && sink_ && sink_->take(w.slot, 1)) {  // the bridge waits: sent now
        ++stats_.writes;
        ++stats_.reads;
        return Done;
    }
    if (Waiter* rd = readers_.head ? take_waiter(readers_) : nullptr) {  // buffer empty
        *rd->slot = std::move(*w.slot);
        ++stats_.writes;
        ++stats_.reads;
        rd->outcome = Done;
        woken = owner(rd);
        return Done;
    }
    if (buffer_.size() < capacity_) {
        buffer_.push(std::move(*w.slot));
        ++stats_.writes;
        if (buffer_.size() > stats_.peak) stats_.peak = buffer_.size();
        return Done;
    }
    return Pending;
}

// One locked attempt; a caller with a process queues there when it cannot complete now.
template <bool kRead>
Outcome Channel::attempt(Waiter& w) {
    ProcessState* woken = nullptr;
    lock_.lock();
    const Outcome o = kRead ? read_locked(w, woken) : write_locked(w, woken);
    if (o == Pending && w.process) {
        w.outcome = Pending;
        (kRead ? readers_ : writers_).push(&w);
    }
    lock_.unlock();
    if (woken) sched_.schedule(woken);
    return o;
}

Outcome Channel::read(Waiter& w) {
    return attempt<true>(w);
}
Outcome Channel::write(Waiter& w) {
    return attempt<false>(w);
}

Outcome Channel::write_many(Value* values, std::size_t count, std::size_t& placed, Waiter& w) {
    ProcessState* woken[8];
    std::size_t n_woken = 0;
    std::vector<ProcessState*> more_woken;  // beyond 8 waiting readers (rare)
    Outcome o = Done;
    std::size_t i = 0;
    lock_.lock();
    if (poisoned_.load(std::memory_order_relaxed)) {
        o = PoisonedOutcome;
    } else if (readers_alive_ == 0) {
        o = Ended;
    } else {
        if (readers_.head && sink_ && sink_->take(values, count)) {  // the bridge waits
            stats_.reads += count;
            i = count;
        }
        for (; i < count; ++i) {
            if (readers_.head) {
                if (Waiter* rd = take_waiter(readers_)) {  // the buffer is empty
                    *rd->slot = std::move(values[i]);
                    ++stats_.reads;
                    rd->outcome = Done;
                    if (n_woken < 8)
                        woken[n_woken++] = owner(rd);
                    else
                        more_woken.push_back(owner(rd));
                    continue;
                }
            }
            if (buffer_.size() >= capacity_) break;
            buffer_.push(std::move(values[i]));
        }
        stats_.writes += i;
        if (buffer_.size() > stats_.peak) stats_.peak = buffer_.size();
        // Counted before the waiter is queued: from then on the writer may run elsewhere.
        placed += i;
        if (i < count) {
            o = Pending;
            if (w.process) {
                w.slot = &values[i];
                w.outcome = Pending;
                writers_.push(&w);
            }
        }
    }
    lock_.unlock();
    for (std::size_t k = 0; k < n_woken; ++k) sched_.schedule(woken[k]);
    for (ProcessState* p : more_woken) sched_.schedule(p);
    return o;
}

Outcome Channel::read_batch(Waiter& w, std::vector<Value>& batch, std::size_t& batch_pos) {
    lock_.lock();
    if (buffer_.empty() || poisoned_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        return read(w);  // nothing to batch: the plain read (and its queueing) applies
    }
    *w.slot = buffer_.pop();
    const std::size_t rest = buffer_.size();
    if (rest) buffer_.take_all(batch, batch_pos);
    stats_.reads += 1 + rest;
    // The buffer is empty now: let blocked writers in, in their order.
    ProcessState* woken[8];
    std::size_t n_woken = 0;
    while (n_woken < 8 && buffer_.size() < capacity_) {
        Waiter* wr = take_waiter(writers_);
        if (!wr) break;
        buffer_.push(std::move(*wr->slot));
        ++stats_.writes;
        wr->outcome = Done;
        woken[n_woken++] = owner(wr);
    }
    lock_.unlock();
    for (std::size_t i = 0; i < n_woken; ++i) sched_.schedule(woken[i]);
    return Done;
}

void Channel::push_mark(OrderMark m) {
    ProcessState* woken = nullptr;
    lock_.lock();
    if (!poisoned_.load(std::memory_order_relaxed) && readers_alive_ > 0) {
        if (Waiter* rd = readers_.head ? take_waiter(readers_) : nullptr) {  // buffer empty
            *rd->slot = order_mark(m);
            rd->outcome = Done;
            woken = owner(rd);
        } else {
            buffer_.push(order_mark(m));
        }
    }
    lock_.unlock();
    if (woken) sched_.schedule(woken);
}

// Ends every waiter of a queue. A plain waiter wakes with `outcome`. An alternation's
// guard that ends by retirement just drops out of its choice; the alternation wakes (End)
// only when its last guard is gone. Poison fails the whole alternation.
void Channel::end_waiters(WaitQueue& q, Outcome outcome,
                          std::vector<ProcessState*>& wake) noexcept {
    while (Waiter* w = q.head) {
        q.unlink(w);
        if (!w->alt) {
            w->outcome = outcome;
            wake.push_back(w->process);
            continue;
        }
        if (outcome == PoisonedOutcome) {
            if (w->alt->claim(w->guard)) {
                w->outcome = PoisonedOutcome;
                wake.push_back(w->alt->process);
            }
            continue;
        }
        w->outcome = Ended;
        if (w->alt->live_guards.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
            w->alt->claim(AltState::kAllEndedGuard))
            wake.push_back(w->alt->process);
    }
}

void Channel::wake(const std::vector<ProcessState*>& ps) {
    for (auto* p : ps) sched_.schedule(p);
}

void Channel::retire_writer() {
    std::vector<ProcessState*> wake_list;
    {
        std::lock_guard guard(lock_);
        if (writers_alive_ > 0 && --writers_alive_ == 0 && buffer_.empty())
            end_waiters(readers_, Ended, wake_list);
    }
    wake(wake_list);
}

void Channel::retire_reader() {
    std::vector<ProcessState*> wake_list;
    {
        std::lock_guard guard(lock_);
        if (readers_alive_ > 0 && --readers_alive_ == 0) {
            buffer_.clear();  // nobody will ever read these (docs/semantics.md: every reader chose
                              // to stop)
            end_waiters(writers_, Ended, wake_list);
        }
    }
    wake(wake_list);
}

void Channel::poison() {
    std::vector<ProcessState*> wake_list;
    {
        std::lock_guard guard(lock_);
        if (poisoned_.load(std::memory_order_relaxed)) return;
        poisoned_.store(true, std::memory_order_relaxed);
        buffer_.clear();  // poison is immediate: buffered messages are not delivered
        end_waiters(readers_, PoisonedOutcome, wake_list);
        end_waiters(writers_, PoisonedOutcome, wake_list);
    }
    wake(wake_list);
}

}  // namespace chanflow::detail
