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
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>

#include "bridges.hpp"
#include "codec.hpp"
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
constexpr int kDeadlockCheck = 100;          // ms between the launcher's deadlock checks
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

// ---- one partition's runtime ---------------------------------------------------------------

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

}  // namespace

RunStats merge_partition_stats(const Plan& plan, const std::vector<RunStats>& parts) {
    RunStats out;
    std::map<std::string, ProcessStats> processes;
    std::map<std::string, ChannelStats> channels;
    for (const RunStats& p : parts) {
        out.wall = std::max(out.wall, p.wall);
        for (const ProcessStats& ps : p.processes) processes[ps.name] = ps;
        for (const ChannelStats& cs : p.channels) {
            auto [it, fresh] = channels.try_emplace(cs.name, cs);
            if (fresh) continue;
            it->second.writes += cs.writes;
            it->second.reads += cs.reads;
            it->second.peak = std::max(it->second.peak, cs.peak);
        }
    }
    for (const PlanProcess& pp : plan.processes)  // in plan order, as on threads
        if (auto it = processes.find(pp.name); it != processes.end())
            out.processes.push_back(it->second);
    for (const PlanChannel& pc : plan.channels)
        if (auto it = channels.find(pc.name); it != channels.end())
            out.channels.push_back(it->second);
    return out;
}

std::string merge_partition_traces(const std::vector<std::string>& parts, const std::string& unit) {
    std::vector<std::string> events;
    for (std::size_t k = 0; k < parts.size(); ++k) {
        const std::string pid = "\"pid\": " + std::to_string(k + 1);
        events.push_back("{\"ph\": \"M\", " + pid +
                         ", \"name\": \"process_name\", \"args\": {\"name\": \"" + unit + " " +
                         std::to_string(k) + "\"}}");
        std::istringstream in(parts[k]);
        std::string line;
        std::getline(in, line);  // the frame's first line
        while (std::getline(in, line) && line != "]}") {
            if (!line.empty() && line.back() == ',') line.pop_back();
            if (line.empty()) continue;
            const auto at = line.find("\"pid\": 1,");
            if (at != std::string::npos) line.replace(at, 8, pid);
            events.push_back(std::move(line));
        }
    }
    std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
    for (std::size_t i = 0; i < events.size(); ++i)
        out += events[i] + (i + 1 < events.size() ? ",\n" : "\n");
    return out + "]}\n";
}

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

    // Progress goes to the segment, for the launcher to add up (run --progress).
    RunOptions with_progress = options;
    with_progress.on_progress = [&seg, k, user = options.on_progress](const Progress& p) {
        seg.set_progress(k, p);
        if (user) user(p);
    };
    detail::Runtime rt(with_progress);
    rt.share_output();
    rt.on_failure([&seg](const std::string& message) {
        seg.claim_failure(message);
        seg.abort();
    });
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
    return result;
}

// ---- the launcher -------------------------------------------------------------------------

namespace {

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        return "killed by signal " + std::to_string(sig) +
               (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
    }
    return "exit code " + std::to_string(WEXITSTATUS(status));
}

std::string processes_of(const Plan& plan, const Placement& pl, int k) {
    std::string s;
    std::size_t n = 0;
    for (std::size_t i : pl.processes_of(k)) {
        if (plan.processes[i].hidden) continue;
        if (n++ == 8) {
            s += ", ...";
            break;
        }
        s += (s.empty() ? "" : ", ") + plan.processes[i].name;
    }
    return s.empty() ? "no processes" : "processes " + s;
}

// Moves a descriptor above the ones a partition is given (3 and 4), so that giving one
// cannot overwrite the other before it is given. Keeps close-on-exec.
int above_child_fds(int fd) {
    if (fd < 0 || fd > 4) return fd;
    const int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return moved;
}

