#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>

#include "chanflow/expr.hpp"
#include "chanflow/runtime.hpp"
#include "gpu_module.hpp"
#include "runtime_impl.hpp"

namespace chanflow {

const char* version() noexcept {
    return CHANFLOW_VERSION;
}
const char* build_features() noexcept {
    return CHANFLOW_FEATURES;
}

namespace detail {

namespace {
constexpr unsigned long kTickerSlackNs = 3'000'000;
std::uint64_t steady_micros() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}
}  // namespace

// Keeps stats_clock 1 to 4 ms fresh while it lives. The ticker sleeps a millisecond with a
// timer slack of 3 ms: the kernel wakes it with the next interrupt it takes anyway (its own
// scheduler tick, every 4 ms at most on a busy core), not with one of its own. On a core
// that a worker keeps busy (an MPI rank bound to one core, polling), each interrupt of its
// own stopped the worker for tens of microseconds on these VMs: a ping-pong across ranks
// lost about a tenth of its time to them. A traced run ticks every millisecond.
StatsTicker::StatsTicker(std::function<void()> every_tick, bool exact)
    : every_tick_(std::move(every_tick)) {
    stats_clock.store(steady_micros(), std::memory_order_relaxed);
    thread_ = std::thread([this, exact] {
        if (!exact) prctl(PR_SET_TIMERSLACK, kTickerSlackNs, 0, 0, 0);  // this thread only
        std::unique_lock lock(mu_);
        while (!stop_) {
            cv_.wait_for(lock, std::chrono::milliseconds(1));
            stats_clock.store(steady_micros(), std::memory_order_relaxed);
            if (every_tick_) every_tick_();
        }
    });
}

StatsTicker::~StatsTicker() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    stats_clock.store(steady_micros(), std::memory_order_relaxed);
}

Runtime::Runtime(const RunOptions& options) : options_(options) {
    sched_ = std::make_unique<Scheduler>(
        options.workers, Scheduler::Hooks{[this] { flush_output(); }}, options.trace);
}

Runtime::~Runtime() {
    sched_.reset();  // join the threads first
    // Coroutines that never ran (a run that was never started) are destroyed here.
    for (auto& p : processes_)
        if (p->handle && !p->ended) p->handle.destroy();
}

Channel& Runtime::add_channel(std::string name, std::size_t capacity, int writers, int readers) {
    channels_.push_back(
        std::make_unique<Channel>(std::move(name), capacity, writers, readers, *sched_));
    return *channels_.back();
}

ProcessState& Runtime::add_process(std::string name, std::string group, const NodeType* type,
                                   NodeBody body) {
    auto p = std::make_unique<ProcessState>();
    p->name = std::move(name);
    p->group = std::move(group);
    p->type = type;
    p->body = std::move(body);
    p->runtime = this;
    p->own_thread = type && type->own_thread;
    processes_.push_back(std::move(p));
    return *processes_.back();
}

InPort& Runtime::bind_in(ProcessState& p, const std::string& port, Channel& ch) {
    p.in_storage.push_back(std::make_unique<InPort>(&ch));
    InPort* in = p.in_storage.back().get();
    auto it = std::find_if(p.ins.begin(), p.ins.end(), [&](auto& e) { return e.first == port; });
    if (it == p.ins.end()) it = p.ins.insert(p.ins.end(), {port, {}});
    it->second.push_back(in);
    ends_[&ch].readers.push_back(&p);
    return *in;
}

OutPort& Runtime::bind_out(ProcessState& p, const std::string& port, std::string channel_name,
                           std::vector<Channel*> targets, Deliver deliver) {
    for (auto* ch : targets) ends_[ch].writers.push_back(&p);
    p.out_storage.push_back(
        std::make_unique<OutPort>(std::move(channel_name), std::move(targets), deliver));
    OutPort* out = p.out_storage.back().get();
    auto it = std::find_if(p.outs.begin(), p.outs.end(), [&](auto& e) { return e.first == port; });
    if (it == p.outs.end()) it = p.outs.insert(p.outs.end(), {port, {}});
    it->second.push_back(out);
    return *out;
}

