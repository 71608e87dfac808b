// Seeded random sources: the same sequence for the same seed on every backend and run.
#include <cstdint>

#include "chanflow/node.hpp"

namespace chanflow {
namespace {

// SplitMix64: tiny, fast, fixed by its definition (no library version can change it).
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() noexcept {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

Task uniform_body(ProcessContext& ctx) {
    const std::int64_t count = ctx.param("count").as_int();
    SplitMix64 rng{static_cast<std::uint64_t>(ctx.param("seed").as_int())};
    const double low = ctx.param("low").as_number();
    const double high = ctx.param("high").as_number();
    auto& out = ctx.out();
    if (count > 0) ctx.progress_total(static_cast<std::uint64_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
        co_await out.write(low + (high - low) * rng.uniform());
        if (i % 256 == 255 || i + 1 == count) ctx.progress_done(static_cast<std::uint64_t>(i + 1));
    }
}

CHANFLOW_NODE({.name = "random.uniform",
               .doc = "Emits count floats uniform in [low, high), the same sequence for the same "
                      "seed on every backend.",
               .params = {param("count", ParamType::Int, "how many numbers").within(0),
                          param("seed", ParamType::Int, "the seed", 0),
                          param("low", ParamType::Number, "lower bound", 0.0),
                          param("high", ParamType::Number, "upper bound (excluded)", 1.0)},
               .ports = {out_port("out", "the numbers")},
               .body = uniform_body});

Task pi_sample_body(ProcessContext& ctx) {
    const std::int64_t samples = ctx.param("samples").as_int();
    const auto seed = static_cast<std::uint64_t>(ctx.param("seed").as_int());
    auto& in = ctx.in();
    auto& out = ctx.out();
    while (auto task = co_await in.read()) {
        // Seeded by (seed, task id), so the result does not depend on which replica ran it.
        SplitMix64 mix{seed ^ (static_cast<std::uint64_t>(task->as_int()) * 0xd1342543de82ef95ULL)};
        SplitMix64 rng{mix.next()};
        std::int64_t inside = 0;
        for (std::int64_t i = 0; i < samples; ++i) {
            const double x = rng.uniform();
            const double y = rng.uniform();
            inside += x * x + y * y < 1.0;
        }
        co_await out.write(inside);
    }
}

CHANFLOW_NODE({.name = "pi.sample",
               .doc = "For each input task id t emits how many of `samples` uniform points in the "
                      "unit square fall in the quarter circle, seeded by (seed, t).",
               .params = {param("samples", ParamType::Int, "points per task").within(0),
                          param("seed", ParamType::Int, "the seed", 0)},
               .ports = {in_port("in", "task ids"), out_port("out", "points inside")},
               .body = pi_sample_body,
               .one_to_one = true});

}  // namespace
}  // namespace chanflow
