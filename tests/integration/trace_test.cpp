// `chanflow run --trace OUT.json`: a Chrome trace event file with the events of every
// worker thread.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "run_cli.hpp"
#include "text_util.hpp"

namespace fs = std::filesystem;
using chanflow::test::read_file;
using chanflow::test::run_cli;

TEST_CASE("trace: --trace writes a Chrome trace with every worker's events") {
    const fs::path file =
        fs::temp_directory_path() / ("chanflow-trace-" + std::to_string(getpid()) + ".json");
    const auto r = run_cli({"run", "graphs/pool_map.yaml", "--workers", "2", "--set", "n=20000",
                            "--trace", file.string()});
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    const std::string trace = read_file(file);
    fs::remove(file);

    // The frame of the file, one event per line.
    CHECK(trace.rfind("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n", 0) == 0);
    CHECK(trace.size() > 2);
    CHECK(trace.substr(trace.size() - 4) == "\n]}\n");
    const std::regex slice(
        R"re(\{"ph": "X", "pid": 1, "tid": (\d+), "cat": "process", "name": "([^"]+)", )re"
        R"re("ts": [0-9.]+, "dur": [0-9.]+\})re");
    const std::regex thread(R"re(\{"ph": "M", "pid": 1, "tid": (\d+), "name": "thread_name", )re"
                            R"re("args": \{"name": "(worker \d+)"\}\})re");
    const std::regex counter(
        R"re(\{"ph": "C", "pid": 1, "name": "channel ([^"]+)", "ts": [0-9.]+, )re"
        R"re("args": \{"messages": \d+\}\})re");
    std::set<std::string> threads_named, threads_with_slices, processes, channels;
    std::size_t lines = 0;
    std::istringstream in(trace.substr(trace.find('\n') + 1));
    for (std::string line; std::getline(in, line) && line != "]}";) {
        if (!line.empty() && line.back() == ',') line.pop_back();
        ++lines;
        std::smatch m;
        if (std::regex_match(line, m, slice)) {
            threads_with_slices.insert(m[1]);
            processes.insert(m[2]);
        } else if (std::regex_match(line, m, thread)) {
            threads_named.insert(m[1]);
        } else if (std::regex_match(line, m, counter)) {
            channels.insert(m[1]);
        } else {
            FAIL("not a trace event: " << line);
        }
    }
    CHECK(lines > 10);
    CHECK(threads_named == std::set<std::string>{"0", "1"});
    // Which worker runs what is the scheduler's choice: on a loaded machine one worker can
    // take every process before the other wakes. Every slice is on a named worker.
    CHECK(!threads_with_slices.empty());
    for (const std::string& tid : threads_with_slices) CHECK(threads_named.count(tid) == 1);
    CHECK(processes.count("tasks") == 1);
    CHECK(processes.count("square[3]") == 1);
    CHECK(processes.count("show") == 1);
}

TEST_CASE("trace: across processes, one trace with a process per partition") {
    const fs::path file =
        fs::temp_directory_path() / ("chanflow-trace-p-" + std::to_string(getpid()) + ".json");
    const auto r = run_cli({"run", "graphs/pool_map.yaml", "--set", "n=5000", "--backend",
                            "processes", "--procs", "2", "--trace", file.string()});
    REQUIRE(r.exit_code == 0);
    const std::string trace = read_file(file);
    fs::remove(file);
    CHECK(trace.rfind("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n", 0) == 0);
    CHECK(trace.substr(trace.size() - 4) == "\n]}\n");
    for (int k : {0, 1}) {
        const std::string pid = "\"pid\": " + std::to_string(k + 1);
        CHECK(trace.find("{\"ph\": \"M\", " + pid +
                         ", \"name\": \"process_name\", \"args\": {\"name\": \"partition " +
                         std::to_string(k) + "\"}}") != std::string::npos);
        CHECK(trace.find("{\"ph\": \"M\", " + pid + ", \"tid\": 0, \"name\": \"thread_name\"") !=
              std::string::npos);
    }
    // Replicas 0 and 2 run on partition 0, 1 and 3 on partition 1; bridges show too.
    CHECK(trace.find("\"pid\": 2, \"tid\": 0, \"cat\": \"process\", \"name\": \"square[1]\"") !=
          std::string::npos);
    CHECK(trace.find("\"pid\": 1, \"tid\": 0, \"cat\": \"process\", \"name\": \"square[0]\"") !=
          std::string::npos);
    CHECK(trace.find("\"name\": \"send 'tasks' (square[1]) to 1\"") != std::string::npos);
    std::istringstream in(trace.substr(trace.find('\n') + 1));
    for (std::string line; std::getline(in, line) && line != "]}";)
        CHECK_MESSAGE(line.rfind("{\"ph\": ", 0) == 0, line);
}

TEST_CASE("trace: --trace belongs to run") {
    const auto r = run_cli({"check", "graphs/pool_map.yaml", "--trace", "x.json"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--trace belongs to 'run'") != std::string::npos);
}
