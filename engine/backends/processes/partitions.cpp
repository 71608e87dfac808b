// partitions.cpp — the processes backend (chanflow/partitions.hpp): how a partition builds
// its part of the plan with bridges, and how the launcher starts and watches partitions.
#include "chanflow/partitions.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "bridges.hpp"
#include "codec.hpp"
#include "quiet_twice.hpp"
#include "ring_waiter.hpp"
#include "runtime_impl.hpp"
#include "shm_ring.hpp"

extern char** environ;

namespace chanflow {
namespace {

using detail::Bridge;
using detail::Bytes;
using detail::Channel;
using detail::kFrameData;
using detail::kFrameMore;
using detail::kFrameTarget;
using detail::RingWaiter;
using detail::ShmRing;
using detail::ShmSegment;

// ---- the bridges --------------------------------------------------------------------------

// A frame is a kind byte and encoded values; a batch larger than a ring goes as a run of
// kFrameMore frames ended by a kFrameData frame.
constexpr std::size_t kRingBytes = 2 << 20;  // a 1 MiB tensor's batch fits whole

// Reads the local side of a crossing channel and sends what it reads, in batches of what
// the channel holds when it reads. An ordinary process: when the ring is full it waits
// through the partition's RingWaiter, not on its thread.
NodeBody sender(ShmRing ring, RingWaiter& waiter) {
    return [ring, &waiter](ProcessContext& ctx) mutable -> Task {
        auto& in = ctx.in();
        Bytes frame;
        Value y;
        while (auto x = co_await in.read()) {
            frame.assign(1, kFrameData);
            detail::encode(*x, frame);
            // Only what is there now: a read that could wait would keep the batch from the
            // reader.
            while (frame.size() < kFrameTarget && in.try_read(y)) detail::encode(y, frame);
            // In pieces when larger than the ring: each piece goes with a kind byte written
            // over the last byte of the piece before (already sent), so nothing is copied.
            const std::size_t piece = ring.max_frame() - 1;
            for (std::size_t at = 1; at < frame.size();) {
                const std::size_t n = std::min(piece, frame.size() - at);
                unsigned char* start = frame.data() + at - 1;
                const unsigned char saved = *start;
                *start = at + n == frame.size() ? kFrameData : kFrameMore;
                for (;;) {
                    const ShmRing::Status s = ring.try_push(start, n + 1);
                    if (s == ShmRing::Status::Ok) break;
                    if (s == ShmRing::Status::ReaderGone) co_return;  // retire this end
                    if (s == ShmRing::Status::Aborted) throw Poisoned();
                    co_await waiter.room(ring, n + 1);
                }
                *start = saved;
                at += n;
            }
        }
        ring.close();
    };
}

// Receives what the other side sends and writes it into the local side. A reading side that
// retired tells the sender through the ring.
NodeBody receiver(ShmRing ring, RingWaiter& waiter, std::string channel, int from) {
    return [ring, &waiter, channel, from](ProcessContext& ctx) mutable -> Task {
        auto& out = ctx.out();
        Bytes copy, pending;
        std::vector<Value> batch;
        for (;;) {
            ShmRing::Status status = ShmRing::Status::Ok;
            std::span<const unsigned char> frame;
            if (!ring.try_peek(frame, copy, status)) {
                co_await waiter.data(ring);
                continue;
            }
            if (status == ShmRing::Status::Closed) co_return;
            if (status != ShmRing::Status::Ok) throw Poisoned();  // aborted
            if (frame.empty() || (frame[0] != kFrameData && frame[0] != kFrameMore)) {
                ring.release();
                throw std::runtime_error("channel '" + channel +
                                         "': a frame of an unknown kind from partition " +
                                         std::to_string(from));
            }
            // A whole batch is decoded where it lies in the ring; pieces are joined first.
            const bool whole = frame[0] == kFrameData && pending.empty();
            const bool more = frame[0] == kFrameMore;
            if (!whole) pending.insert(pending.end(), frame.begin() + 1, frame.end());
            std::span<const unsigned char> bytes =
                whole ? frame.subspan(1) : std::span<const unsigned char>(pending);
            if (more) {
                ring.release();
                continue;
            }
            try {
                detail::decode_batch(bytes, batch, channel, "partition " + std::to_string(from));
            } catch (...) {
                ring.release();
                throw;
            }
            ring.release();  // the values own their bytes now: the room goes back
            pending.clear();
            if (!co_await out.try_write_all(batch)) {  // every reader retired
                ring.reader_gone();
                co_return;
            }
        }
    };
}

// ---- what travels between the launcher and a partition -------------------------------------

// A partition finds these descriptors and variables when the launcher started it.
constexpr int kReadyFd = 3;    // the ready pipe's write end
constexpr int kShmFd = 4;      // the run's shared segment
constexpr int kResultsFd = 5;  // a memory file for its statistics and trace
constexpr const char* kLauncherVars[] = {"CHANFLOW_READY_FD", "CHANFLOW_LAUNCHER_PID",
                                         "CHANFLOW_RESULTS_FD", "CHANFLOW_TRACE",
                                         "CHANFLOW_TRACE_ORIGIN_NS"};

// The launcher's side of the ready handshake and of dying with it.
void join_launcher() {
    if (const char* pid = std::getenv("CHANFLOW_LAUNCHER_PID")) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != static_cast<pid_t>(std::atol(pid))) _exit(1);  // it is gone already
    }
}

