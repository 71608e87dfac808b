// What the processes and MPI backends share at the end of a run: the statistics, traces
// and collected values of each partition (or rank), merged into the run's.
#include "partition_results.hpp"

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "chanflow/partitions.hpp"
#include "codec.hpp"

namespace chanflow {

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

namespace detail {

std::string encode_collected(const std::map<std::string, std::vector<Value>>& collected) {
    Bytes bytes;
    for (const auto& [name, values] : collected) {
        detail::encode(Value(name), bytes);
        detail::encode(Value(static_cast<long long>(values.size())), bytes);
        for (const Value& v : values) detail::encode(v, bytes);
    }
    return std::string(bytes.begin(), bytes.end());
}

void merge_collected(const std::string& bytes, std::map<std::string, std::vector<Value>>& into) {
    detail::Decoder d(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    while (!d.done()) {
        const Value name = d.next();
        const std::int64_t n = d.next().as_int();
        auto& values = into[std::string(name.as_string())];
        for (std::int64_t i = 0; i < n; ++i) values.push_back(d.next());
    }
}

}  // namespace detail
}  // namespace chanflow
