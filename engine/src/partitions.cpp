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
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "codec.hpp"
#include "ring_waiter.hpp"
#include "runtime_impl.hpp"
#include "shm_ring.hpp"

extern char** environ;

namespace chanflow {
namespace {

using detail::Bytes;
using detail::Channel;
using detail::RingWaiter;
using detail::ShmRing;
using detail::ShmSegment;

// ---- which rings a run needs --------------------------------------------------------------

// One direction of one crossing channel: for `any` delivery the channel's home partition
// (its first reader's) collects from the writing partitions and hands out to the reading
// ones; for the other policies every reader has its own lane, fed from each partition
// that writes. Every partition computes the same list from the same plan: a ring's index
// is its place in it.
struct Bridge {
    std::size_t channel;
    int lane;  // the reader end of a per-reader policy; -1 for `any`
    int from, to;
};

std::set<int> partitions_of(const std::vector<EndRef>& ends, const Placement& pl) {
    std::set<int> out;
    for (const EndRef& e : ends) out.insert(pl.of_process[e.process]);
    return out;
}

int home_of(const PlanChannel& c, const Placement& pl) {
    return pl.of_process[c.readers.front().process];
}

std::vector<Bridge> bridges_of(const Plan& plan, const Placement& pl) {
    std::vector<Bridge> out;
    for (std::size_t c = 0; c < plan.channels.size(); ++c) {
        if (!pl.crosses(plan, c)) continue;
        const PlanChannel& pc = plan.channels[c];
        const std::set<int> writing = partitions_of(pc.writers, pl);
        if (pc.deliver == Deliver::Any) {
            const int home = home_of(pc, pl);
            for (int w : writing)
                if (w != home) out.push_back({c, -1, w, home});
            for (int r : partitions_of(pc.readers, pl))
                if (r != home) out.push_back({c, -1, home, r});
        } else {
            for (std::size_t r = 0; r < pc.readers.size(); ++r) {
                const int to = pl.of_process[pc.readers[r].process];
                for (int w : writing)
                    if (w != to) out.push_back({c, static_cast<int>(r), w, to});
            }
        }
    }
    return out;
}

// ---- the bridges --------------------------------------------------------------------------

// A frame is a kind byte and encoded values; a batch larger than a ring goes as a run of
// kMore frames ended by a kData frame.
constexpr int kDeadlockCheck = 100;  // ms between the launcher's deadlock checks
constexpr unsigned char kData = 'D';
constexpr unsigned char kMore = 'C';
constexpr std::size_t kFrameTarget = 64 * 1024;  // a batch is sent when it reaches this
constexpr std::size_t kRingBytes = 2 << 20;      // a 1 MiB tensor's batch fits whole

// The buffer of a local channel that only a bridge reads, or only a bridge writes: room
// for whole batches, so that a bridge thread and the workers hand over thousands of
// messages per wake-up rather than a channel's capacity. (The ring already buffers more
// than the channel's capacity: a bridged channel never was a rendezvous.)
constexpr std::size_t kBridgeBuffer = 8192;
std::size_t bridge_capacity(const PlanChannel& c) {
    return std::max(c.capacity, kBridgeBuffer);
}

// Reads the local side of a crossing channel and sends what it reads, in batches of what
// its port already holds. An ordinary process: when the ring is full it waits through the
// partition's RingWaiter, not on its thread.
NodeBody sender(ShmRing ring, RingWaiter& waiter) {
    return [ring, &waiter](ProcessContext& ctx) mutable -> Task {
        auto& in = ctx.in();
        Bytes frame;
        bool more = true;
        while (more) {
            auto x = co_await in.read();
            if (!x) break;
            frame.assign(1, kData);
            detail::encode(*x, frame);
            // Only what is held: a read that could wait would keep the batch from the reader.
            while (frame.size() < kFrameTarget && in.has_held()) {
                auto y = co_await in.read();
                if (!y) {
                    more = false;
                    break;
                }
                detail::encode(*y, frame);
            }
            // In pieces when larger than the ring: each piece goes with a kind byte written
            // over the last byte of the piece before (already sent), so nothing is copied.
            const std::size_t piece = ring.max_frame() - 1;
            for (std::size_t at = 1; at < frame.size();) {
                const std::size_t n = std::min(piece, frame.size() - at);
                unsigned char* start = frame.data() + at - 1;
                const unsigned char saved = *start;
                *start = at + n == frame.size() ? kData : kMore;
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
            if (frame.empty() || (frame[0] != kData && frame[0] != kMore)) {
                ring.release();
                throw std::runtime_error("channel '" + channel +
                                         "': a frame of an unknown kind from partition " +
                                         std::to_string(from));
            }
            // A whole batch is decoded where it lies in the ring; pieces are joined first.
            const bool whole = frame[0] == kData && pending.empty();
            const bool more = frame[0] == kMore;
            if (!whole) pending.insert(pending.end(), frame.begin() + 1, frame.end());
            std::span<const unsigned char> bytes =
                whole ? frame.subspan(1) : std::span<const unsigned char>(pending);
            if (more) {
                ring.release();
                continue;
            }
            batch.clear();
            std::string malformed;
            try {
                detail::Decoder d(bytes.data(), bytes.size());
                while (!d.done()) batch.push_back(d.next());
            } catch (const detail::CodecError& e) {
                malformed = e.what();
            }
            ring.release();  // the values own their bytes now: the room goes back
            if (!malformed.empty())
                throw std::runtime_error("channel '" + channel +
                                         "': a malformed frame from partition " +
                                         std::to_string(from) + ": " + malformed);
            pending.clear();
            bool gone = false;
            try {
                co_await out.write_all(batch);
            } catch (const WriterRetired&) {
                gone = true;
            }
            if (gone) {
                ring.reader_gone();
                co_return;
            }
        }
    };
}

// ---- one partition's runtime ---------------------------------------------------------------

using detail::Wiring;

void wire(const Plan& plan, const Placement& pl, int k, const std::vector<Bridge>& bridges,
          const ShmSegment& seg, detail::Runtime& rt, RingWaiter& waiter, Wiring& w) {
    w.targets.assign(plan.channels.size(), {});
    w.reader_of.assign(plan.channels.size(), {});
    auto local = [&](const std::vector<EndRef>& ends) {
        int n = 0;
        for (const EndRef& e : ends) n += pl.of_process[e.process] == k;
        return n;
    };
    auto add_sender = [&](std::size_t b, Channel& from, const std::string& label) {
        auto& p = rt.add_process("send " + label + " to " + std::to_string(bridges[b].to),
                                 "(bridge)", nullptr, sender(seg.ring(b), waiter));
        rt.bind_in(p, "in", from);
    };
    auto add_receiver = [&](std::size_t b, Channel& into, const std::string& label) {
        const std::string& name = plan.channels[bridges[b].channel].name;
        auto& p = rt.add_process("receive " + label + " from " + std::to_string(bridges[b].from),
                                 "(bridge)", nullptr,
                                 receiver(seg.ring(b), waiter, name, bridges[b].from));
        rt.bind_out(p, "out", name, {&into}, Deliver::Any);
    };
    for (std::size_t c = 0; c < plan.channels.size(); ++c) {
        const PlanChannel& pc = plan.channels[c];
        const int lw = local(pc.writers), lr = local(pc.readers);
        if (!pl.crosses(plan, c)) {  // as on threads, where its ends are
            if (lw + lr > 0) detail::add_local_channel(rt, pc, lw, lr, c, w);
            continue;
        }
        const std::string label = "'" + pc.name + "'";
        auto bridges_here = [&](int lane, bool into_k) {
            std::vector<std::size_t> out;
            for (std::size_t b = 0; b < bridges.size(); ++b)
                if (bridges[b].channel == c && bridges[b].lane == lane &&
                    (into_k ? bridges[b].to : bridges[b].from) == k)
                    out.push_back(b);
            return out;
        };
        if (pc.deliver == Deliver::Any) {
            const int home = home_of(pc, pl);
            const auto in = bridges_here(-1, true), out = bridges_here(-1, false);
            auto local_readers = [&](Channel& ch) {
                for (std::size_t r = 0; r < pc.readers.size(); ++r)
                    if (pl.of_process[pc.readers[r].process] == k) w.reader_of[c][r] = &ch;
            };
            if (k == home) {
                Channel& ch = rt.add_channel(pc.name, pc.capacity, lw + static_cast<int>(in.size()),
                                             lr + static_cast<int>(out.size()));
                w.targets[c] = {&ch};
                local_readers(ch);
                for (std::size_t b : in) add_receiver(b, ch, label);
                for (std::size_t b : out) add_sender(b, ch, label);
                continue;
            }
            // Elsewhere: what is written here goes home, what is read here comes from home.
            if (lw > 0) {
                Channel& ch = rt.add_channel(pc.name, bridge_capacity(pc), lw, 1);
                w.targets[c] = {&ch};
                for (std::size_t b : out) add_sender(b, ch, label);
            }
            if (lr > 0) {
                Channel& ch = rt.add_channel(pc.name, bridge_capacity(pc), 1, lr);
                local_readers(ch);
                for (std::size_t b : in) add_receiver(b, ch, label);
            }
            continue;
        }
        // Per-reader lanes: each lives with its reader; writers elsewhere feed it by bridge.
        for (std::size_t r = 0; r < pc.readers.size(); ++r) {
            const int at = pl.of_process[pc.readers[r].process];
            const std::string lane_label =
                label + " (" + plan.processes[pc.readers[r].process].name + ")";
            if (at == k) {
                const auto in = bridges_here(static_cast<int>(r), true);
                Channel& ch = rt.add_channel(pc.name, lw > 0 ? pc.capacity : bridge_capacity(pc),
                                             lw + static_cast<int>(in.size()), 1);
                w.reader_of[c][r] = &ch;
                if (lw > 0) w.targets[c].push_back(&ch);
                for (std::size_t b : in) add_receiver(b, ch, lane_label);
            } else if (lw > 0) {
                Channel& proxy = rt.add_channel(pc.name, bridge_capacity(pc), lw, 1);
                w.targets[c].push_back(&proxy);
                for (std::size_t b : bridges_here(static_cast<int>(r), false))
                    add_sender(b, proxy, lane_label);
            }
        }
    }
}

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

// This partition's share of the run's statistics: its own processes (not the bridges),
// and for each channel with an end here what its processes here wrote and read. Summed over
// the partitions (merge_partition_stats) each message counts once, where it was written and
// where it was read, whatever bridges carried it between.
RunStats partition_stats(const Plan& plan, const Placement& pl, int k, const detail::Runtime& rt) {
    RunStats st;
    st.wall = rt.wall_seconds();
    const double spt = detail::kSecondsPerTick;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> moved;  // writes, reads
    std::map<std::string, std::size_t> peak;
    for (const auto& p : rt.processes()) {
        if (!p->plan) continue;  // a bridge
        for (const auto& out : p->out_storage) moved[out->channel_name()].first += out->writes();
        for (const auto& in : p->in_storage) moved[in->channel_name()].second += in->reads();
        if (p->plan->hidden) continue;
        ProcessStats ps;
        ps.name = p->name;
        ps.group = p->group;
        ps.replica = p->replica;
        ps.node = p->type ? p->type->name : "";
        for (const auto& in : p->in_storage) ps.messages_in += in->reads();
        for (const auto& out : p->out_storage) ps.messages_out += out->writes();
        ps.busy = static_cast<double>(p->busy) * spt;
        ps.blocked_read = static_cast<double>(p->blocked_read) * spt;
        ps.blocked_write = static_cast<double>(p->blocked_write) * spt;
        ps.ready = static_cast<double>(p->ready) * spt;
        st.processes.push_back(std::move(ps));
    }
    for (const auto& ch : rt.channels())
        peak[ch->name()] = std::max(peak[ch->name()], ch->counters().peak);
    for (const PlanChannel& pc : plan.channels) {
        if (pc.hidden) continue;
        bool here = false;
        for (const auto* ends : {&pc.writers, &pc.readers})
            for (const EndRef& e : *ends) here = here || pl.of_process[e.process] == k;
        if (!here) continue;
        ChannelStats cs;
        cs.name = pc.name;
        cs.kind = channel_kind_name(pc.kind);
        cs.deliver = deliver_name(pc.deliver);
        cs.capacity = pc.capacity;
        cs.writes = moved[pc.name].first;
        cs.reads = moved[pc.name].second;
        cs.peak = std::min(peak[pc.name], pc.capacity > 0 ? pc.capacity : peak[pc.name]);
        st.channels.push_back(std::move(cs));
    }
    return st;
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

std::string merge_partition_traces(const std::vector<std::string>& parts) {
    std::vector<std::string> events;
    for (std::size_t k = 0; k < parts.size(); ++k) {
        const std::string pid = "\"pid\": " + std::to_string(k + 1);
        events.push_back("{\"ph\": \"M\", " + pid +
                         ", \"name\": \"process_name\", \"args\": {\"name\": \"partition " +
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
    const std::vector<Bridge> bridges = bridges_of(plan, placement);
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
        // A bridge as a peer says where the other end is: "writer 'receive 'c' from 1'
        // waits" reads "writers in partition 1".
        static const std::regex bridge_peer(
            R"((writer|reader) '(receive|send) '[^']*' (from|to) (\d+)' waits)");
        std::string report;
        for (const std::string& line : blocked)
            if (line.rfind("'send ", 0) != 0 && line.rfind("'receive ", 0) != 0)
                report +=
                    "deadlock: " + std::regex_replace(line, bridge_peer, "$1s in partition $4") +
                    '\n';
        seg.set_quiet(k, report);
    });
    RingWaiter waiter(rt.scheduler(), [&seg, k] { seg.set_woken(k); });
    Wiring w;
    wire(plan, placement, k, bridges, seg, rt, waiter, w);
    detail::add_plan_processes(
        rt, plan, [&](std::size_t i) { return placement.of_process[i] == k; }, w);
    RunResult result = rt.run();
    result.stats = partition_stats(plan, placement, k, rt);
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
    const std::vector<Bridge> bridges = bridges_of(plan, placement);
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