int pidfd_open(pid_t pid) {
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace

RunResult launch_partitions(const Plan& plan, const Placement& placement,
                            const PartitionCommand& command,
                            const std::function<void(const Progress&)>& on_progress) {
    const auto started = std::chrono::steady_clock::now();
    auto next_progress = started + std::chrono::milliseconds(200);
    const int n = placement.partitions;
    if (n > ShmSegment::kMaxPartitions)
        throw std::invalid_argument("the processes backend runs at most " +
                                    std::to_string(ShmSegment::kMaxPartitions) + " partitions");
    const std::vector<Bridge> bridges = detail::bridges_of(plan, placement);
    std::random_device rd;
    const std::string name =
        "/chanflow." + std::to_string(getpid()) + "." + std::to_string(rd() % 1000000);
    // SIGINT, SIGTERM and SIGHUP arrive through a signalfd in the wait below.
    sigset_t stops, old_mask;
    sigemptyset(&stops);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stops, s);
    sigprocmask(SIG_BLOCK, &stops, &old_mask);
    const int sigfd = signalfd(-1, &stops, SFD_CLOEXEC);
    auto give_up = [&](const std::string& why) {  // before any partition started
        if (sigfd >= 0) close(sigfd);
        sigprocmask(SIG_SETMASK, &old_mask, nullptr);
        return std::runtime_error(why);
    };
    // The segment's name lives only between these lines: the partitions inherit a
    // descriptor, so nothing can be left in /dev/shm however the run ends.
    std::optional<ShmSegment> made;
    try {
        made.emplace(
            ShmSegment::create(name, std::max<std::size_t>(1, bridges.size()), kRingBytes));
    } catch (const std::exception& e) {
        throw give_up(e.what());
    }
    ShmSegment& seg = *made;
    const int shm_fd = above_child_fds(shm_open(name.c_str(), O_RDWR, 0));
    ShmSegment::unlink(name);
    if (shm_fd < 0)
        throw give_up(std::string("cannot open shared memory: ") + std::strerror(errno));
    constexpr int kShmFd = 4;
    const std::string segment_arg = "fd:" + std::to_string(kShmFd);

    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || (ready[1] = above_child_fds(ready[1])) < 0) {
        close(shm_fd);
        throw give_up(std::string("cannot make a pipe: ") + std::strerror(errno));
    }
    // The write end goes to every partition (not close-on-exec there: dup2 clears the flag).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "CHANFLOW_READY_FD=", 18) &&
            std::strncmp(*e, "CHANFLOW_LAUNCHER_PID=", 22))
            env_strings.emplace_back(*e);
    constexpr int kReadyFd = 3;
    env_strings.push_back("CHANFLOW_READY_FD=" + std::to_string(kReadyFd));
    env_strings.push_back("CHANFLOW_LAUNCHER_PID=" + std::to_string(getpid()));
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);

    std::vector<pid_t> pids(static_cast<std::size_t>(n), -1);
    std::vector<int> pidfds(static_cast<std::size_t>(n), -1);
    std::vector<int> statuses(static_cast<std::size_t>(n), 0);
    std::vector<bool> running(static_cast<std::size_t>(n), false);
    bool spawn_failed = false;
    for (int k = 0; k < n && !spawn_failed; ++k) {
        std::vector<std::string> args = command(k, segment_arg);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, ready[1], kReadyFd);
        posix_spawn_file_actions_adddup2(&fa, shm_fd, kShmFd);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setsigmask(&attr, &old_mask);
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
            seg.claim_failure("cannot start partition " + std::to_string(k) + " (" + args[0] +
                              "): " + std::strerror(rc));
            seg.abort();
            spawn_failed = true;
            break;
        }
        pids[static_cast<std::size_t>(k)] = pid;
        pidfds[static_cast<std::size_t>(k)] = pidfd_open(pid);
        running[static_cast<std::size_t>(k)] = true;
    }
    close(ready[1]);
    close(shm_fd);

    // Watch: the ready pipe (then the name can go), signals, and every partition's end.
    int ready_count = 0;
    bool ready_open = true, deadlocked = false;
    auto progress_of = [&](bool final) {
        Progress p;
        p.elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        p.final = final;
        for (int k = 0; k < n; ++k) seg.add_progress(k, p);
        return p;
    };
    std::string report;  // of a deadlock across partitions
    // Deadlocked across partitions: every live partition quiet (nothing runs until a ring
    // changes), no ring holding what its waiting side waits for, and so at two checks in a
    // row with no ring wake-up between them.
    std::vector<std::uint64_t> last_wakes;
    auto deadlocked_everywhere = [&] {
        std::vector<std::uint64_t> wakes;
        bool all_quiet = ready_count >= n;
        for (int k = 0; k < n && all_quiet; ++k) {
            if (!running[static_cast<std::size_t>(k)]) {
                wakes.push_back(0);
                continue;
            }
            const auto st = seg.partition(k);
            all_quiet = st.quiet;
            wakes.push_back(st.wakes);
        }
        for (std::size_t i = 0; i < bridges.size() && all_quiet; ++i)
            all_quiet = !seg.wake_pending(i);
        const bool again = all_quiet && wakes == last_wakes;
        last_wakes = all_quiet ? wakes : std::vector<std::uint64_t>{};
        return again;
    };
    std::optional<std::chrono::steady_clock::time_point> kill_at;
    auto stop_all = [&](const std::string& why) {
        seg.claim_failure(why);
        seg.abort();
        if (!kill_at) kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    };
    if (spawn_failed) kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    auto live = [&] { return std::count(running.begin(), running.end(), true); };
    while (live() > 0) {
        std::vector<pollfd> fds;
        std::vector<int> who;  // -1 ready pipe, -2 signals, else the partition
        if (ready_open) {
            fds.push_back({ready[0], POLLIN, 0});
            who.push_back(-1);
        }
        if (sigfd >= 0) {
            fds.push_back({sigfd, POLLIN, 0});
            who.push_back(-2);
        }
        for (int k = 0; k < n; ++k)
            if (running[static_cast<std::size_t>(k)]) {
                fds.push_back({pidfds[static_cast<std::size_t>(k)], POLLIN, 0});
                who.push_back(k);
            }
        int timeout = kDeadlockCheck;  // the deadlock check runs between events
        if (kill_at) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                *kill_at - std::chrono::steady_clock::now());
            timeout = static_cast<int>(std::max<std::int64_t>(0, left.count()));
        }
        const int got = poll(fds.data(), fds.size(), timeout);
        if (on_progress && std::chrono::steady_clock::now() >= next_progress) {
            on_progress(progress_of(false));
            next_progress = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        }
        if (got < 0 && errno == EINTR) continue;
        if (got == 0 && !kill_at) {
            if (deadlocked_everywhere()) {
                deadlocked = true;
                for (int k = 0; k < n; ++k)
                    if (running[static_cast<std::size_t>(k)]) report += seg.partition(k).report;
                seg.abort();
                kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            }
            continue;
        }
        if (got == 0 && kill_at) {  // they had their time after the abort
            for (int k = 0; k < n; ++k)
                if (running[static_cast<std::size_t>(k)])
                    kill(pids[static_cast<std::size_t>(k)], SIGKILL);
            kill_at = std::chrono::steady_clock::now() + std::chrono::hours(1);
            continue;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            if (who[i] == -1) {
                char buf[64];
                const ssize_t r = read(ready[0], buf, sizeof buf);
                if (r > 0) ready_count += static_cast<int>(r);
                if (r <= 0 || ready_count >= n) {
                    ready_open = false;
                    close(ready[0]);
                }
            } else if (who[i] == -2) {
                signalfd_siginfo si{};
                if (read(sigfd, &si, sizeof si) == sizeof si) {
                    const char* abbrev = sigabbrev_np(static_cast<int>(si.ssi_signo));
                    stop_all(std::string("interrupted by SIG") + (abbrev ? abbrev : "?"));
                    for (int k = 0; k < n; ++k)
                        if (running[static_cast<std::size_t>(k)])
                            kill(pids[static_cast<std::size_t>(k)], SIGTERM);
                }
            } else {
                const int k = who[i];
                const auto kk = static_cast<std::size_t>(k);
                int status = 0;
                if (waitpid(pids[kk], &status, WNOHANG) <= 0) continue;
                running[kk] = false;
                close(pidfds[kk]);
                statuses[kk] = status;
                const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                const std::string who_k = "partition " + std::to_string(k) + " (" +
                                          processes_of(plan, placement, k) + ")";
                if (seg.aborted()) continue;  // stopping already: its end says nothing new
                if (code == 3) {  // a deadlock it reported itself: the others cannot go on
                    deadlocked = true;
                    seg.abort();
                    if (!kill_at)
                        kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
                } else if (code != 0 && code != 1) {
                    stop_all(who_k + " died: " + describe_exit(status));
                } else if (code == 1 && seg.failure().empty()) {
                    stop_all(who_k + " ended with " + describe_exit(status));
                }
            }
        }
    }
    if (ready_open) close(ready[0]);
    if (on_progress) on_progress(progress_of(true));
    if (sigfd >= 0) close(sigfd);
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);

    RunResult result;
    const std::string failure = seg.failure();
    if (!failure.empty()) {
        result.status = RunStatus::Failed;
        result.message = failure;
    } else if (deadlocked) {  // across partitions: what each said; within one: it said so
        result.status = RunStatus::Deadlock;
        if (!report.empty() && report.back() == '\n') report.pop_back();
        result.message = report;
    }
    return result;
}

}  // namespace chanflow
