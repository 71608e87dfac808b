// What the benchmark programs share: timing, medians, and a table row of chanflow against
// its baselines with the median of the per-round ratios.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "chanflow/value.hpp"

namespace chanflow::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_of(const std::function<void()>& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Accumulates timings for one row of the table: chanflow and each baseline.
struct Comparison {
    std::string name;
    std::string unit;  // what one "op" is
    double ops = 1;
    std::vector<std::string> labels;
    std::vector<std::vector<double>> secs;

    void add(std::size_t i, double s) {
        secs[i].push_back(s);
        if (std::getenv("CHANFLOW_BENCH_VERBOSE"))  // every run, as it is measured
            std::fprintf(stderr, "  run: %-50s %.3f s\n", labels[i].c_str(), s);
    }
    // Round r: each contestant once, the first being a different one each round, so that
    // none always runs right after the same neighbour. With `rest`, the machine idles that
    // long before each run: on these VMs a run right after seconds of both cores at full
    // load (a Python pool) takes up to 50% more CPU time for the same work, and the effect
    // fades over about a second.
    // Each contestant once, unmeasured: the first run in a process pays for its heap, the
    // first of a program for the page cache.
    static void warm_up(const std::vector<std::function<void()>>& runs) {
        for (const auto& run : runs) run();
    }
    void round(std::size_t r, const std::vector<std::function<void()>>& runs,
               std::chrono::milliseconds rest = std::chrono::milliseconds(0)) {
        for (std::size_t k = 0; k < runs.size(); ++k) {
            const std::size_t i = (r + k) % runs.size();
            if (rest.count() > 0) std::this_thread::sleep_for(rest);
            add(i, seconds_of(runs[i]));
        }
    }
    void print() const {
        std::printf("\n%s  (%.0f %s per run, median of %zu rounds)\n", name.c_str(), ops,
                    unit.c_str(), secs[0].size());
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const double t = median(secs[i]);
            const double rate = ops / t;
            std::printf("  %-50s %9.3f s %10.1f ns/%s %10.2f %s%s/s", labels[i].c_str(), t,
                        t / ops * 1e9, unit.c_str(), rate >= 1e5 ? rate / 1e6 : rate,
                        rate >= 1e5 ? "M" : "", unit.c_str());
            if (i > 0) {
                std::vector<double> ratios;
                for (std::size_t r = 0; r < secs[0].size(); ++r)
                    ratios.push_back(secs[i][r] / secs[0][r]);
                std::printf("   chanflow speed x%.2f", median(ratios));
            }
            std::printf("\n");
        }
    }
};

/// The command line the side-by-side benchmarks share: [WHICH] [--rounds R] [--scale S].
struct Args {
    std::string which = "all";
    int rounds = 5;
    double scale = 1;
};
inline Args parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string s = argv[i];
        if (s == "--rounds" && i + 1 < argc)
            a.rounds = std::atoi(argv[++i]);
        else if (s == "--scale" && i + 1 < argc)
            a.scale = std::atof(argv[++i]);
        else
            a.which = s;
    }
    return a;
}

/// This program's own path, to start it again (as partitions, or under mpirun).
inline std::string self_path(const char* argv0) {
    char self[4096];
    const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    return len > 0 ? std::string(self, static_cast<std::size_t>(len)) : argv0;
}

/// A 1 MiB float64 tensor (131 072 elements, every byte 1): what the tensor benchmarks send.
inline chanflow::Value one_mib_tensor() {
    chanflow::Tensor t;
    t.dtype = chanflow::DType::F64;
    t.shape = {(1 << 20) / 8};
    t.data.assign(1 << 20, 1);
    return chanflow::Value(std::move(t));
}

inline Comparison make(std::string name, std::string unit, double ops,
                       std::vector<std::string> labels) {
    Comparison c{std::move(name), std::move(unit), ops, std::move(labels), {}};
    c.secs.resize(c.labels.size());
    return c;
}

}  // namespace chanflow::bench
