// mpi_hub.cpp — see mpi_hub.hpp.
#include "mpi_hub.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>

#include "process_state.hpp"
#include "scheduler.hpp"
#include "spinlock.hpp"

namespace chanflow::detail {
namespace {

constexpr std::uint32_t kReaderGone = 0xffffffffu;  // a credit message that says "stop"
constexpr auto kDeadlockCheck = std::chrono::milliseconds(100);
// MPI_Test calls a poll makes on its likeliest slot while nothing arrives (see poll_locked):
// in one mpirun against four Testsome calls a poll, 8 made the ping-pong's round trip 5-13%
// shorter and 16 another 5%; 32 and 64 no shorter than 16.
constexpr int kHotTests = 16;
// How long the progress thread leaves the polling to the workers at most: the run's ticker
// wakes it a tick after they stopped polling, and a worker that parks at once; this is for a
// hub that runs without a ticker.
constexpr auto kStepBack = std::chrono::milliseconds(100);

void put_u64(Bytes& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
std::uint64_t get_u64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

int checked_count(std::size_t n) {
    if (n > static_cast<std::size_t>(INT_MAX))
        throw std::runtime_error("a message of " + std::to_string(n) +
                                 " bytes is larger than MPI sends at once (2 GiB)");
    return static_cast<int>(n);
}

}  // namespace

MpiHub::MpiHub(MPI_Comm comm, int rank, int size, const std::vector<Bridge>& bridges)
    : comm_(comm), rank_(rank), size_(size), send_(bridges.size()), receive_(bridges.size()) {
    for (std::size_t b = 0; b < bridges.size(); ++b) {
        if (bridges[b].from == rank) {
            send_[b].to = bridges[b].to;
            send_[b].credits = kWindow;
        }
        if (bridges[b].to == rank) receive_[b].from = bridges[b].from;
    }
    if (rank_ == 0) ranks_.resize(static_cast<std::size_t>(size_));
    next_check_ = std::chrono::steady_clock::now() + kDeadlockCheck;
}

MpiHub::~MpiHub() {
    {
        std::lock_guard lock(sleep_mu_);
        stop_ = true;
    }
    sleep_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void MpiHub::watch_silence(std::chrono::milliseconds after,
                           std::function<void(const std::string&)> notice) {
    silence_ = after;
    notice_ = std::move(notice);
}

void MpiHub::start(Scheduler& sched) {
    sched_ = &sched;
    {
        std::lock_guard lock(mu_);
        const auto now = std::chrono::steady_clock::now();
        last_heard_.assign(static_cast<std::size_t>(size_), now);
        silent_.assign(static_cast<std::size_t>(size_), false);
        next_alive_ = now;
        for (std::size_t b = 0; b < send_.size(); ++b) {
            if (send_[b].to >= 0) slots_.push_back({.bridge = b, .credit = true});
            if (receive_[b].from >= 0) slots_.push_back({.bridge = b, .credit = false});
        }
        for (Slot& slot : slots_) post_receive(slot);
    }
    thread_ = std::thread([this] { progress_loop(); });
}

// ---- senders -------------------------------------------------------------------------------

void MpiHub::post(int to, int tag, Bytes bytes, Value keep) {
    post_bytes(to, tag, bytes, std::move(keep));
}

// A small send is usually over as soon as it is posted (MPI copied it): then the caller
// keeps its buffer, and the send is not tracked. Otherwise `bytes` (and `keep`) stay with
// the send until it completes, and `bytes` is left empty.
bool MpiHub::post_bytes(int to, int tag, Bytes& bytes, Value keep) {
    const void* data = bytes.data();
    int count = checked_count(bytes.size());
    if (keep.is_tensor()) {  // the elements, from the tensor's own memory
        data = keep.as_tensor().data.data();
        count = checked_count(keep.as_tensor().data.size());
    }
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Isend(data, count, MPI_BYTE, to, tag, comm_, &request);
    if (!keep.is_tensor() && bytes.size() <= kDirectBytes) {
        int done = 0;
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (done) return true;
    }
    outgoing_.push_back({request, std::move(bytes), std::move(keep)});
    bytes.clear();
    return false;
}

// Whether bridge b may send a frame now; if so, takes one credit for it.
MpiHub::Sent MpiHub::take_credit_locked(std::size_t b) {
    SendSide& s = send_[b];
    if (aborted_) return Sent::Aborted;
    if (s.gone) return Sent::Gone;
    if (s.credits == 0) return Sent::Full;
    --s.credits;
    return Sent::Ok;
}

MpiHub::Sent MpiHub::try_send(std::size_t b, Bytes& frame) {
    std::lock_guard lock(mu_);
    return try_send_locked(b, frame);
}

MpiHub::Sent MpiHub::try_send_locked(std::size_t b, Bytes& frame) {
    if (const Sent s = take_credit_locked(b); s != Sent::Ok) return s;
    const int tag = kFirstBridgeTag + 2 * static_cast<int>(b);
    if (frame.size() > kReceiveBytes) {  // more than the receive kept posted takes: announce it
        Bytes announce{kFrameLarge};
        put_u64(announce, frame.size());
        post(send_[b].to, tag, std::move(announce));
        ++sent_;
    }
    ++sent_;
    if (!post_bytes(send_[b].to, tag, frame) && !spare_.empty()) {
        frame = std::move(spare_.back());  // a used buffer for the caller: no allocation
        spare_.pop_back();
    }
    frame.clear();
    return Sent::Ok;
}

MpiHub::Sent MpiHub::try_send_tensor(std::size_t b, const Value& tensor) {
    Bytes header{kFrameTensor};
    encode_tensor_header(tensor.as_tensor(), header);
    std::lock_guard lock(mu_);
    if (const Sent s = take_credit_locked(b); s != Sent::Ok) return s;
    const int tag = kFirstBridgeTag + 2 * static_cast<int>(b);
    post(send_[b].to, tag, std::move(header));
    post(send_[b].to, tag, {}, tensor);
    sent_ += 2;
    return Sent::Ok;
}

void MpiHub::send_directly(std::size_t b, Channel& from) {
    from.set_sink(&direct_sends_.emplace_back(*this, b));
}

bool MpiHub::DirectSend::take(const Value* values, std::size_t n) noexcept {
    try {
        frame_.assign(1, kFrameData);
        for (std::size_t i = 0; i < n; ++i) {
            const Value& v = values[i];
            if (v.is_tensor() && v.as_tensor().data.size() >= kTensorOutOfLine) return false;
            encode(v, frame_);
            if (frame_.size() > kFrameTarget) return false;  // large batches: the bridge's way
        }
        // Not waiting long for the hub under the channel's lock (a poll may hold the hub
        // while a large arrival is copied): if it stays busy, the bridge sends.
        std::unique_lock lock(hub_.mu_, std::defer_lock);
        for (int i = 0; i < 256 && !lock.try_lock(); ++i) CHANFLOW_CPU_RELAX();
        return lock.owns_lock() && hub_.try_send_locked(b_, frame_) == Sent::Ok;
    } catch (...) {  // the bridge will meet it again and say what it was
        return false;
    }
}

void MpiHub::close(std::size_t b) {
    std::lock_guard lock(mu_);
    if (aborted_ || send_[b].gone) return;
    post(send_[b].to, kFirstBridgeTag + 2 * static_cast<int>(b), Bytes{kFrameEnd});
    ++sent_;
}

// ---- receivers -----------------------------------------------------------------------------

MpiHub::Took MpiHub::try_take(std::size_t b, Arrival& a) {
    std::lock_guard lock(mu_);
    ReceiveSide& r = receive_[b];
    if (aborted_) return Took::Aborted;
    if (r.inbox.empty()) return r.ended ? Took::Closed : Took::Empty;
    Arrival& front = r.inbox.front();
    std::swap(a.frame, front.frame);  // the caller's last buffer comes back for reuse
    a.size = front.size;
    a.tensor = std::move(front.tensor);
    a.values = std::move(front.values);
    if (front.frame.size() == kReceiveBytes && spare_receive_.size() < 64)
        spare_receive_.push_back(std::move(front.frame));
    r.inbox.pop_front();
    frame_taken_locked(b, false);
    return Took::Ok;
}

// Credit goes back in batches: half a window at a time. `later`: the frame was delivered by
// a poll, which woke its reader; the next poll sends the credit, after the reader answered.
void MpiHub::frame_taken_locked(std::size_t b, bool later) {
    ReceiveSide& r = receive_[b];
    if (++r.consumed < kWindow / 2) return;
    if (!later)
        send_credit_locked(b);
    else if (r.consumed == kWindow / 2)  // due once per batch
        credit_due_.push_back(b);
}

void MpiHub::send_credit_locked(std::size_t b) {
    ReceiveSide& r = receive_[b];
    if (r.consumed == 0) return;  // sent already
    Bytes credit(4);
    std::memcpy(credit.data(), &r.consumed, 4);
    post(r.from, kFirstBridgeTag + 2 * static_cast<int>(b) + 1, std::move(credit));
    ++sent_;
    r.consumed = 0;
}

void MpiHub::deliver_directly(std::size_t b, Channel& into) {
    std::lock_guard lock(mu_);
    receive_[b].direct = &into;
}

// A data frame came for bridge b while its receiver waits with nothing in its inbox: the
// values go into the channel as far as it takes them now (to readers waiting, into its
// buffer), under the hub's lock, so nothing that comes later on the bridge overtakes them.
// What it does not take goes to the receiver as values. False when the frame does not
// decode: the receiver takes it as it came and names the fault.
bool MpiHub::deliver_direct_locked(std::size_t b, const Bytes& frame, std::size_t n,
                                   std::vector<ProcessState*>& wake) {
    ReceiveSide& r = receive_[b];
    direct_values_.clear();
    try {
        Decoder d(frame.data() + 1, n - 1);
        while (!d.done()) direct_values_.push_back(d.next());
    } catch (const CodecError&) {
        return false;
    }
    Waiter w{};  // no process: write_many places what it can and never queues
    std::size_t placed = 0;
    r.direct->write_many(direct_values_.data(), direct_values_.size(), placed, w);
    delivered_ |= placed > 0;  // a reader may have been woken
    if (placed == direct_values_.size()) {
        frame_taken_locked(b, true);
        return true;
    }
    Arrival rest;  // counted as taken when the receiver takes it
    rest.values.assign(
        std::make_move_iterator(direct_values_.begin() + static_cast<std::ptrdiff_t>(placed)),
        std::make_move_iterator(direct_values_.end()));
    r.inbox.push_back(std::move(rest));
    take_waiter(r.waiting, wake);
    return true;
}

void MpiHub::reader_gone(std::size_t b) {
    std::lock_guard lock(mu_);
    ReceiveSide& r = receive_[b];
    r.gone = true;
    r.inbox.clear();
    if (aborted_ || r.ended) return;
    Bytes stop(4);
    std::memcpy(stop.data(), &kReaderGone, 4);
    post(r.from, kFirstBridgeTag + 2 * static_cast<int>(b) + 1, std::move(stop));
    ++sent_;
}

// ---- waiting -------------------------------------------------------------------------------

bool MpiHub::Awaiter::await_suspend(std::coroutine_handle<>) {
    ProcessState* p = Scheduler::current();
    std::lock_guard lock(hub.mu_);
    if (hub.aborted_) return false;
    ProcessState** slot;
    if (room) {
        SendSide& s = hub.send_[b];
        if (s.credits > 0 || s.gone) return false;
        slot = &s.waiting;
    } else {
        ReceiveSide& r = hub.receive_[b];
        if (!r.inbox.empty() || r.ended) return false;
        slot = &r.waiting;
    }
    p->begin_wait(WaitKind::Sleep);  // neither a read nor a write of a channel
    hub.sched_->external_wait_begin();
    suspended = true;
    *slot = p;  // a waker needs the lock: nothing touches this frame after it is released
    return true;
}

void MpiHub::Awaiter::await_resume() const noexcept {
    if (suspended) Scheduler::current()->wait = WaitKind::None;
}

void MpiHub::take_waiter(ProcessState*& slot, std::vector<ProcessState*>& wake) {
    if (!slot) return;
    wake.push_back(slot);
    slot = nullptr;
}

void MpiHub::wake_all(std::vector<ProcessState*>& wake) {
    for (ProcessState* p : wake) {
        sched_->schedule(p);
        sched_->external_wait_end();
    }
    wake.clear();
}

// ---- progress ------------------------------------------------------------------------------

bool MpiHub::poll() {
    // Only a sign that workers poll: no locked add on this hot path (a lost count between
    // two workers is no matter).
    worker_polls_.store(worker_polls_.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
    std::vector<ProcessState*> wake;
    bool delivered = false, touch = false;
    {
        std::unique_lock lock(mu_, std::try_to_lock);
        if (!lock.owns_lock() || !sched_) return false;
        poll_locked(wake, false);
        delivered = std::exchange(delivered_, false);
        touch = touch_due_.load(std::memory_order_relaxed) && touch_due_.exchange(false);
    }
    const bool woke = !wake.empty() || delivered;
    wake_all(wake);
    if (touch) keep_in_touch();  // the progress thread sleeps: this worker's turn
    return woke;
}

void MpiHub::keep_in_touch() {
    std::vector<ProcessState*> wake;
    std::vector<std::string> notices;
    {
        std::lock_guard lock(mu_);
        keep_in_touch_locked(wake);
        notices.swap(notices_);
    }
    wake_all(wake);
    hand_on(notices);
}

void MpiHub::tick() {
    const std::uint64_t polls = worker_polls_.load(std::memory_order_relaxed);
    const bool polling = polls != ticked_polls_;
    ticked_polls_ = polls;
    if (polling)
        touch_due_.store(true, std::memory_order_relaxed);
    else if (stepped_back_.load())  // the workers run processes: the progress thread polls
        kick();
}

void MpiHub::hand_on(std::vector<std::string>& notices) {
    for (const std::string& n : notices)
        if (notice_) notice_(n);
    notices.clear();
}

bool MpiHub::poll_locked(std::vector<ProcessState*>& wake, bool control) {
    bool did = false;
    // The receives that completed last time are posted again now, not then: a process woken
    // by an arrival answers it first (a ping-pong's reply leaves before the re-post).
    for (Slot* slot : repost_) post_receive(*slot);
    repost_.clear();
    if (!finishing_)  // (at the end every process here ended: no sender waits for credit)
        for (std::size_t b : credit_due_) send_credit_locked(b);
    credit_due_.clear();
    // One test of everything in flight: the receives kept posted, then the sends.
    requests_.clear();
    for (const Slot& slot : slots_) requests_.push_back(slot.request);
    for (const Outgoing& o : outgoing_) requests_.push_back(o.request);
    if (completed_.size() < requests_.size()) {  // grown, never shrunk: no clearing per poll
        completed_.resize(requests_.size());
        statuses_.resize(requests_.size());
    }
    // MPI_Testsome looks at the requests, and only when none is complete makes progress
    // (which may complete some) and returns without looking again: what its progress brought
    // is seen by the next call. MPI_Test looks again after its progress. So a poll tests
    // everything once and then, while nothing completed, the slot that took the last frame
    // (the likeliest to take the next) up to kHotTests times: its arrival is seen by the call
    // whose progress brought it, and the poll spends its time in MPI's progress rather than
    // around it. Without a slot that took a frame yet, up to four Testsome calls.
    const bool hot = hot_ < slots_.size();
    int n = 0;
    for (int round = 0; round < (hot ? 1 : 4) && n == 0 && !requests_.empty(); ++round)
        MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &n, completed_.data(),
                     statuses_.data());
    for (int round = 1;
         hot && round < kHotTests && n == 0 && slots_[hot_].request != MPI_REQUEST_NULL; ++round) {
        int flag = 0;
        MPI_Test(&slots_[hot_].request, &flag, &statuses_[0]);
        if (flag) {
            completed_[0] = static_cast<int>(hot_);
            n = 1;
        }
    }
    if (n > 0 && n != MPI_UNDEFINED) {
        did = true;
        bool sends_done = false;
        for (int i = 0; i < n; ++i) {
            const auto at = static_cast<std::size_t>(completed_[static_cast<std::size_t>(i)]);
            if (at < slots_.size()) {
                slots_[at].request = MPI_REQUEST_NULL;
                if (!slots_[at].credit) hot_ = at;
                arrived(slots_[at], statuses_[static_cast<std::size_t>(i)], wake);
            } else {
                outgoing_[at - slots_.size()].request = MPI_REQUEST_NULL;
                sends_done = true;
            }
        }
        if (sends_done)
            std::erase_if(outgoing_, [this](Outgoing& o) {
                if (o.request != MPI_REQUEST_NULL) return false;
                if (o.bytes.capacity() > 0 && spare_.size() < 64)
                    spare_.push_back(std::move(o.bytes));
                return true;
            });
    }
    // Control messages are rare and sized as they come: probed for by the progress thread,
    // and by a worker's every 128th poll (a probe costs a third of a poll; at every 16th,
    // the ping-pong took 9% longer).
    if (control || ++polls_ % 128 == 0)
        for (int i = 0; i < 64; ++i) {
            int flag = 0;
            MPI_Message msg;
            MPI_Status st;
            MPI_Improbe(MPI_ANY_SOURCE, kControlTag, comm_, &flag, &msg, &st);
            if (!flag) break;
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            Bytes bytes(static_cast<std::size_t>(count));
            MPI_Mrecv(bytes.data(), count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
            if (!bytes.empty())
                receive_control(bytes[0], st.MPI_SOURCE, Bytes(bytes.begin() + 1, bytes.end()),
                                wake);
            did = true;
        }
    return did;
}

void MpiHub::post_receive(Slot& slot) {
    const int tag = kFirstBridgeTag + 2 * static_cast<int>(slot.bridge) + (slot.credit ? 1 : 0);
    const int from = slot.credit ? send_[slot.bridge].to : receive_[slot.bridge].from;
    void* into = nullptr;
    std::size_t count = 0;
    if (slot.credit) {
        into = &slot.credit_value;
        count = 4;
    } else if (slot.into == Slot::Into::Frame) {
        if (slot.buffer.size() != kReceiveBytes) {
            if (!spare_receive_.empty()) {
                slot.buffer = std::move(spare_receive_.back());
                spare_receive_.pop_back();
            } else {
                slot.buffer.resize(kReceiveBytes);
            }
        }
        into = slot.buffer.data();
        count = kReceiveBytes;
    } else if (slot.into == Slot::Into::Large) {
        into = slot.buffer.data();
        count = slot.expected;
    } else {
        into = slot.tensor.data.data();
        count = slot.expected;
    }
    MPI_Irecv(into, checked_count(count), MPI_BYTE, from, tag, comm_, &slot.request);
}

// A posted receive completed: what came is delivered, and the receive is to be posted again
// for what comes next on its tag (a large frame's or a tensor's bytes, else any frame).
void MpiHub::arrived(Slot& slot, const MPI_Status& st, std::vector<ProcessState*>& wake) {
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    const auto n = static_cast<std::size_t>(count);
    ++received_;
    if (slot.credit) {
        SendSide& s = send_[slot.bridge];
        if (slot.credit_value == kReaderGone)
            s.gone = true;
        else
            s.credits += static_cast<int>(slot.credit_value);
        take_waiter(s.waiting, wake);
        repost_.push_back(&slot);
        return;
    }
    ReceiveSide& r = receive_[slot.bridge];
    const bool wanted = !r.gone && !aborted_;
    auto deliver = [&](Arrival a) {
        if (!wanted) return;
        r.inbox.push_back(std::move(a));
        take_waiter(r.waiting, wake);
    };
    switch (slot.into) {
        case Slot::Into::Tensor: {
            slot.into = Slot::Into::Frame;
            deliver({{}, 0, Value(std::move(slot.tensor))});
            slot.tensor = {};
            break;
        }
        case Slot::Into::Large:
            slot.into = Slot::Into::Frame;
            deliver({std::move(slot.buffer), n, {}});
            slot.buffer.clear();
            break;
        case Slot::Into::Frame: {
            const unsigned char kind = n > 0 ? slot.buffer[0] : 0;
            if (kind == kFrameEnd) {  // nothing more comes on this tag
                r.ended = true;
                take_waiter(r.waiting, wake);
                return;
            }
            if (kind == kFrameLarge && n == 9) {  // the next message is a frame this large
                std::uint64_t size = get_u64(slot.buffer.data() + 1);
                if (spare_receive_.size() < 64) spare_receive_.push_back(std::move(slot.buffer));
                slot.buffer = Bytes(size);
                slot.expected = size;
                slot.into = Slot::Into::Large;
                break;
            }
            if (kind == kFrameTensor) {  // the next message is this tensor's elements
                try {
                    Decoder d(slot.buffer.data() + 1, n - 1);
                    slot.tensor = d.tensor_header(slot.expected);
                    slot.tensor.data.resize(slot.expected);
                    slot.into = Slot::Into::Tensor;
                    break;
                } catch (const CodecError&) {
                    // Handed on as it came: the receiver names the channel and the rank.
                }
            }
            if (wanted && kind == kFrameData && n <= kDirectBytes && r.direct && r.waiting &&
                r.inbox.empty() && deliver_direct_locked(slot.bridge, slot.buffer, n, wake))
                break;  // the receive is posted again into the same buffer
            Bytes frame = std::move(slot.buffer);
            slot.buffer.clear();
            deliver({std::move(frame), n, {}});
            break;
        }
    }
    if (slot.into == Slot::Into::Frame)
        repost_.push_back(&slot);
    else  // a large frame's or a tensor's bytes follow at once: the sender waits for this
        post_receive(slot);
}

// ---- faults, deadlock and the end ----------------------------------------------------------

void MpiHub::abort_locked(const std::string& message, std::vector<ProcessState*>& wake) {
    if (failure_.empty()) failure_ = message;
    aborted_ = true;
    for (SendSide& s : send_) take_waiter(s.waiting, wake);
    for (ReceiveSide& r : receive_) take_waiter(r.waiting, wake);
}

void MpiHub::fail(const std::string& message) {
    std::vector<ProcessState*> wake;
    {
        std::lock_guard lock(mu_);
        if (aborted_) return;  // another rank's failure came first: it is the run's
        for (int r = 0; r < size_; ++r)
            if (r != rank_) post_control(r, kAbort, Bytes(message.begin(), message.end()));
        abort_locked(message, wake);
    }
    wake_all(wake);
}

std::string MpiHub::failure() const {
    std::lock_guard lock(mu_);
    return failure_;
}

std::string MpiHub::deadlock_report() const {
    std::lock_guard lock(mu_);
    return deadlock_report_;
}

// A sample as a value of the codec: [messages, [name, unit, done, total]...].
void MpiHub::set_progress(const Progress& p) {
    List sources;
    for (const SourceProgress& src : p.sources)
        sources.push_back(Value(List{Value(std::string_view(src.name)),
                                     Value(static_cast<std::int64_t>(src.unit)),
                                     Value(static_cast<std::int64_t>(src.done)),
                                     Value(static_cast<std::int64_t>(src.total))}));
    Bytes bytes;
    encode(Value(List{Value(static_cast<std::int64_t>(p.messages)), Value(std::move(sources))}),
           bytes);
    std::lock_guard lock(progress_mu_);
    if (rank_ == 0) {
        if (progress_in_.empty()) progress_in_.resize(static_cast<std::size_t>(size_));
        progress_in_[0] = p;
    } else {
        progress_out_ = std::move(bytes);
    }
}

Progress MpiHub::progress_of_all(const Progress& own) const {
    Progress all = own;
    std::lock_guard lock(progress_mu_);
    for (std::size_t r = 1; r < progress_in_.size(); ++r) {
        const Progress& p = progress_in_[r];
        all.messages += p.messages;
        for (const SourceProgress& src : p.sources) {
            auto it = std::find_if(all.sources.begin(), all.sources.end(),
                                   [&](const SourceProgress& s) { return s.name == src.name; });
            if (it == all.sources.end()) {
                all.sources.push_back(src);
            } else {
                it->done += src.done;
                it->total += src.total;
            }
        }
    }
    return all;
}

void MpiHub::set_quiet(std::string report) {
    std::lock_guard lock(quiet_mu_);
    quiet_report_ = std::move(report);
}

void MpiHub::post_control(int to, int type, Bytes payload) {
    payload.insert(payload.begin(), static_cast<unsigned char>(type));
    post(to, kControlTag, std::move(payload));
}

void MpiHub::receive_control(int tag, int source, const Bytes& bytes,
                             std::vector<ProcessState*>& wake) {
    if (rank_ == 0 && source > 0 && source < size_) {  // any word says the rank is alive
        const auto r = static_cast<std::size_t>(source);
        last_heard_[r] = std::chrono::steady_clock::now();
        if (silent_[r]) {
            silent_[r] = false;
            notices_.push_back("rank " + std::to_string(source) + " answers again");
        }
    }
    switch (tag) {
        case kAbort:
            abort_locked(std::string(bytes.begin(), bytes.end()), wake);
            return;
        case kVerdict:
            deadlocked_ = true;
            abort_locked("", wake);
            return;
        case kProgress: {
            if (rank_ != 0 || source <= 0 || source >= size_) return;
            Progress p;
            try {
                Decoder d(bytes.data(), bytes.size());
                const Value v = d.next();
                p.messages = static_cast<std::uint64_t>(v.as_list().at(0).as_int());
                for (const Value& src : v.as_list().at(1).as_list()) {
                    const List& f = src.as_list();
                    p.sources.push_back(
                        {std::string(f.at(0).as_string()),
                         f.at(1).as_int() ? ProgressUnit::Bytes : ProgressUnit::Items,
                         static_cast<std::uint64_t>(f.at(2).as_int()),
                         static_cast<std::uint64_t>(f.at(3).as_int())});
                }
            } catch (const std::exception&) {
                return;  // a sample that cannot be read is only a sample lost
            }
            std::lock_guard lock(progress_mu_);
            if (progress_in_.empty()) progress_in_.resize(static_cast<std::size_t>(size_));
            progress_in_[static_cast<std::size_t>(source)] = std::move(p);
            return;
        }
        case kQuiet:
        case kBusy:
        case kDone: {
            if (rank_ != 0 || bytes.size() < 16) return;
            RankState& s = ranks_[static_cast<std::size_t>(source)];
            s.quiet = tag == kQuiet;
            s.done = tag == kDone;
            s.sent = get_u64(bytes.data());
            s.received = get_u64(bytes.data() + 8);
            s.report.assign(bytes.begin() + 16, bytes.end());
            ++s.seq;
            return;
        }
        default:
            return;
    }
}

// Tells rank 0 when this rank's state changed: quiet (and what its processes wait on),
// busy again, or done; each with how many bridge messages it sent and took in.
void MpiHub::report_state_locked() {
    // The scheduler knows whether this rank is quiet now; what its processes wait on it
    // said when it became so.
    const bool quiet = !finishing_ && sched_->only_external_waits();
    std::string report;
    if (quiet) {
        std::lock_guard lock(quiet_mu_);
        report = quiet_report_;
    }
    const int state = finishing_ ? kDone : quiet ? kQuiet : kBusy;
    if (state == reported_state_ &&
        (state == kBusy || (sent_ == reported_sent_ && received_ == reported_received_)))
        return;
    reported_state_ = state;
    reported_sent_ = sent_;
    reported_received_ = received_;
    Bytes payload;
    put_u64(payload, sent_);
    put_u64(payload, received_);
    payload.insert(payload.end(), report.begin(), report.end());
    if (rank_ == 0) {
        std::vector<ProcessState*> none;
        receive_control(state, 0, payload, none);
    } else {
        post_control(0, state, std::move(payload));
    }
}

// On rank 0: a deadlock is every rank quiet or done (not all done), as many bridge messages
// taken in as sent, and nothing changed since the last check (QuietTwice).
void MpiHub::check_deadlock_locked(std::vector<ProcessState*>& wake) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_check_ || aborted_) return;
    next_check_ = now + kDeadlockCheck;
    bool idle = true, any_quiet = false;
    std::uint64_t sent = 0, received = 0;
    std::vector<std::uint64_t> snapshot;
    for (const RankState& s : ranks_) {
        idle = idle && (s.quiet || s.done);
        any_quiet = any_quiet || s.quiet;
        sent += s.sent;
        received += s.received;
        snapshot.push_back(s.seq);
    }
    if (quiet_twice_.check(idle && any_quiet && sent == received, std::move(snapshot))) {
        deadlock_report_.clear();
        for (const RankState& s : ranks_) deadlock_report_ += s.report;
        if (!deadlock_report_.empty() && deadlock_report_.back() == '\n')
            deadlock_report_.pop_back();
        deadlocked_ = true;
        for (int r = 1; r < size_; ++r) post_control(r, kVerdict, {});
        abort_locked("", wake);
        return;
    }
}

// On rank 0: a rank that is not done and has sent nothing for the silence's length (not
// even its alive message of every second) is named once, until it is heard again.
void MpiHub::check_silence_locked() {
    if (silence_.count() == 0 || finishing_ || aborted_) return;
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t r = 1; r < last_heard_.size(); ++r) {
        if (silent_[r] || ranks_[r].done || now - last_heard_[r] < silence_) continue;
        silent_[r] = true;
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(now - last_heard_[r]);
        notices_.push_back("rank " + std::to_string(r) + " has not answered for " +
                           std::to_string(s.count()) +
                           " s: its process or its host may be stopped (still waiting)");
    }
}

// What the ranks tell rank 0 besides bridge traffic, and what rank 0 makes of it: progress
// samples, this rank's state (quiet, busy, done), that it is alive; on rank 0 the checks
// for a deadlock and for a silent rank.
void MpiHub::keep_in_touch_locked(std::vector<ProcessState*>& wake) {
    std::optional<Bytes> sample;  // before the state: a rank's last comes before done
    {
        std::lock_guard plock(progress_mu_);
        sample.swap(progress_out_);
    }
    if (sample) post_control(0, kProgress, std::move(*sample));
    report_state_locked();
    if (rank_ == 0) {
        check_deadlock_locked(wake);
        check_silence_locked();
        return;
    }
    // Four times in the silence rank 0 waits before it speaks, at most once a second.
    const auto alive_every =
        std::min<std::chrono::milliseconds>(silence_ / 4, std::chrono::seconds(1));
    const auto now = std::chrono::steady_clock::now();
    if (silence_.count() > 0 && !finishing_ && now >= next_alive_) {
        post_control(0, kAlive, {});
        next_alive_ = now + alive_every;
    }
}

void MpiHub::progress_loop() {
    int idle = 0;
    bool barrier_posted = false;
    std::uint64_t seen_polls = 0;
    std::vector<ProcessState*> wake;
    std::vector<std::string> notices;
    bool woken = false;  // from stepping back: poll at least once
    for (;;) {
        bool did = false, done = false;
        // While idle workers poll, this thread leaves the polling to them (see the header).
        // It polls when no worker polled since it last looked (they run processes, or
        // parked), and at least once when it was woken for that.
        const std::uint64_t polls = worker_polls_.load(std::memory_order_relaxed);
        bool leave = polls != seen_polls && !worker_parked_.exchange(false) && !woken;
        seen_polls = polls;
        woken = false;
        {
            std::lock_guard lock(mu_);
            leave = leave && !finishing_;
            if (!leave) did = poll_locked(wake, true);
            keep_in_touch_locked(wake);
            notices.swap(notices_);
            // The end: once this rank's own sends are through, a barrier that completes when
            // every rank got here; until then what arrives is still taken in.
            if (finishing_ && outgoing_.empty() && !barrier_posted) {
                MPI_Ibarrier(comm_, &barrier_);
                barrier_posted = true;
            }
            if (barrier_posted) {
                int flag = 0;
                MPI_Test(&barrier_, &flag, MPI_STATUS_IGNORE);
                done = flag != 0;
                if (done) poll_locked(wake, true);  // what came with the others' last words
                if (done)  // every rank is through: the receives kept posted go
                    for (Slot& slot : slots_)
                        if (slot.request != MPI_REQUEST_NULL) {
                            MPI_Cancel(&slot.request);
                            MPI_Wait(&slot.request, MPI_STATUS_IGNORE);
                        }
            }
        }
        wake_all(wake);
        hand_on(notices);
        if (done) return;
        if (did) {
            idle = 0;
            continue;
        }
        if (leave) {  // until the ticker or a parking worker says that no worker polls
            stepped_back_.store(true);
            std::unique_lock lock(sleep_mu_);
            if (sleep_cv_.wait_for(lock, kStepBack, [this] { return stop_ || kick_; })) {
                if (stop_) return;
                kick_ = false;
            }
            stepped_back_.store(false);
            woken = true;
            idle = 0;
            continue;
        }
        // Nothing came: look again soon, then less and less often (at most every 1 ms).
        ++idle;
        if (idle < 16) {
            std::this_thread::yield();
            continue;
        }
        const auto pause = std::chrono::microseconds(std::min(1000, 20 << std::min(idle - 16, 6)));
        std::unique_lock lock(sleep_mu_);
        if (sleep_cv_.wait_for(lock, pause, [this] { return stop_ || kick_; })) {
            if (stop_) return;
            kick_ = false;
            idle = 0;
        }
    }
}

void MpiHub::kick() {
    {
        std::lock_guard lock(sleep_mu_);
        kick_ = true;
    }
    sleep_cv_.notify_one();
}

void MpiHub::worker_parking() {
    worker_parked_.store(true);
    kick();
}

void MpiHub::finish() {
    {
        std::lock_guard lock(mu_);
        finishing_ = true;
    }
    kick();
    if (thread_.joinable()) thread_.join();
}

}  // namespace chanflow::detail