RunResult Runtime::run() {
    std::vector<ProcessState*> initial;
    initial.reserve(processes_.size());
    for (auto& p : processes_) {
        const NodeBody& body = p->body ? p->body : p->type->body;
        if (!body) throw std::logic_error("process '" + p->name + "' has no body");
        Task task = body(p->context);
        p->handle = task.release();
        p->handle.promise().process = p.get();
        sched_->add_process(p.get());
        initial.push_back(p.get());
    }

    RunResult result;
    const auto clock_start = std::chrono::steady_clock::now();
    const std::int64_t start_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_start.time_since_epoch())
            .count();
    std::optional<StatsTicker> ticker;
    auto next_progress = clock_start + options_.progress_interval;
    auto every_tick = [&, this] {
        if (on_tick_) on_tick_();
        if (options_.trace) sample_occupancy();
        if (!options_.on_progress) return;
        if (const auto now = std::chrono::steady_clock::now(); now >= next_progress) {
            options_.on_progress(progress(clock_start, false));
            next_progress = now + options_.progress_interval;  // a slow callback skips samples
        }
    };
    if (options_.trace || options_.on_progress || on_tick_)
        ticker.emplace(every_tick, options_.trace);
    else
        ticker.emplace();
    sched_->start(initial);
    if (sched_->wait() == Scheduler::Stop::Deadlock) {
        result.blocked = describe_blocked();
        // Unblock everything so that every coroutine unwinds and ends.
        for (auto& ch : channels_) ch->poison();
        sched_->wait_all_ended();
        std::lock_guard lock(mu_);
        if (!failed_) {
            result.status = RunStatus::Deadlock;
            for (const auto& line : result.blocked) {
                if (!result.message.empty()) result.message += '\n';
                result.message += "deadlock: " + line;
            }
        }
    }
    ticker.reset();
    if (options_.on_progress) options_.on_progress(progress(clock_start, true));
    sched_->shutdown();  // every thread joined: their trace rings are quiet
    if (options_.trace)
        result.trace = trace_json(options_.trace_origin_ns ? options_.trace_origin_ns : start_ns);
    // The scheduler stays, stopped, until the runtime goes: a transport's own thread (the
    // MPI backend's) may still ask it whether anything waits until that thread ends.
    flush_output();
    wall_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - clock_start).count();
    const int output_error = [this] {
        std::lock_guard lock(output_mu_);
        return output_error_;
    }();
    std::string late_failure;  // at the last flush, when no process was left to fail
    {
        std::lock_guard lock(mu_);
        if (!failed_ && output_error != 0) {
            failed_ = true;
            failure_ = late_failure = output_failure(output_error);
        }
        if (failed_) {
            result.status = RunStatus::Failed;
            result.message = failure_;
            result.output_closed = output_error == EPIPE;
        }
        result.collected = std::move(collected_);
    }
    if (!late_failure.empty() && on_failure_) on_failure_(late_failure);
    return result;
}

void Runtime::finish(ProcessState& p, std::exception_ptr error) {
    bool poison = false;
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const WriterRetired&) {
            // every reader of an output retired: a normal end
        } catch (const Poisoned&) {
            poison = true;
        } catch (const std::exception& e) {
            poison = true;
            record_failure(p, e.what());
        } catch (...) {
            poison = true;
            record_failure(p, "unknown exception");
        }
    }
    for (auto& in : p.in_storage) poison ? in->poison() : in->retire();
    for (auto& out : p.out_storage) poison ? out->poison() : out->retire();
}

Progress Runtime::progress(std::chrono::steady_clock::time_point start, bool final) {
    Progress p;
    p.elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    p.final = final;
    for (const auto& ps : processes_) {
        const std::uint64_t total = ps->progress_total.load(std::memory_order_acquire);
        if (total == 0) continue;
        const std::uint64_t done = ps->progress_done.load(std::memory_order_relaxed);
        auto it = std::find_if(p.sources.begin(), p.sources.end(),
                               [&](const SourceProgress& s) { return s.name == ps->group; });
        if (it == p.sources.end())
            it = p.sources.insert(p.sources.end(), {ps->group, ps->progress_unit, 0, 0});
        it->done += done;
        it->total += total;
    }
    for (const auto& ch : channels_) p.messages += ch->writes_now();
    return p;
}