void tell_launcher_ready() {
    if (const char* fd = std::getenv("CHANFLOW_READY_FD")) {
        const int f = std::atoi(fd);
        const char byte = 'r';
        if (write(f, &byte, 1) != 1) {
            // The launcher is gone; PR_SET_PDEATHSIG ends this process.
        }
        close(f);
    }
}

bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// A partition's statistics and trace go back in a memory file the launcher made (no path,
// nothing left behind however the run ends): "stats N\n" and N bytes of JSON, then
// "trace N\n" and N bytes of trace.
void leave_results(const RunResult& r) {
    const char* fd = std::getenv("CHANFLOW_RESULTS_FD");
    if (!fd) return;
    const std::string stats = to_json(r.stats);
    const std::string text = "stats " + std::to_string(stats.size()) + "\n" + stats + "trace " +
                             std::to_string(r.trace.size()) + "\n" + r.trace;
    write_all(std::atoi(fd), text);  // if it fails, the launcher finds no results
}

// The launcher's side: false when the partition left none (it died first).
bool take_results(int fd, const std::string& who, RunStats& stats, std::string& trace) {
    std::string text;
    if (lseek(fd, 0, SEEK_SET) != 0) return false;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        text.append(buf, static_cast<std::size_t>(n));
    }
    std::string_view rest = text;
    auto section = [&rest](std::string_view name, std::string& out) {
        if (rest.substr(0, name.size() + 1) != std::string(name) + " ") return false;
        rest.remove_prefix(name.size() + 1);
        const std::size_t nl = rest.find('\n');
        std::size_t size = 0;
        const auto [end, ec] = std::from_chars(rest.data(), rest.data() + nl, size);
        if (nl == std::string_view::npos || ec != std::errc() || end != rest.data() + nl ||
            size > rest.size() - nl - 1)
            return false;
        out = rest.substr(nl + 1, size);
        rest.remove_prefix(nl + 1 + size);
        return true;
    };
    std::string json;
    if (!section("stats", json) || !section("trace", trace)) return false;
    stats = detail::parse_run_stats(json, who);
    return true;
}

}  // namespace

// ---- one partition's runtime ---------------------------------------------------------------

