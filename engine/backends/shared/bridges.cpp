// bridges.cpp — the partition-building shared by the processes and MPI backends.
#include "bridges.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>

#include "runtime_impl.hpp"

namespace chanflow::detail {
namespace {

std::set<int> partitions_of(const std::vector<EndRef>& ends, const Placement& pl) {
    std::set<int> out;
    for (const EndRef& e : ends) out.insert(pl.of_process[e.process]);
    return out;
}

int home_of(const PlanChannel& c, const Placement& pl) {
    return pl.of_process[c.readers.front().process];
}

// The tree a broadcast from partition `origin` travels: the origin at its root, then the
// other reading partitions in order, partition i of the list fed by partition (i - 1) / 2.
// Each partition sends the stream on to at most two others, whatever the number of readers.
std::vector<int> broadcast_tree(int origin, const std::set<int>& reading) {
    std::vector<int> tree{origin};
    for (int r : reading)
        if (r != origin) tree.push_back(r);
    return tree;
}

}  // namespace

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
        } else if (pc.deliver == Deliver::Broadcast) {
            const std::set<int> reading = partitions_of(pc.readers, pl);
            for (int w : writing) {
                const std::vector<int> tree = broadcast_tree(w, reading);
                for (std::size_t i = 1; i < tree.size(); ++i)
                    out.push_back({c, kStream, tree[(i - 1) / 2], tree[i], w});
            }
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

namespace {

// The buffer of a local channel that only a bridge reads, or only a bridge writes: room
// for whole batches, so that a bridge and the workers hand over thousands of messages per
// wake-up rather than a channel's capacity. (The transport already buffers more than the
// channel's capacity: a bridged channel never was a rendezvous.)
constexpr std::size_t kBridgeBuffer = 8192;
std::size_t bridge_capacity(const PlanChannel& c) {
    return std::max(c.capacity, kBridgeBuffer);
}

}  // namespace

void wire_partition(const Plan& plan, const Placement& pl, int k,
                    const std::vector<Bridge>& bridges, Runtime& rt, const BridgeBodies& bodies,
                    Wiring& w) {
    w.targets.assign(plan.channels.size(), {});
    w.reader_of.assign(plan.channels.size(), {});
    auto local = [&](const std::vector<EndRef>& ends) {
        int n = 0;
        for (const EndRef& e : ends) n += pl.of_process[e.process] == k;
        return n;
    };
    auto add_sender = [&](std::size_t b, Channel& from, const std::string& label) {
        auto& p = rt.add_process("send " + label + " to " + std::to_string(bridges[b].to),
                                 "(bridge)", nullptr, bodies.sender(b));
        rt.bind_in(p, "in", from);
        if (bodies.single_source && from.single_reader()) bodies.single_source(b, from);
    };
    auto add_receiver_to = [&](std::size_t b, std::vector<Channel*> targets, Deliver deliver,
                               const std::string& label) {
        auto& p = rt.add_process("receive " + label + " from " + std::to_string(bridges[b].from),
                                 "(bridge)", nullptr, bodies.receiver(b));
        rt.bind_out(p, "out", plan.channels[bridges[b].channel].name, std::move(targets), deliver);
    };
    auto add_receiver = [&](std::size_t b, Channel& into, const std::string& label) {
        add_receiver_to(b, {&into}, Deliver::Any, label);
        if (bodies.single_target) bodies.single_target(b, into);
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
        if (pc.deliver == Deliver::Broadcast) {
            // A lane per reader here, written by the writers here and by one receiver per
            // stream that reaches this partition; each stream (this partition's own, and each
            // one passing through) is sent on to this partition's children in its tree.
            const auto in = bridges_here(kStream, true);
            std::vector<Channel*> lanes;
            for (std::size_t r = 0; r < pc.readers.size(); ++r) {
                if (pl.of_process[pc.readers[r].process] != k) continue;
                Channel& ch = rt.add_channel(pc.name, lw > 0 ? pc.capacity : bridge_capacity(pc),
                                             lw + static_cast<int>(in.size()), 1);
                w.reader_of[c][r] = &ch;
                lanes.push_back(&ch);
            }
            auto and_children = [&](int origin, int writers) {
                std::vector<Channel*> targets = lanes;
                for (std::size_t b : bridges_here(kStream, false)) {
                    if (bridges[b].origin != origin) continue;
                    Channel& proxy = rt.add_channel(pc.name, bridge_capacity(pc), writers, 1);
                    add_sender(b, proxy, label);
                    targets.push_back(&proxy);
                }
                return targets;
            };
            if (lw > 0) w.targets[c] = and_children(k, lw);
            for (std::size_t b : in)
                add_receiver_to(b, and_children(bridges[b].origin, 1), Deliver::Broadcast, label);
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

void decode_batch(std::span<const unsigned char> bytes, std::vector<Value>& batch,
                  const std::string& channel, const std::string& from) {
    batch.clear();
    try {
        Decoder d(bytes.data(), bytes.size());
        while (!d.done()) batch.push_back(d.next());
    } catch (const CodecError& e) {
        throw std::runtime_error("channel '" + channel + "': a malformed frame from " + from +
                                 ": " + e.what());
    }
}

namespace {

// The length of "writer 'receive 'c' from 1' waits" (or reader, send, to) at the start of s,
// or 0; role and peer get "writer" and "1". Written out by hand: a regular expression engine
// could recurse once a character over a long channel name.
std::size_t bridge_peer_at(std::string_view s, std::string_view& role, std::string_view& peer) {
    auto take = [&s](std::string_view word) {
        if (s.substr(0, word.size()) != word) return false;
        s.remove_prefix(word.size());
        return true;
    };
    const std::size_t size = s.size();
    if (take("writer '"))
        role = "writer";
    else if (take("reader '"))
        role = "reader";
    else
        return 0;
    if (!take("receive '") && !take("send '")) return 0;
    const std::size_t quote = s.find('\'');
    if (quote == std::string_view::npos) return 0;
    s.remove_prefix(quote + 1);
    if (!take(" from ") && !take(" to ")) return 0;
    std::size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    if (digits == 0) return 0;
    peer = s.substr(0, digits);
    s.remove_prefix(digits);
    if (!take("' waits")) return 0;
    return size - s.size();
}

}  // namespace

std::string quiet_report(const std::vector<std::string>& blocked, const std::string& unit) {
    // "writer 'receive 'c' from 1' waits" reads "writers in partition 1".
    std::string report;
    for (const std::string& line : blocked) {
        if (line.rfind("'send ", 0) == 0 || line.rfind("'receive ", 0) == 0) continue;
        report += "deadlock: ";
        const std::string_view text = line;
        for (std::size_t i = 0; i < text.size();) {
            std::string_view role, peer;
            if (const std::size_t n = bridge_peer_at(text.substr(i), role, peer); n > 0) {
                report.append(role).append("s in ").append(unit).append(" ").append(peer);
                i += n;
            } else {
                report += text[i++];
            }
        }
        report += '\n';
    }
    return report;
}

std::chrono::milliseconds silence_before_notice() {
    if (const char* s = std::getenv("CHANFLOW_SILENCE_S")) {
        char* end = nullptr;
        const long v = std::strtol(s, &end, 10);
        if (end != s && *end == '\0' && v >= 0 && v <= 86400) return std::chrono::seconds(v);
    }
    return std::chrono::seconds(10);
}

RunStats partition_stats(const Plan& plan, const Placement& pl, int k, const Runtime& rt) {
    RunStats st;
    st.wall = rt.wall_seconds();
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> moved;  // writes, reads
    std::map<std::string, std::size_t> peak;
    for (const auto& p : rt.processes()) {
        if (!p->plan) continue;  // a bridge
        for (const auto& out : p->out_storage) moved[out->channel_name()].first += out->writes();
        for (const auto& in : p->in_storage) moved[in->channel_name()].second += in->reads();
        if (p->plan->hidden) continue;
        ProcessStats ps = stats_of(*p);
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

}  // namespace chanflow::detail