// Up to 64 channels, in the order they were made (the plan's; an ordered fan-out's lanes
// come last), into a bounded buffer.
void Runtime::sample_occupancy() {
    constexpr std::size_t kChannels = 64, kSamples = 1 << 20;
    const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    for (std::size_t c = 0; c < channels_.size() && c < kChannels; ++c) {
        if (occupancy_.size() >= kSamples) return;
        occupancy_.push_back({now, static_cast<std::uint32_t>(c),
                              static_cast<std::uint32_t>(channels_[c]->occupancy())});
    }
}

std::string Runtime::trace_json(std::int64_t start_ns) const {
    std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
    auto us = [&](std::int64_t ns) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns - start_ns) / 1000.0);
        return std::string(buf);
    };
    auto quoted = [](const std::string& s) {
        std::string q;
        append_json(q, Value(s));
        return q;
    };
    bool first = true;
    auto event = [&](const std::string& e) {
        if (!first) out += ",\n";
        first = false;
        out += e;
    };
    const auto traces = sched_->traces();
    const unsigned workers = sched_->worker_count();
    for (std::size_t t = 0; t < traces.size(); ++t) {
        const std::string tid = std::to_string(t);
        const std::string name =
            t < workers ? "worker " + tid : "own thread " + std::to_string(t - workers);
        event("{\"ph\": \"M\", \"pid\": 1, \"tid\": " + tid +
              ", \"name\": \"thread_name\", \"args\": {\"name\": " + quoted(name) + "}}");
        for (const TraceSlice& s : traces[t]->slices())
            event("{\"ph\": \"X\", \"pid\": 1, \"tid\": " + tid +
                  ", \"cat\": \"process\", \"name\": " + quoted(s.process->name) +
                  ", \"ts\": " + us(s.begin_ns) + ", \"dur\": " +
                  std::to_string(static_cast<double>(s.end_ns - s.begin_ns) / 1000.0) + "}");
    }
    // Work done on a device for a process: a track of its own after the threads'.
    const std::string device_tid = std::to_string(traces.size());
    bool device_track = false;
    for (const auto& p : processes_) {
        if (!p->device) continue;
        for (const auto& [begin, end] : p->device->slices) {
            if (!device_track) {
                event("{\"ph\": \"M\", \"pid\": 1, \"tid\": " + device_tid +
                      ", \"name\": \"thread_name\", \"args\": {\"name\": \"GPU\"}}");
                device_track = true;
            }
            event("{\"ph\": \"X\", \"pid\": 1, \"tid\": " + device_tid +
                  ", \"cat\": \"gpu\", \"name\": " + quoted(p->name) + ", \"ts\": " + us(begin) +
                  ", \"dur\": " + std::to_string(static_cast<double>(end - begin) / 1000.0) + "}");
        }
    }
    for (const OccupancySample& o : occupancy_)
        event("{\"ph\": \"C\", \"pid\": 1, \"name\": " +
              quoted("channel " + channels_[o.channel]->name()) + ", \"ts\": " + us(o.ns) +
              ", \"args\": {\"messages\": " + std::to_string(o.messages) + "}}");
    out += "\n]}\n";
    return out;
}

void Runtime::record_failure(const ProcessState& p, const std::string& why) {
    std::string message;
    {
        std::lock_guard lock(mu_);
        if (failed_) return;
        failed_ = true;
        failure_ = "process '" + p.name + "' failed: " + why;
        message = failure_;
    }
    if (on_failure_) on_failure_(message);
}

void Runtime::on_quiet(std::function<void(const std::vector<std::string>&)> f) {
    sched_->set_quiet_hook([this, f = std::move(f)] { f(describe_blocked()); });
}

void Runtime::write_lines(std::string_view lines) {
    std::lock_guard lock(output_mu_);
    if (output_error_ == 0) {
        output_.append(lines);
        if (output_.size() >= (1u << 16)) output_error_ = write_output_locked();
        output_pending_.store(true, std::memory_order_relaxed);
    }
    // The writing process fails, and with it the run: nothing printed is lost unsaid.
    if (output_error_ != 0) throw std::runtime_error(output_failure(output_error_));
}