RunResult run_partition(const Plan& plan, const Placement& placement, int k,
                        const std::string& segment, const RunOptions& options) {
    join_launcher();
    if (k < 0 || k >= placement.partitions)
        throw std::invalid_argument("no partition " + std::to_string(k));
    const std::vector<Bridge> bridges = detail::bridges_of(plan, placement);
    // "fd:N": the launcher's descriptor, inherited; else a name in /dev/shm.
    ShmSegment seg = segment.rfind("fd:", 0) == 0
                         ? ShmSegment::adopt(std::atoi(segment.c_str() + 3))
                         : ShmSegment::open(segment);
    if (seg.ring_count() < bridges.size())
        throw std::runtime_error("shared memory '" + segment + "' was made for another plan");
    tell_launcher_ready();

    RunOptions run_options = options;
    // What the launcher asks for: a trace, on its clock.
    if (const char* trace = std::getenv("CHANFLOW_TRACE"); trace && *trace == '1')
        run_options.trace = true;
    if (const char* origin = std::getenv("CHANFLOW_TRACE_ORIGIN_NS"))
        run_options.trace_origin_ns = std::atoll(origin);
    // Progress goes to the segment, for the launcher to add up (run --progress).
    run_options.on_progress = [&seg, k, user = options.on_progress](const Progress& p) {
        seg.set_progress(k, p);
        if (user) user(p);
    };
    detail::Runtime rt(run_options);
    rt.share_output();
    rt.on_failure([&seg](const std::string& message) {
        seg.claim_failure(message);
        seg.abort();
    });
    // The launcher watches for a partition that stops answering.
    rt.on_tick([&seg, k] { seg.beat(k); });
    // For the launcher's deadlock check: say when nothing here can run until a ring
    // changes, with what the processes (not the bridges) wait on; and when a ring woke us.
    rt.on_quiet([&seg, k](const std::vector<std::string>& blocked) {
        seg.set_quiet(k, detail::quiet_report(blocked, "partition"));
    });
    // A quiet report can outlive the wake that ended it (made while the wake was on its way
    // to the scheduler): the waiter takes it back, within kRecheck, if it no longer holds.
    auto& sched = rt.scheduler();
    RingWaiter waiter(
        sched, [&seg, k] { seg.set_woken(k); },
        [&seg, &sched, k] {
            if (seg.quiet(k)) sched.unless_quiet([&seg, k] { seg.set_woken(k); });
        });
    detail::Wiring w;
    const std::vector<std::string> channel_names = [&] {
        std::vector<std::string> out;
        for (const Bridge& b : bridges) out.push_back(plan.channels[b.channel].name);
        return out;
    }();
    detail::BridgeBodies bodies{[&](std::size_t b) { return sender(seg.ring(b), waiter); },
                                [&](std::size_t b) {
                                    return receiver(seg.ring(b), waiter, channel_names[b],
                                                    bridges[b].from);
                                }};
    detail::wire_partition(plan, placement, k, bridges, rt, bodies, w);
    detail::add_plan_processes(
        rt, plan, [&](std::size_t i) { return placement.of_process[i] == k; }, w);
    RunResult result = rt.run();
    result.stats = detail::partition_stats(plan, placement, k, rt);
    // A partition stopped by another's failure is poisoned without a failure of its own.
    if (result.status == RunStatus::Ok && seg.aborted()) {
        result.status = RunStatus::Failed;
        result.message = seg.failure();
    }
    leave_results(result);
    return result;
}

// ---- the launcher -------------------------------------------------------------------------

namespace {

/// A file descriptor, closed when it goes.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        return "killed by signal " + std::to_string(sig) +
               (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
    }
    return "exit code " + std::to_string(WEXITSTATUS(status));
}

// "a, b, ...": up to 8 names of up to 40 characters, so that a message about a
// partition stays short whatever its processes are called.
std::string processes_of(const Plan& plan, const Placement& pl, int k) {
    constexpr std::size_t kNames = 8, kNameChars = 40;
    std::string s;
    std::size_t n = 0;
    for (std::size_t i : pl.processes_of(k)) {
        if (plan.processes[i].hidden) continue;
        if (n++ == kNames) {
            s += ", ...";
            break;
        }
        const std::string& name = plan.processes[i].name;
        s += (s.empty() ? "" : ", ") +
             (name.size() <= kNameChars ? name : name.substr(0, kNameChars - 3) + "...");
    }
    return s.empty() ? "no processes" : s;
}

