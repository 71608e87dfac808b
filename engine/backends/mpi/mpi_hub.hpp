// mpi_hub.hpp — one rank's MPI traffic for the MPI backend: the frames of its bridges,
// credits for flow control, and the control messages of faults, deadlock detection and the
// end of the run.
//
// Every MPI call is made under the hub's lock (MPI_THREAD_SERIALIZED is enough). Sends are
// posted by the bridge that sends. Every tag this rank receives on has a receive kept posted
// (a Slot), so that arrivals land in place; a poll tests them all, with the sends in flight,
// in one MPI_Testsome. Polls are made by idle workers while they look for work (no thread hop
// on a busy rank: a ping-pong runs on one thread per rank), and by a progress thread while no
// worker polls (they run processes, or parked); it backs off to sleeping when nothing comes.
// mpirun binds a rank to one core when ranks fill the host: two pollers would take turns, and
// every other thread that wakes there stops the polling worker for tens of microseconds. So
// while a worker polls, the progress thread sleeps, the worker keeps in touch with rank 0,
// and the run's ticker (which wakes every 1 to 4 ms anyway) looks whether it still polls.
//
// Tags: bridge b's frames travel on 2b + kFirstBridgeTag, its credits (and the reader's
// retire) back on the next tag; MPI keeps the order of messages with one source and tag, so
// a frame never overtakes the one before and the end comes last. Control messages share
// kControlTag, their type first, and are probed for.
//
// A frame is a kind byte and a payload: kFrameData, a batch of encoded values; kFrameEnd,
// the writers retired; kFrameLarge, the size of the next frame, larger than a posted receive
// takes; kFrameTensor, a tensor's dtype and shape, its elements following as the next
// message on the tag, sent from and received into the tensor's own memory.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bridges.hpp"
#include "chanflow/progress.hpp"
#include "channel.hpp"
#include "codec.hpp"
#include "quiet_twice.hpp"

namespace chanflow::detail {

class Scheduler;
struct ProcessState;

constexpr unsigned char kFrameEnd = 'E';
constexpr unsigned char kFrameTensor = 'T';
constexpr unsigned char kFrameLarge = 'L';  // the next frame's size, when it is large
/// What a receive kept posted per bridge takes: frames larger are announced first.
constexpr std::size_t kReceiveBytes = 128 * 1024;
/// Tensors at least this large travel as a message of their own, without a copy.
constexpr std::size_t kTensorOutOfLine = 64 * 1024;

class MpiHub {
public:
    /// `bridges` as bridges_of gives them; this rank's are those from or to `rank`.
    MpiHub(MPI_Comm comm, int rank, int size, const std::vector<Bridge>& bridges);
    ~MpiHub();
    MpiHub(const MpiHub&) = delete;
    MpiHub& operator=(const MpiHub&) = delete;

    /// Rank 0 tells through `notice` when another rank has sent nothing for `after`, and when
    /// it is heard again. Every other rank's progress thread says it is alive four times in
    /// `after` (at most once a second), even while its processes compute: a silent rank is
    /// stopped, or its host is. Set before start(), on every rank with the same `after`;
    /// without it, nobody watches.
    void watch_silence(std::chrono::milliseconds after,
                       std::function<void(const std::string&)> notice);
    /// Starts the progress thread; processes blocked on the hub are woken through `sched`.
    void start(Scheduler& sched);

    // ---- a sender (bridge b runs from this rank) ----
    enum class Sent { Ok, Full, Gone, Aborted };
    /// Sends a frame (its kind byte first); on Ok the hub has taken its bytes and `frame`
    /// is left empty. Full: no credit, wait for room(b). Gone: every reader retired.
    Sent try_send(std::size_t b, Bytes& frame);
    /// Sends a tensor value out of line: its header, then its elements from its memory.
    Sent try_send_tensor(std::size_t b, const Value& tensor);
    /// Bridge b's sender is the only reader of `from`: a writer that finds the sender
    /// waiting sends what it writes itself, as one frame (see ChannelSink).
    void send_directly(std::size_t b, Channel& from);
    /// The writers retired: the end goes after everything sent.
    void close(std::size_t b);

    // ---- a receiver (bridge b runs to this rank) ----
    enum class Took { Ok, Empty, Closed, Aborted };
    struct Arrival {
        Bytes frame;                // a batch: kFrameData and the encoded values,
        std::size_t size = 0;       // in its first `size` bytes
        Value tensor;               // or a tensor that came out of line (size 0),
        std::vector<Value> values;  // or values decoded already (size 0)
    };
    Took try_take(std::size_t b, Arrival& a);
    /// Every reader of the local side retired: the sender stops, what comes is dropped.
    void reader_gone(std::size_t b);
    /// Bridge b's receiver writes into `into` alone: a small batch that arrives while the
    /// receiver waits goes into `into` from the poll, as far as it takes it without waiting,
    /// and the receiver sleeps on (a ping-pong's message skips a wake-up and a switch).
    void deliver_directly(std::size_t b, Channel& into);