void Runtime::flush_output() {
    if (!output_pending_.exchange(false, std::memory_order_relaxed)) return;
    std::lock_guard lock(output_mu_);
    if (output_error_ != 0) return;
    output_error_ = write_output_locked();
    if (output_error_ == 0 && std::fflush(options_.output) != 0)
        output_error_ = errno ? errno : EIO;
}

std::string Runtime::output_failure(int error) {
    if (error == EPIPE) return "the output was closed (broken pipe)";
    return std::string("cannot write the output: ") + std::strerror(error);
}

int Runtime::write_output_locked() {
    if (output_.empty()) return 0;
    if (!shared_output_) {
        errno = 0;
        const bool whole =
            std::fwrite(output_.data(), 1, output_.size(), options_.output) == output_.size();
        output_.clear();
        if (whole) return 0;
        return errno != 0 ? errno : EIO;
    }
    // Whole lines, at most PIPE_BUF bytes a write: a pipe or file shared with other
    // partitions gets each chunk in one piece. A longer line goes alone.
    if (std::fflush(options_.output) != 0) {
        output_.clear();
        return errno ? errno : EIO;
    }
    const int fd = fileno(options_.output);
    std::size_t from = 0;
    while (from < output_.size()) {
        std::size_t to = from;
        for (std::size_t nl; to < output_.size(); to = nl + 1) {
            nl = output_.find('\n', to);
            if (nl == std::string::npos) nl = output_.size() - 1;
            if (nl + 1 - from > PIPE_BUF && to > from) break;
        }
        for (std::size_t at = from; at < to;) {
            const ssize_t n = ::write(fd, output_.data() + at, to - at);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                const int error = n < 0 ? errno : EIO;
                output_.clear();
                return error;
            }
            at += static_cast<std::size_t>(n);
        }
        from = to;
    }
    output_.clear();
    return 0;
}

void Runtime::collect(const ProcessState& p, Value v) {
    std::lock_guard lock(mu_);
    collected_[p.group].push_back(std::move(v));
}

std::string Runtime::describe_wait(const ProcessState& p, bool with_peers) const {
    auto quote = [](const std::string& s) { return "'" + s + "'"; };
    std::string s = quote(p.name);
    if (p.wait == WaitKind::Alt) {
        s += " waits in an alternation on ";
        for (std::size_t i = 0; i < p.alt_channels.size(); ++i)
            s += (i ? ", " : "") + quote(p.alt_channels[i]->name());
        return s;
    }
    if (p.wait == WaitKind::Sleep || p.wait == WaitKind::Completion || !p.wait_channel)
        return s + " waits";
    const Channel* ch = p.wait_channel;
    const bool reading = p.wait == WaitKind::Read;
    s += reading ? " waits to read " : " waits to write ";
    s += quote(ch->name());
    if (!with_peers) return s;
    s += reading ? " (empty" : (ch->capacity() == 0 ? " (rendezvous" : " (full");
    auto it = ends_.find(ch);
    if (it != ends_.end()) {
        for (const ProcessState* peer : reading ? it->second.writers : it->second.readers) {
            if (peer == &p || peer->ended || peer->wait == WaitKind::None) continue;
            s += reading ? ", writer " : ", reader ";
            s += describe_wait(*peer, false);
        }
    }
    return s + ")";
}

std::vector<std::string> Runtime::describe_blocked() const {
    std::vector<std::string> lines;
    for (const auto& p : processes_)
        if (!p->ended && p->wait != WaitKind::None) lines.push_back(describe_wait(*p, true));
    return lines;
}

}  // namespace detail

// ---- ProcessContext -----------------------------------------------------------------------

const std::string& ProcessContext::name() const noexcept {
    return state_->name;
}
int ProcessContext::replica() const noexcept {
    return state_->replica;
}
int ProcessContext::replicas() const noexcept {
    return state_->replicas;
}
const NodeType& ProcessContext::node_type() const noexcept {
    return *state_->type;
}

const Value& ProcessContext::param(std::string_view name) const {
    if (state_->plan) {
        auto it = state_->plan->params.find(name);
        if (it != state_->plan->params.end()) return it->second;
    }
    throw std::out_of_range("process '" + state_->name + "' has no parameter '" +
                            std::string(name) + "'");
}