// Moves a descriptor above the ones a partition is given (3 to 5), so that giving one
// cannot overwrite another before it is given. Keeps close-on-exec.
Fd above_child_fds(int fd) {
    if (fd < 0 || fd > kResultsFd) return Fd(fd);
    const int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return Fd(moved);
}

std::runtime_error system_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// SIGINT, SIGTERM and SIGHUP blocked while the launcher watches (they arrive through a
// signalfd instead), and the old mask back when it is done.
class StopSignals {
public:
    StopSignals() {
        sigemptyset(&stops_);
        for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stops_, s);
        sigprocmask(SIG_BLOCK, &stops_, &old_mask_);
        fd_ = Fd(signalfd(-1, &stops_, SFD_CLOEXEC));
    }
    ~StopSignals() {
        fd_.reset();
        sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    int fd() const noexcept { return fd_.get(); }
    const sigset_t& old_mask() const noexcept { return old_mask_; }

private:
    sigset_t stops_{}, old_mask_{};
    Fd fd_;
};

// One run of the partitions: starts them, watches them (their ends, signals, deadlocks,
// silence, progress) and gathers what they leave.
class Launcher {
public:
    Launcher(const Plan& plan, const Placement& placement, const RunOptions& options)
        : plan_(plan),
          placement_(placement),
          options_(options),
          n_(placement.partitions),
          bridges_(detail::bridges_of(plan, placement)),
          partitions_(static_cast<std::size_t>(n_)) {}

    RunResult run(const PartitionCommand& command);

private:
    static constexpr auto kDeadlockCheck = std::chrono::milliseconds(100);
    static constexpr auto kProgressEvery = std::chrono::milliseconds(200);
    static constexpr auto kGrace = std::chrono::seconds(2);  // after an abort, before SIGKILL

    struct Partition {
        pid_t pid = -1;
        Fd pidfd, results;
        bool running = false;
        std::uint64_t beats = 0;  // its count when last seen to change
        std::chrono::steady_clock::time_point heard;
        bool silent = false;  // said so, and not yet heard again
    };

    void make_segment();
    std::vector<std::string> child_environment() const;
    void spawn(const PartitionCommand& command);
    void watch();
    void on_exit(int k);
    void on_signal();
    void check_silence();
    bool deadlocked_everywhere();
    void stop_all(const std::string& why);
    void notice(const std::string& text) const;
    Progress progress(bool final) const;
    RunResult result();
    long live() const {
        return std::count_if(partitions_.begin(), partitions_.end(),
                             [](const Partition& p) { return p.running; });
    }

    const Plan& plan_;
    const Placement& placement_;
    const RunOptions& options_;
    const int n_;
    const std::vector<Bridge> bridges_;
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    const std::int64_t origin_ns_ = now_ns();
    const std::chrono::milliseconds silence_ = detail::silence_before_notice();

    StopSignals signals_;
    std::optional<ShmSegment> seg_;
    Fd shm_fd_, ready_read_, ready_write_;
    std::vector<Partition> partitions_;
    int ready_count_ = 0;
    bool deadlocked_ = false, output_closed_ = false;
    std::string deadlock_report_;
    detail::QuietTwice quiet_twice_;
    std::optional<std::chrono::steady_clock::time_point> kill_at_;
    std::optional<std::chrono::steady_clock::time_point> all_ready_at_;
};

