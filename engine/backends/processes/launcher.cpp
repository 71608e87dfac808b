// launcher.cpp — the processes backend's launcher (chanflow/partitions.hpp): forks one
// partition per OS process, watches them (their ends, signals, deadlocks, silence,
// progress), and gathers what they leave into the run's result.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bridges.hpp"
#include "chanflow/partitions.hpp"
#include "partition.hpp"
#include "quiet_twice.hpp"
#include "runtime_impl.hpp"

namespace chanflow {

using detail::Bridge;
using detail::ShmSegment;

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

// Closes every descriptor marked close-on-exec but those to keep: a forked partition holds
// what the program would hold after an exec, and what it is given.
void close_cloexec_fds_except(std::initializer_list<int> keep) {
    std::vector<int> fds;
    if (DIR* dir = opendir("/proc/self/fd")) {
        while (const dirent* e = readdir(dir)) {
            int fd = -1;
            const char* end = e->d_name + std::strlen(e->d_name);
            if (std::from_chars(e->d_name, end, fd).ptr == end && fd != dirfd(dir))
                fds.push_back(fd);
        }
        closedir(dir);
    }
    for (int fd : fds) {
        const int flags = fcntl(fd, F_GETFD);
        const bool kept = std::find(keep.begin(), keep.end(), fd) != keep.end();
        if (!kept && flags >= 0 && (flags & FD_CLOEXEC)) close(fd);
    }
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
          workers_(options.workers > 0
                       ? options.workers
                       : std::max(1u, usable_cores() / static_cast<unsigned>(std::max(1, n_)))),
          bridges_(detail::bridges_of(plan, placement)),
          partitions_(static_cast<std::size_t>(n_)) {}

    RunResult run();

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
    void spawn();
    [[noreturn]] void run_child(int k, pid_t launcher);
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
    const unsigned workers_;  // per partition
    const std::vector<Bridge> bridges_;
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    const std::int64_t origin_ns_ = now_ns();
    const std::chrono::milliseconds silence_ = detail::silence_before_notice();

    StopSignals signals_;
    std::optional<ShmSegment> seg_;
    Fd ready_read_, ready_write_;
    std::vector<Partition> partitions_;
    int ready_count_ = 0;
    bool deadlocked_ = false, output_closed_ = false;
    std::string deadlock_report_;
    detail::QuietTwice quiet_twice_;
    std::optional<std::chrono::steady_clock::time_point> kill_at_;
    std::optional<std::chrono::steady_clock::time_point> all_ready_at_;
};

// The segment is shared anonymous memory: the partitions, forked from the launcher, map
// it already, and it has no name that could be left behind however the run ends.
void Launcher::make_segment() {
    if (n_ > ShmSegment::kMaxPartitions)
        throw std::invalid_argument("the processes backend runs at most " +
                                    std::to_string(ShmSegment::kMaxPartitions) + " partitions");
    seg_.emplace(
        ShmSegment::anonymous(std::max<std::size_t>(1, bridges_.size()), detail::kRingBytes));
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) throw system_error("cannot make a pipe");
    ready_read_ = Fd(ready[0]);
    ready_write_ = Fd(ready[1]);
    for (Partition& p : partitions_) {
        p.results = Fd(memfd_create("chanflow-results", MFD_CLOEXEC));
        if (!p.results) throw system_error("cannot make a memory file");
    }
}

// Forks every partition. Buffered output is flushed first, so that no partition writes a
// copy of it.
void Launcher::spawn() {
    std::fflush(nullptr);
    const pid_t launcher = getpid();
    for (int k = 0; k < n_; ++k) {
        Partition& part = partitions_[static_cast<std::size_t>(k)];
        const pid_t pid = fork();
        if (pid == 0) run_child(k, launcher);
        if (pid < 0) {
            seg_->claim_failure("cannot start partition " + std::to_string(k) + ": " +
                                std::strerror(errno));
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
}

// In the forked partition: what a freshly started program would have (the signals as the
// launcher found them, no descriptor marked close-on-exec but the ready pipe, its results
// file and the run's output), then its part of the run. It dies with the launcher, and never
// returns into the caller's code.
void Launcher::run_child(int k, pid_t launcher) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != launcher) _exit(1);  // the launcher is gone already
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &signals_.old_mask(), nullptr);
    const int ready = ready_write_.get();
    const int results = partitions_[static_cast<std::size_t>(k)].results.get();
    close_cloexec_fds_except({ready, results, options_.output ? fileno(options_.output) : -1});
    const std::string name = "chanflow p" + std::to_string(k);
    prctl(PR_SET_NAME, name.c_str());
    int code = static_cast<int>(RunStatus::Failed);
    try {
        RunOptions o;
        o.workers = workers_;
        o.output = options_.output;
        o.trace = options_.trace;
        o.trace_origin_ns = options_.trace_origin_ns ? options_.trace_origin_ns : origin_ns_;
        const RunResult r = detail::run_partition(plan_, placement_, k, *seg_, ready, o);
        code = r.exit_code();
        if (!detail::leave_results(results, r)) code = static_cast<int>(RunStatus::Failed);
    } catch (const std::exception& e) {
        seg_->claim_failure("partition " + std::to_string(k) + ": " + e.what());
        seg_->abort();
    }
    std::fflush(nullptr);
    _exit(code);
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
    } else if (deadlocked_) {  // across partitions: what each said; within one: below
        r.status = RunStatus::Deadlock;
        if (!deadlock_report_.empty() && deadlock_report_.back() == '\n')
            deadlock_report_.pop_back();
        r.message = deadlock_report_;
    }
    // What each partition left: its statistics, trace, deadlock report and collected values.
    std::vector<RunStats> stats;
    std::vector<std::string> traces;
    std::string local_deadlocks;
    for (int k = 0; k < n_; ++k) {
        detail::PartitionResults left;
        try {
            if (!detail::take_results(partitions_[static_cast<std::size_t>(k)].results.get(),
                                      "partition " + std::to_string(k), left))
                continue;
        } catch (const std::exception&) {
            continue;  // a partition that died while writing them
        }
        stats.push_back(std::move(left.stats));
        traces.push_back(std::move(left.trace));
        if (!left.deadlock.empty()) local_deadlocks += left.deadlock + "\n";
        for (auto& [name, values] : left.collected) {
            auto& into = r.collected[name];
            into.insert(into.end(), std::make_move_iterator(values.begin()),
                        std::make_move_iterator(values.end()));
        }
    }
    if (r.status == RunStatus::Deadlock && r.message.empty() && !local_deadlocks.empty()) {
        local_deadlocks.pop_back();
        r.message = local_deadlocks;
    }
    r.stats = merge_partition_stats(plan_, stats);
    if (options_.trace) r.trace = merge_partition_traces(traces);
    return r;
}

RunResult Launcher::run() {
    make_segment();
    spawn();
    watch();
    if (options_.on_progress) options_.on_progress(progress(true));
    return result();
}

}  // namespace

RunResult run_processes(const Plan& plan, const Placement& placement, const RunOptions& options) {
    return Launcher(plan, placement, options).run();
}

}  // namespace chanflow