bool ProcessContext::has_param(std::string_view name) const noexcept {
    return state_->plan && state_->plan->params.find(name) != state_->plan->params.end();
}

const Expr& ProcessContext::expr(std::string_view name) const {
    if (state_->plan) {
        auto it = state_->plan->exprs.find(name);
        if (it != state_->plan->exprs.end()) return it->second;
    }
    throw std::out_of_range("process '" + state_->name + "' has no expression '" +
                            std::string(name) + "'");
}

namespace {
template <class Port>
std::span<Port* const> find_ports(
    const std::vector<std::pair<std::string, std::vector<Port*>>>& ports, std::string_view name) {
    for (const auto& [n, list] : ports)
        if (n == name) return list;
    return {};
}
}  // namespace

std::span<InPort* const> ProcessContext::ins(std::string_view port) {
    return find_ports(state_->ins, port);
}
std::span<OutPort* const> ProcessContext::outs(std::string_view port) {
    return find_ports(state_->outs, port);
}

namespace {
// The one channel of a single-channel port; a port bound to a list is a node's mistake.
template <class Port>
Port& single(std::span<Port* const> list, const std::string& process, std::string_view port) {
    if (list.size() != 1)
        throw std::logic_error("process '" + process + "': port '" + std::string(port) +
                               "' is bound to " + std::to_string(list.size()) + " channels");
    return *list.front();
}
}  // namespace

InPort& ProcessContext::in(std::string_view port) {
    return single(ins(port), state_->name, port);
}
OutPort& ProcessContext::out(std::string_view port) {
    return single(outs(port), state_->name, port);
}

void ProcessContext::collect(Value v) {
    state_->runtime->collect(*state_, std::move(v));
}

namespace {
int partition_here = -1;  // written once, before any thread of the runtime starts
}  // namespace

int detail::this_partition() noexcept {
    return partition_here;
}

void detail::set_this_partition(int k) noexcept {
    partition_here = k;
}

ProcessStats detail::stats_of(const ProcessState& p) {
    const double spt = kSecondsPerTick;
    ProcessStats ps;
    ps.name = p.name;
    ps.group = p.group;
    ps.replica = p.replica;
    ps.node = p.type ? p.type->name : "";
    for (const auto& in : p.in_storage) ps.messages_in += in->reads();
    for (const auto& out : p.out_storage) ps.messages_out += out->writes();
    ps.busy = static_cast<double>(p.busy) * spt;
    ps.blocked_read = static_cast<double>(p.blocked_read) * spt;
    ps.blocked_write = static_cast<double>(p.blocked_write) * spt;
    ps.ready = static_cast<double>(p.ready) * spt;
    ps.gpu = p.plan && p.plan->gpu;
    if (p.device) {
        ps.device = static_cast<double>(p.device->ns) * 1e-9;
        ps.bytes_to_device = p.device->bytes_to;
        ps.bytes_from_device = p.device->bytes_from;
    }
    return ps;
}

void ProcessContext::note_device_work(std::chrono::nanoseconds time, std::uint64_t to,
                                      std::uint64_t from) {
    auto& work = state_->device;
    if (!work) work = std::make_unique<detail::ProcessState::DeviceWork>();
    work->ns += time.count();
    work->bytes_to += to;
    work->bytes_from += from;
    if (state_->runtime->tracing() && work->slices.size() < work->kMaxSlices) {
        const std::int64_t end = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count();
        work->slices.emplace_back(end - time.count(), end);
    }
}

void ProcessContext::write_lines(std::string_view lines) {
    state_->runtime->write_lines(lines);
}

void ProcessContext::progress_total(std::uint64_t total, ProgressUnit unit) noexcept {
    state_->progress_unit = unit;
    state_->progress_total.store(total, std::memory_order_release);
}

void ProcessContext::progress_done(std::uint64_t done) noexcept {
    state_->progress_done.store(done, std::memory_order_relaxed);
}

// ---- run(plan) ----------------------------------------------------------------------------