// The segment's name lives only until the launcher holds a descriptor of it: the partitions
// inherit that, so nothing can be left in /dev/shm however the run ends.
void Launcher::make_segment() {
    if (n_ > ShmSegment::kMaxPartitions)
        throw std::invalid_argument("the processes backend runs at most " +
                                    std::to_string(ShmSegment::kMaxPartitions) + " partitions");
    // Unguessable, so that nobody can take the name first (O_EXCL would refuse it then).
    std::random_device rd;
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "%08x%08x", rd(), rd());
    const std::string name = "/chanflow." + std::to_string(getpid()) + "." + suffix;
    seg_.emplace(ShmSegment::create(name, std::max<std::size_t>(1, bridges_.size()), kRingBytes));
    shm_fd_ = above_child_fds(shm_open(name.c_str(), O_RDWR, 0));
    ShmSegment::unlink(name);
    if (!shm_fd_) throw system_error("cannot open shared memory");
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) throw system_error("cannot make a pipe");
    ready_read_ = Fd(ready[0]);
    ready_write_ = above_child_fds(ready[1]);
    if (!ready_write_) throw system_error("cannot make a pipe");
    for (Partition& p : partitions_) {
        p.results = above_child_fds(memfd_create("chanflow-results", MFD_CLOEXEC));
        if (!p.results) throw system_error("cannot make a memory file");
    }
}

// The launcher's environment without what an outer launcher set, and what this one tells
// its partitions.
std::vector<std::string> Launcher::child_environment() const {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string_view var = *e;
        const bool ours = std::any_of(
            std::begin(kLauncherVars), std::end(kLauncherVars), [&](std::string_view name) {
                return var.substr(0, name.size() + 1) == std::string(name) + "=";
            });
        if (!ours) env.emplace_back(var);
    }
    env.push_back("CHANFLOW_READY_FD=" + std::to_string(kReadyFd));
    env.push_back("CHANFLOW_LAUNCHER_PID=" + std::to_string(getpid()));
    env.push_back("CHANFLOW_RESULTS_FD=" + std::to_string(kResultsFd));
    env.push_back(std::string("CHANFLOW_TRACE=") + (options_.trace ? "1" : "0"));
    env.push_back("CHANFLOW_TRACE_ORIGIN_NS=" +
                  std::to_string(options_.trace_origin_ns ? options_.trace_origin_ns : origin_ns_));
    return env;
}

void Launcher::spawn(const PartitionCommand& command) {
    std::vector<std::string> env = child_environment();
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    const std::string segment_arg = "fd:" + std::to_string(kShmFd);
    for (int k = 0; k < n_; ++k) {
        Partition& part = partitions_[static_cast<std::size_t>(k)];
        std::vector<std::string> args = command(k, segment_arg);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        // dup2 clears close-on-exec on the copy: the partition keeps these three.
        posix_spawn_file_actions_adddup2(&fa, ready_write_.get(), kReadyFd);
        posix_spawn_file_actions_adddup2(&fa, shm_fd_.get(), kShmFd);
        posix_spawn_file_actions_adddup2(&fa, part.results.get(), kResultsFd);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setsigmask(&attr, &signals_.old_mask());
        sigset_t defaults;
        sigemptyset(&defaults);
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        pid_t pid = -1;
        const int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) {
            seg_->claim_failure("cannot start partition " + std::to_string(k) + " (" + args[0] +
                                "): " + std::strerror(rc));
            seg_->abort();
            kill_at_ = std::chrono::steady_clock::now() + kGrace;
            break;
        }
        part.pid = pid;
        part.pidfd = Fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
        part.running = true;
        part.heard = std::chrono::steady_clock::now();
    }
    ready_write_.reset();
    shm_fd_.reset();
}

void Launcher::notice(const std::string& text) const {
    if (options_.on_notice) return options_.on_notice(text);
    std::fprintf(stderr, "warning: %s\n", text.c_str());
    std::fflush(stderr);
}

Progress Launcher::progress(bool final) const {
    Progress p;
    p.elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    p.final = final;
    for (int k = 0; k < n_; ++k) seg_->add_progress(k, p);
    return p;
}

void Launcher::stop_all(const std::string& why) {
    if (!why.empty()) seg_->claim_failure(why);
    seg_->abort();
    if (!kill_at_) kill_at_ = std::chrono::steady_clock::now() + kGrace;
}

