// run_stats.cpp — RunStats to JSON and back (`chanflow run --stats=FILE`, `dot --stats-from`).
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>

#include "chanflow/runtime.hpp"
#include "chanflow/value.hpp"
#include "runtime_impl.hpp"
#include "yaml_guard.hpp"

namespace chanflow {
namespace {

std::string quoted(const std::string& s) {
    std::string out;
    append_json(out, Value(s));
    return out;
}

}  // namespace

std::string to_json(const RunStats& st) {
    std::ostringstream out;
    out.precision(9);
    out << "{\"wall_s\": " << st.wall << ",\n \"processes\": [";
    for (std::size_t i = 0; i < st.processes.size(); ++i) {
        const auto& p = st.processes[i];
        out << (i ? ",\n  " : "\n  ") << "{\"name\": " << quoted(p.name)
            << ", \"group\": " << quoted(p.group) << ", \"replica\": " << p.replica
            << ", \"node\": " << quoted(p.node) << ", \"messages_in\": " << p.messages_in
            << ", \"messages_out\": " << p.messages_out << ", \"busy_s\": " << p.busy
            << ", \"blocked_read_s\": " << p.blocked_read
            << ", \"blocked_write_s\": " << p.blocked_write << ", \"ready_s\": " << p.ready;
        if (p.gpu)
            out << ", \"gpu\": true, \"device_s\": " << p.device
                << ", \"bytes_to_device\": " << p.bytes_to_device
                << ", \"bytes_from_device\": " << p.bytes_from_device;
        out << "}";
    }
    out << "],\n \"channels\": [";
    for (std::size_t i = 0; i < st.channels.size(); ++i) {
        const auto& c = st.channels[i];
        out << (i ? ",\n  " : "\n  ") << "{\"name\": " << quoted(c.name)
            << ", \"kind\": " << quoted(c.kind) << ", \"deliver\": " << quoted(c.deliver)
            << ", \"capacity\": " << c.capacity << ", \"writes\": " << c.writes
            << ", \"reads\": " << c.reads << ", \"peak\": " << c.peak << "}";
    }
    out << "]}\n";
    return out.str();
}

RunStats read_run_stats(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read statistics file '" + path + "'");
    return detail::parse_run_stats(std::string(std::istreambuf_iterator<char>(in), {}), path);
}

RunStats detail::parse_run_stats(const std::string& text, const std::string& path) {
    RunStats st;
    // A statistics file may come from anyone: read it within the limits of a graph file.
    const detail::YamlDocument read = detail::read_yaml(text);
    if (read.problem) {
        std::string where;
        if (read.problem->line > 0)
            where = ":" + std::to_string(read.problem->line) + ":" +
                    std::to_string(read.problem->column);
        throw std::runtime_error(path + where +
                                 ": not a statistics file of chanflow run --stats (" +
                                 read.problem->message + ")");
    }
    try {
        const YAML::Node& doc = read.root;
        st.wall = doc["wall_s"].as<double>();
        for (const auto& p : doc["processes"]) {
            ProcessStats ps;
            ps.name = p["name"].as<std::string>();
            ps.group = p["group"].as<std::string>();
            ps.replica = p["replica"].as<int>();
            ps.node = p["node"].as<std::string>("");
            ps.messages_in = p["messages_in"].as<std::uint64_t>();
            ps.messages_out = p["messages_out"].as<std::uint64_t>();
            ps.busy = p["busy_s"].as<double>();
            ps.blocked_read = p["blocked_read_s"].as<double>();
            ps.blocked_write = p["blocked_write_s"].as<double>();
            ps.ready = p["ready_s"].as<double>(0);
            ps.gpu = p["gpu"].as<bool>(false);
            ps.device = p["device_s"].as<double>(0);
            ps.bytes_to_device = p["bytes_to_device"].as<std::uint64_t>(0);
            ps.bytes_from_device = p["bytes_from_device"].as<std::uint64_t>(0);
            st.processes.push_back(std::move(ps));
        }
        for (const auto& c : doc["channels"]) {
            ChannelStats cs;
            cs.name = c["name"].as<std::string>();
            cs.kind = c["kind"].as<std::string>("");
            cs.deliver = c["deliver"].as<std::string>("any");
            cs.capacity = c["capacity"].as<std::size_t>();
            cs.writes = c["writes"].as<std::uint64_t>();
            cs.reads = c["reads"].as<std::uint64_t>();
            cs.peak = c["peak"].as<std::size_t>();
            st.channels.push_back(std::move(cs));
        }
    } catch (const YAML::Exception& e) {
        std::string where;
        if (!e.mark.is_null())
            where = ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
        throw std::runtime_error(path + where +
                                 ": not a statistics file of chanflow run --stats (" + e.msg + ")");
    }
    return st;
}

}  // namespace chanflow
