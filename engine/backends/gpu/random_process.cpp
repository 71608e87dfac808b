// random_process.cpp — the bodies of pi.sample and random.uniform on a GPU: the CPU nodes'
// numbers (random_kernels.hpp), drawn by the device; pi.sample brings back only its counts.
#include "random_process.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "device.hpp"
#include "random_kernels.hpp"
#include "raw_kernel.hpp"

namespace chanflow::gpu {
namespace {

constexpr long long kUniformBatch = 1 << 16;
constexpr unsigned kBlock = 256;

struct Loaded {
    Device* device = nullptr;
    std::unique_ptr<Program> program;
};

Task pi_sample(ProcessContext& ctx, std::shared_ptr<const Loaded> k) {
    Device& dev = *k->device;
    const long long samples = ctx.param("samples").as_int();
    const auto seed = static_cast<std::uint64_t>(ctx.param("seed").as_int());
    auto& in = ctx.in();
    auto& out = ctx.out();
    auto inside = dev.host_buffer(8);
    while (auto task = co_await in.read()) {
        const std::int64_t t = task->as_int();  // the CPU node's error for a non-int
        unsigned long long count = 0;
        if (samples > 0) {
            std::memset(inside->data(), 0, 8);
            RawJob job;
            job.program = k->program.get();
            job.entry = "cf_pi";
            job.args = {RawArg::of(static_cast<long long>(pi_task_state(seed, t))),
                        RawArg::of(samples), RawArg::of(RawArg::Kind::InOut, *inside, 8)};
            job.n = samples;
            job.block = kBlock;
            job.grid = static_cast<unsigned>(
                std::clamp<long long>((samples + kBlock - 1) / kBlock, 1, kPiBlocks));
            Completion done;
            std::string error;
            const auto started = std::chrono::steady_clock::now();
            dev.run(job, &error, done);
            co_await wait_for(done);
            ctx.note_device_work(std::chrono::steady_clock::now() - started, 8, 8);
            if (!error.empty()) throw std::runtime_error("on " + dev.name() + ": " + error);
            std::memcpy(&count, inside->data(), 8);
        }
        co_await out.write(static_cast<std::int64_t>(count));
    }
}

Task uniform(ProcessContext& ctx, std::shared_ptr<const Loaded> k) {
    Device& dev = *k->device;
    const long long count = ctx.param("count").as_int();
    const auto state = static_cast<long long>(ctx.param("seed").as_int());
    const double low = ctx.param("low").as_number();
    const double high = ctx.param("high").as_number();
    auto& out = ctx.out();
    if (count > 0) ctx.progress_total(static_cast<std::uint64_t>(count));
    auto numbers = dev.host_buffer(kUniformBatch * 8);
    std::vector<Value> batch;
    for (long long first = 0; first < count; first += kUniformBatch) {
        const long long n = std::min(kUniformBatch, count - first);
        RawJob job;
        job.program = k->program.get();
        job.entry = "cf_uniform";
        job.args = {RawArg::of(state),
                    RawArg::of(first),
                    RawArg::of(n),
                    RawArg::of(low),
                    RawArg::of(high),
                    RawArg::of(RawArg::Kind::Output, *numbers, static_cast<std::size_t>(n) * 8)};
        job.n = n;
        job.block = kBlock;
        Completion done;
        std::string error;
        const auto started = std::chrono::steady_clock::now();
        dev.run(job, &error, done);
        co_await wait_for(done);
        ctx.note_device_work(std::chrono::steady_clock::now() - started, 0,
                             static_cast<std::uint64_t>(n) * 8);
        if (!error.empty()) throw std::runtime_error("on " + dev.name() + ": " + error);
        batch.clear();
        for (long long i = 0; i < n; ++i) batch.push_back(Value(numbers->as<double>()[i]));
        co_await out.write_all(batch);
        ctx.progress_done(static_cast<std::uint64_t>(first + n));
    }
}

}  // namespace

std::string random_kernel_source(const std::string& node) {
    return node == "pi.sample" ? pi_kernel_source() : uniform_kernel_source();
}

NodeBody random_process_body(const PlanProcess& p, const KernelCache& cache, int device_index) {
    const std::string node = p.type->name;
    auto k = std::make_shared<Loaded>();
    k->device = &device_for(device_index);
    const std::string source = random_kernel_source(node);
    const std::string entry = node == "pi.sample" ? "cf_pi" : "cf_uniform";
    const Compiled c = compile_cached(cache, source, p.group + ".cu", k->device->arch());
    if (!c.ok)
        throw std::runtime_error("the kernel of '" + p.group + "' does not compile: " + c.log);
    k->program =
        k->device->load(c.cubin, source + host_trampoline(kernel_arguments(source, entry), entry));
    if (node == "pi.sample") return [k](ProcessContext& ctx) { return pi_sample(ctx, k); };
    return [k](ProcessContext& ctx) { return uniform(ctx, k); };
}

}  // namespace chanflow::gpu