// Deadlocked across partitions: every live partition quiet (nothing runs until a ring
// changes), no ring holding what its waiting side waits for, and so at two checks in a row
// with no ring wake-up between them (QuietTwice).
bool Launcher::deadlocked_everywhere() {
    std::vector<std::uint64_t> wakes;
    bool all_quiet = ready_count_ >= n_;
    for (int k = 0; k < n_ && all_quiet; ++k) {
        if (!partitions_[static_cast<std::size_t>(k)].running) {
            wakes.push_back(0);
            continue;
        }
        const auto st = seg_->partition(k);
        all_quiet = st.quiet;
        wakes.push_back(st.wakes);
    }
    for (std::size_t i = 0; i < bridges_.size() && all_quiet; ++i)
        all_quiet = !seg_->wake_pending(i);
    return quiet_twice_.check(all_quiet, std::move(wakes));
}

// A partition whose ticker stopped counting (stopped with SIGSTOP, in a debugger) is neither
// dead nor deadlocked: the run waits for it, and says so once, and again when it answers.
// The clock starts once every partition has loaded the plan and joined (which takes a
// while for a large graph file).
void Launcher::check_silence() {
    if (silence_.count() == 0 || kill_at_ || !all_ready_at_) return;
    const auto now = std::chrono::steady_clock::now();
    for (int k = 0; k < n_; ++k) {
        Partition& p = partitions_[static_cast<std::size_t>(k)];
        if (!p.running) continue;
        const std::uint64_t beats = seg_->beats(k);
        if (beats != p.beats) {
            p.beats = beats;
            p.heard = now;
            if (p.silent) notice("partition " + std::to_string(k) + " answers again");
            p.silent = false;
        } else if (!p.silent && now - std::max(p.heard, *all_ready_at_) >= silence_) {
            p.silent = true;
            const auto s = std::chrono::duration_cast<std::chrono::seconds>(
                now - std::max(p.heard, *all_ready_at_));
            notice("partition " + std::to_string(k) + " has not answered for " +
                   std::to_string(s.count()) + " s: it may be stopped (still waiting); it runs " +
                   processes_of(plan_, placement_, k));
        }
    }
}

void Launcher::on_signal() {
    signalfd_siginfo si{};
    if (read(signals_.fd(), &si, sizeof si) != sizeof si) return;
    const char* abbrev = sigabbrev_np(static_cast<int>(si.ssi_signo));
    stop_all(std::string("interrupted by SIG") + (abbrev ? abbrev : "?"));
    for (const Partition& p : partitions_)
        if (p.running) {
            kill(p.pid, SIGTERM);
            kill(p.pid, SIGCONT);  // a stopped one, too
        }
}

void Launcher::on_exit(int k) {
    Partition& p = partitions_[static_cast<std::size_t>(k)];
    int status = 0;
    if (waitpid(p.pid, &status, WNOHANG) <= 0) return;
    p.running = false;
    p.pidfd.reset();
    if (seg_->aborted()) return;  // stopping already: its end says nothing new
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE) {
        // Its output's reader went away (`chanflow run ... | head`): the run ends quietly.
        output_closed_ = true;
        stop_all("");
    } else if (code == 3) {  // a deadlock it reported itself: the others cannot go on
        deadlocked_ = true;
        stop_all("");
    } else if (code != 0 && code != 1) {
        stop_all("partition " + std::to_string(k) + " died: " + describe_exit(status) +
                 "; it ran " + processes_of(plan_, placement_, k));
    } else if (code == 1 && seg_->failure().empty()) {
        stop_all("partition " + std::to_string(k) + " ended with " + describe_exit(status) +
                 "; it ran " + processes_of(plan_, placement_, k));
    }
}