    /// co_await hub.room(b) / hub.data(b): suspends until trying again may succeed.
    struct Awaiter {
        MpiHub& hub;
        std::size_t b;
        bool room;
        bool suspended = false;
        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<>);
        void await_resume() const noexcept;
    };
    Awaiter room(std::size_t b) { return {*this, b, true}; }
    Awaiter data(std::size_t b) { return {*this, b, false}; }

    /// One round of progress if no other thread is making one: completes sends, takes in
    /// arrivals, wakes who waits for them. True when it did something. Called by idle
    /// workers (the scheduler's poll hook).
    bool poll();
    /// A worker stops polling and parks: the progress thread polls again at once.
    void worker_parking();
    /// Called every 1 to 4 ms by the run's ticker: a polling worker keeps in touch
    /// with rank 0 on its next poll; if no worker polled since the last tick (they run
    /// processes), the progress thread is woken to poll.
    void tick();

    // ---- faults, deadlock, the end ----
    /// The first failure on this rank: every rank aborts, and this message is the run's
    /// unless another came first.
    void fail(const std::string& message);
    bool aborted() const noexcept { return aborted_.load(); }
    /// The first failure this rank heard of (its own or another's); empty if none.
    std::string failure() const;
    /// Whether rank 0 found every rank quiet with nothing in flight (the run deadlocked).
    bool deadlocked() const noexcept { return deadlocked_.load(); }
    /// On rank 0 after a deadlock: what each rank's processes wait on.
    std::string deadlock_report() const;
    /// Nothing here can run until a message arrives: `report` says what the processes wait
    /// on. Called by the scheduler with its lock held: takes only a lock of its own.
    void set_quiet(std::string report);
    /// This rank's latest progress sample: rank 0 keeps its own, the others send theirs to
    /// rank 0 (at most once per sample).
    void set_progress(const Progress& p);
    /// On rank 0: `own` with the latest samples of the other ranks added in.
    Progress progress_of_all(const Progress& own) const;
    /// This rank's processes all ended (or the run stopped): keeps taking in and answering
    /// what arrives until every rank got here, then stops the progress thread.
    void finish();

private:
    // The sink of a channel read by bridge b's sender alone. Its frame is used under the
    // channel's lock, so by one writer at a time.
    class DirectSend final : public ChannelSink {
    public:
        DirectSend(MpiHub& hub, std::size_t b) : hub_(hub), b_(b) {}
        bool take(const Value* values, std::size_t n) noexcept override;

    private:
        MpiHub& hub_;
        std::size_t b_;
        Bytes frame_;
    };
    struct Outgoing {
        MPI_Request request;
        Bytes bytes;
        Value keep;  // a tensor whose memory is being sent
    };
    struct SendSide {
        int to = -1;
        int credits = 0;
        bool gone = false;
        ProcessState* waiting = nullptr;
    };
    struct ReceiveSide {
        int from = -1;
        std::deque<Arrival> inbox;
        bool ended = false, gone = false;
        int consumed = 0;  // frames taken since credit was last returned
        ProcessState* waiting = nullptr;
        Channel* direct = nullptr;  // see deliver_directly
    };
    // A receive kept posted for one bridge's frames (or credits): arrivals land in place,
    // and a poll tests them all at once.
    struct Slot {
        std::size_t bridge = 0;
        bool credit = false;
        MPI_Request request = MPI_REQUEST_NULL;
        enum class Into { Frame, Large, Tensor } into = Into::Frame;
        Bytes buffer;   // Frame: kReceiveBytes; Large: the announced size
        Tensor tensor;  // Tensor: the header; its elements arrive into its data
        std::uint64_t expected = 0;
        std::uint32_t credit_value = 0;
    };
    // Control messages travel on one tag, their type the first byte.
    enum Control : int {
        kAbort = 1,
        kQuiet = 2,
        kBusy = 3,
        kVerdict = 4,
        kDone = 5,
        kProgress = 6,
        kAlive = 7
    };
    static constexpr int kControlTag = 1;
    static constexpr int kFirstBridgeTag = 16;
    static constexpr int kWindow = 16;                 // frames in flight per bridge
    static constexpr std::size_t kDirectBytes = 4096;  // frames decoded in the poll

