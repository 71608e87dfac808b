// ordered_fanout.cpp — `ordered: true` on a replicated process (docs/graph-format.md), as plan
// rewriting.
//
// The replicas read their input round-robin, so input i goes to replica i mod R. Each
// replica writes every output to a lane of its own instead of the shared channel, and marks
// on its lanes where the outputs of one input end (detail::mark_boundaries_on: a read after
// the first pushes OrderMark::Boundary, the end of its input OrderMark::End; marks never
// block). One merge process per output channel reads the lanes in turn, input by input,
// and writes the real channel, so the merged output keeps the input order whatever the
// replica count.
//
// When the turn's lane shows End, that replica had no further input, so neither had the
// rest: the merge then drains what the replicas wrote after their input ended (a
// `reduce`'s result, say) lane by lane, in replica order. A replica that stops early hands its
// share of the input to the next live replica (round_robin, docs/semantics.md); from there on the
// order is kept only lane by lane.
//
// A node that writes exactly one message per input (NodeType::one_to_one: map, key_by)
// needs no marks: its merge takes one message from each lane in turn.
//
// Because this is a rewrite of the plan, every backend runs it the same way.
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "graph_internal.hpp"

namespace chanflow::detail {
namespace {

// Both merges send their output in batches (one lock per batch): a batch goes when it is
// large, or before a read that may block.
constexpr std::size_t kBatch = 256;
bool flush_due(const std::vector<Value>& batch, const InPort& next_read) {
    return !batch.empty() && (batch.size() >= kBatch || !next_read.has_held());
}
std::size_t next_turn(std::size_t turn, std::size_t lanes) {
    return turn + 1 == lanes ? 0 : turn + 1;
}

Task ordered_merge_body(ProcessContext& ctx) {
    auto lanes = ctx.ins("in");
    auto& out = ctx.out();
    std::vector<Value> batch;
    batch.reserve(kBatch);
    std::size_t turn = 0;
    for (;;) {
        if (flush_due(batch, *lanes[turn])) co_await out.write_all(batch);
        auto v = co_await lanes[turn]->read();
        if (!v) break;  // the replica stopped early
        const OrderMark mark = order_mark_of(*v);
        if (mark == OrderMark::End) break;
        if (mark == OrderMark::Boundary)
            turn = next_turn(turn, lanes.size());
        else
            batch.push_back(std::move(*v));
    }
    for (InPort* lane : lanes) {
        if (!batch.empty()) co_await out.write_all(batch);
        while (auto v = co_await lane->read())
            if (order_mark_of(*v) == OrderMark::None) co_await out.write(std::move(*v));
    }
}

// For one-to-one replicas (NodeType::one_to_one): one message per input, no marks.
Task ordered_merge_one_body(ProcessContext& ctx) {
    auto lanes = ctx.ins("in");
    auto& out = ctx.out();
    std::vector<Value> batch;
    batch.reserve(kBatch);
    for (std::size_t turn = 0;; turn = next_turn(turn, lanes.size())) {
        if (flush_due(batch, *lanes[turn])) co_await out.write_all(batch);
        auto v = co_await lanes[turn]->read();
        if (!v) break;  // no input i for this replica: the input has ended
        batch.push_back(std::move(*v));
    }
    if (!batch.empty()) co_await out.write_all(batch);
    for (InPort* lane :
         lanes)  // a replica that stopped early hands its input on (docs/semantics.md)
        while (auto v = co_await lane->read()) co_await out.write(std::move(*v));
}

}  // namespace

const NodeType& ordered_merge_one_type() {
    static const NodeType type{
        .name = "ordered-merge",
        .doc =
            "Merges the lanes of an ordered fan-out of a one-to-one node in input order "
            "(added by the engine).",
        .params = {},
        .ports = {in_ports("in", "one lane per replica"), out_port("out", "the merged stream")},
        .body = ordered_merge_one_body,
    };
    return type;
}

const NodeType& ordered_merge_type() {
    static const NodeType type{
        .name = "ordered-merge",
        .doc = "Merges the lanes of an ordered fan-out in input order (added by the engine).",
        .params = {},
        .ports = {in_ports("in", "one lane per replica"), out_port("out", "the merged stream")},
        .body = ordered_merge_body,
    };
    return type;
}

void expand_ordered_fanout(Plan& plan) {
    const std::size_t original = plan.processes.size();
    for (std::size_t first = 0; first < original; ++first) {
        const PlanProcess& head = plan.processes[first];
        if (!head.ordered || head.replicas < 2 || head.replica != 0) continue;
        const auto replicas = static_cast<std::size_t>(head.replicas);
        for (const PlanPort& port : head.inputs)
            for (std::size_t c : port.channels)
                if (plan.channels[c].deliver == Deliver::Any)
                    plan.channels[c].deliver = Deliver::RoundRobin;

        for (std::size_t pi = 0; pi < plan.processes[first].outputs.size(); ++pi) {
            for (std::size_t ci = 0; ci < plan.processes[first].outputs[pi].channels.size(); ++ci) {
                const std::string port = plan.processes[first].outputs[pi].port;
                const std::size_t target = plan.processes[first].outputs[pi].channels[ci];
                const std::size_t merge = plan.processes.size();

                PlanProcess merger;
                merger.name =
                    plan.processes[first].group + "[ordered " + plan.channels[target].name + "]";
                merger.group = merger.name;
                const NodeType* replica_type = plan.processes[first].type;
                merger.type = replica_type && replica_type->one_to_one ? &ordered_merge_one_type()
                                                                       : &ordered_merge_type();
                merger.pos = plan.processes[first].pos;
                merger.rank = plan.processes[first].rank;
                merger.hidden = true;
                merger.inputs.push_back({"in", {}});
                merger.outputs.push_back({"out", {target}});

                auto& writers = plan.channels[target].writers;
                std::erase_if(writers, [&](const EndRef& e) {
                    return e.process >= first && e.process < first + replicas && e.port == port;
                });
                writers.push_back({merge, "out"});

                for (std::size_t r = 0; r < replicas; ++r) {
                    PlanChannel lane;
                    lane.name = plan.processes[first + r].name + ">" + plan.channels[target].name;
                    lane.capacity = plan.channels[target].capacity;
                    lane.hidden = true;
                    lane.writers.push_back({first + r, port});
                    lane.readers.push_back({merge, "in"});
                    plan.processes[first + r].outputs[pi].channels[ci] = plan.channels.size();
                    merger.inputs[0].channels.push_back(plan.channels.size());
                    plan.channels.push_back(std::move(lane));
                }
                plan.processes.push_back(std::move(merger));
            }
        }
    }
}

}  // namespace chanflow::detail