// Waits on the ready pipe (then the segment's name can go), signals and every partition's
// end; between events it looks for a deadlock and for silent partitions.
void Launcher::watch() {
    auto next_progress = started_ + kProgressEvery;
    while (live() > 0) {
        std::vector<pollfd> fds;
        std::vector<int> whose;  // -1 the ready pipe, -2 signals, else the partition
        if (ready_read_) {
            fds.push_back({ready_read_.get(), POLLIN, 0});
            whose.push_back(-1);
        }
        if (signals_.fd() >= 0) {
            fds.push_back({signals_.fd(), POLLIN, 0});
            whose.push_back(-2);
        }
        for (int k = 0; k < n_; ++k)
            if (partitions_[static_cast<std::size_t>(k)].running) {
                fds.push_back({partitions_[static_cast<std::size_t>(k)].pidfd.get(), POLLIN, 0});
                whose.push_back(k);
            }
        auto timeout = kDeadlockCheck;
        if (kill_at_)
            timeout = std::max(std::chrono::milliseconds(0),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   *kill_at_ - std::chrono::steady_clock::now()));
        const int got = poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
        if (options_.on_progress && std::chrono::steady_clock::now() >= next_progress) {
            options_.on_progress(progress(false));
            next_progress = std::chrono::steady_clock::now() + kProgressEvery;
        }
        if (got < 0 && errno == EINTR) continue;
        check_silence();
        if (got == 0 && !kill_at_) {
            if (deadlocked_everywhere()) {
                deadlocked_ = true;
                for (int k = 0; k < n_; ++k)
                    if (partitions_[static_cast<std::size_t>(k)].running)
                        deadlock_report_ += seg_->partition(k).report;
                stop_all("");
            }
            continue;
        }
        if (got == 0 && kill_at_) {  // they had their time after the abort
            for (const Partition& p : partitions_)
                if (p.running) kill(p.pid, SIGKILL);
            kill_at_ = std::chrono::steady_clock::now() + std::chrono::hours(1);
            continue;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            if (whose[i] == -1) {
                char buf[64];
                const ssize_t r = read(ready_read_.get(), buf, sizeof buf);
                if (r > 0) ready_count_ += static_cast<int>(r);
                if (ready_count_ >= n_) all_ready_at_ = std::chrono::steady_clock::now();
                if (r <= 0 || ready_count_ >= n_) ready_read_.reset();
            } else if (whose[i] == -2) {
                on_signal();
            } else {
                on_exit(whose[i]);
            }
        }
    }
}

RunResult Launcher::result() {
    RunResult r;
    const std::string failure = seg_->failure();
    if (!failure.empty()) {
        r.status = RunStatus::Failed;
        r.message = failure;
    } else if (output_closed_) {
        r.status = RunStatus::Failed;
        r.message = "the output was closed (broken pipe)";
        r.output_closed = true;
    } else if (deadlocked_) {  // across partitions: what each said; within one: it said so
        r.status = RunStatus::Deadlock;
        if (!deadlock_report_.empty() && deadlock_report_.back() == '\n')
            deadlock_report_.pop_back();
        r.message = deadlock_report_;
    }
    // What each partition left: its statistics and trace.
    std::vector<RunStats> stats;
    std::vector<std::string> traces;
    for (int k = 0; k < n_; ++k) {
        RunStats s;
        std::string trace;
        try {
            if (!take_results(partitions_[static_cast<std::size_t>(k)].results.get(),
                              "partition " + std::to_string(k), s, trace))
                continue;
        } catch (const std::exception&) {
            continue;  // a partition that died while writing them
        }
        stats.push_back(std::move(s));
        traces.push_back(std::move(trace));
    }
    r.stats = merge_partition_stats(plan_, stats);
    if (options_.trace) r.trace = merge_partition_traces(traces);
    return r;
}

RunResult Launcher::run(const PartitionCommand& command) {
    make_segment();
    spawn(command);
    watch();
    if (options_.on_progress) options_.on_progress(progress(true));
    return result();
}

}  // namespace

RunResult launch_partitions(const Plan& plan, const Placement& placement,
                            const PartitionCommand& command, const RunOptions& options) {
    return Launcher(plan, placement, options).run(command);
}

}  // namespace chanflow