    void progress_loop();
    bool poll_locked(std::vector<ProcessState*>& wake, bool control);
    void post(int to, int tag, Bytes bytes, Value keep = {});
    bool post_bytes(int to, int tag, Bytes& bytes, Value keep = {});
    void post_control(int to, int type, Bytes payload);
    Sent take_credit_locked(std::size_t b);
    Sent try_send_locked(std::size_t b, Bytes& frame);
    void post_receive(Slot& slot);
    void arrived(Slot& slot, const MPI_Status& st, std::vector<ProcessState*>& wake);
    bool deliver_direct_locked(std::size_t b, const Bytes& frame, std::size_t n,
                               std::vector<ProcessState*>& wake);
    void frame_taken_locked(std::size_t b, bool later);
    void send_credit_locked(std::size_t b);
    void receive_control(int tag, int source, const Bytes& bytes, std::vector<ProcessState*>& wake);
    void abort_locked(const std::string& message, std::vector<ProcessState*>& wake);
    void report_state_locked();
    void check_deadlock_locked(std::vector<ProcessState*>& wake);
    void check_silence_locked();
    void keep_in_touch_locked(std::vector<ProcessState*>& wake);
    void keep_in_touch();
    void wake_all(std::vector<ProcessState*>& wake);
    void hand_on(std::vector<std::string>& notices);
    void kick();  // the progress thread looks now
    void take_waiter(ProcessState*& slot, std::vector<ProcessState*>& wake);

    MPI_Comm comm_;
    int rank_, size_;
    Scheduler* sched_ = nullptr;

    mutable std::mutex mu_;       // guards everything below but the atomics, and every MPI call
    std::vector<SendSide> send_;  // by bridge; used where this rank sends
    std::vector<ReceiveSide> receive_;  // by bridge; used where this rank receives
    std::vector<Outgoing> outgoing_;
    std::vector<Slot> slots_;
    std::vector<Slot*> repost_;  // slots whose receive completed, posted again by the next poll
    std::vector<std::size_t> credit_due_;  // bridges whose credit the next poll sends
    std::vector<MPI_Request> requests_;    // poll's scratch: the slots', then outgoing_'s
    std::vector<int> completed_;
    std::vector<MPI_Status> statuses_;
    std::uint64_t polls_ = 0;
    std::size_t hot_ = SIZE_MAX;             // the slot that took the last frame
    std::vector<Bytes> spare_;               // send buffers to reuse
    std::vector<Bytes> spare_receive_;       // receive buffers (kReceiveBytes) to reuse
    std::vector<Value> direct_values_;       // deliver_direct_locked's scratch
    std::deque<DirectSend> direct_sends_;    // see send_directly
    bool delivered_ = false;                 // it placed values since poll() last looked
    std::uint64_t sent_ = 0, received_ = 0;  // bridge messages, for deadlock detection
    std::string failure_;
    std::atomic<bool> aborted_{false}, deadlocked_{false};
    bool finishing_ = false;
    MPI_Request barrier_ = MPI_REQUEST_NULL;

    // Deadlock detection: each rank tells rank 0 when it is quiet (and what it waits on)
    // and when it is busy again; rank 0 declares a deadlock when every rank is quiet or
    // done, as many bridge messages arrived as were sent, and nothing changed for a check.
    std::mutex quiet_mu_;  // leaf lock: the scheduler calls set_quiet holding its own
    std::string quiet_report_;
    struct RankState {
        bool quiet = false, done = false;
        std::uint64_t sent = 0, received = 0, seq = 0;
        std::string report;
    };
    int reported_state_ = kBusy;  // what this rank last told rank 0
    std::uint64_t reported_sent_ = 0, reported_received_ = 0;
    std::vector<RankState> ranks_;  // on rank 0
    QuietTwice quiet_twice_;        // on rank 0
    std::string deadlock_report_;
    std::chrono::steady_clock::time_point next_check_;

    // Silence: rank 0 keeps when it last heard from each rank; the others say they are
    // alive once a second. Notices wait in notices_ for the progress thread to hand on.
    std::chrono::milliseconds silence_{0};  // 0: nobody watches
    std::function<void(const std::string&)> notice_;
    std::vector<std::chrono::steady_clock::time_point> last_heard_;  // on rank 0
    std::vector<bool> silent_;                                       // told so, on rank 0
    std::vector<std::string> notices_;
    std::chrono::steady_clock::time_point next_alive_;

    // Progress (run --progress): this rank's latest sample, not yet sent; on rank 0, every
    // rank's latest.
    mutable std::mutex progress_mu_;  // leaf lock
    std::optional<Bytes> progress_out_;
    std::vector<Progress> progress_in_;

    std::atomic<std::uint64_t> worker_polls_{0};  // poll() calls, to see whether workers poll
    std::atomic<bool> worker_parked_{false};      // worker_parking() since the thread looked
    std::atomic<bool> stepped_back_{false};       // the progress thread waits for a kick
    std::atomic<bool> touch_due_{false};          // a tick asks a polling worker to keep in touch
    std::uint64_t ticked_polls_ = 0;              // worker_polls_ at the last tick (ticker's own)
    std::mutex sleep_mu_;
    std::condition_variable sleep_cv_;
    bool stop_ = false, kick_ = false;  // kick_: look now (a worker parked, or the run is over)
    std::thread thread_;
};

}  // namespace chanflow::detail