void detail::add_local_channel(Runtime& rt, const PlanChannel& pc, int writers, int readers,
                               std::size_t c, Wiring& w) {
    // `any`: one buffer shared by the readers; the other policies give every reader end a
    // buffer of its own, and the writing ends route.
    if (pc.deliver == Deliver::Any) {
        Channel& ch = rt.add_channel(pc.name, pc.capacity, writers, readers);
        w.targets[c] = {&ch};
        for (std::size_t r = 0; r < pc.readers.size(); ++r) w.reader_of[c][r] = &ch;
        return;
    }
    for (std::size_t r = 0; r < pc.readers.size(); ++r) {
        Channel& ch = rt.add_channel(pc.name, pc.capacity, writers, 1);
        w.targets[c].push_back(&ch);
        w.reader_of[c][r] = &ch;
    }
}

void detail::add_plan_processes(Runtime& rt, const Plan& plan,
                                const std::function<bool(std::size_t)>& here, const Wiring& w) {
    // Reader ends are listed in plan order: a cursor per channel finds each process's end.
    std::vector<std::size_t> cursor(plan.channels.size(), 0);
    for (std::size_t i = 0; i < plan.processes.size(); ++i) {
        if (!here(i)) continue;
        const PlanProcess& pp = plan.processes[i];
        auto& p = rt.add_process(pp.name, pp.group, pp.type, pp.gpu ? gpu_body(pp) : NodeBody());
        p.plan = &pp;
        p.replica = pp.replica;
        p.replicas = pp.replicas;
        for (const PlanPort& port : pp.inputs)
            for (std::size_t c : port.channels) {
                const auto& readers = plan.channels[c].readers;
                std::size_t& r = cursor[c];
                while (r < readers.size() &&
                       (readers[r].process != i || readers[r].port != port.port))
                    ++r;
                if (r == readers.size()) throw std::logic_error("no reader end for " + pp.name);
                rt.bind_in(p, port.port, *w.reader_of[c].at(r++));
            }
        std::vector<Channel*> lanes;  // an ordered replica's outputs
        for (const PlanPort& port : pp.outputs)
            for (std::size_t c : port.channels) {
                rt.bind_out(p, port.port, plan.channels[c].name, w.targets[c],
                            plan.channels[c].deliver);
                lanes.insert(lanes.end(), w.targets[c].begin(), w.targets[c].end());
            }
        if (pp.ordered && pp.replicas > 1 && !(pp.type && pp.type->one_to_one))
            for (auto& in : p.in_storage) mark_boundaries_on(*in, lanes);
    }
}

namespace {

void collect_stats(const Plan& plan, const detail::Runtime& rt,
                   const std::vector<std::vector<detail::Channel*>>& physical, RunStats& stats) {
    stats.wall = rt.wall_seconds();
    const auto& states = rt.processes();
    for (std::size_t i = 0; i < plan.processes.size() && i < states.size(); ++i) {
        const PlanProcess& pp = plan.processes[i];
        if (pp.hidden) continue;
        stats.processes.push_back(detail::stats_of(*states[i]));
    }
    for (std::size_t c = 0; c < plan.channels.size(); ++c) {
        const PlanChannel& pc = plan.channels[c];
        if (pc.hidden) continue;
        ChannelStats cs;
        cs.name = pc.name;
        cs.kind = channel_kind_name(pc.kind);
        cs.deliver = deliver_name(pc.deliver);
        cs.capacity = pc.capacity;
        for (const detail::Channel* ch : physical[c]) {
            const auto counters = ch->counters();
            cs.writes += counters.writes;
            cs.reads += counters.reads;
            cs.peak = std::max(cs.peak, counters.peak);
        }
        stats.channels.push_back(std::move(cs));
    }
}

}  // namespace

RunResult run(const Plan& plan, const RunOptions& options) {
    detail::Runtime rt(options);
    detail::Wiring w;
    w.targets.resize(plan.channels.size());
    w.reader_of.resize(plan.channels.size());
    for (std::size_t c = 0; c < plan.channels.size(); ++c)
        detail::add_local_channel(rt, plan.channels[c],
                                  static_cast<int>(plan.channels[c].writers.size()),
                                  static_cast<int>(plan.channels[c].readers.size()), c, w);
    detail::add_plan_processes(
        rt, plan, [](std::size_t) { return true; }, w);
    RunResult result = rt.run();
    collect_stats(plan, rt, w.targets, result.stats);  // every buffer of each channel
    return result;
}

}  // namespace chanflow
