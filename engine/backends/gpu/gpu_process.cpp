// gpu_process.cpp — the bodies of map, filter and reduce processes placed on a GPU.
//
// A process gathers the messages that are there (up to a batch; it never waits to fill one,
// so a slow stream is not held back) into a typed host buffer, runs its kernel on the device
// and waits on a Completion, so its worker runs other processes meanwhile; then it writes the
// results as messages again. Ints and floats go to the device; any other message (a bool, a
// string, ...) is evaluated on the CPU in its turn, so that the output is the CPU's. An
// element the device failed on is evaluated on the CPU too, for the CPU's exact error.
#include "gpu_process.hpp"

#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "chanflow/expr.hpp"
#include "chanflow/node.hpp"
#include "device.hpp"
#include "process_kernels.hpp"
#include "random_process.hpp"
#include "raw_kernel.hpp"

namespace chanflow::gpu {
namespace {

constexpr long long kBatch = 1 << 16;        // elements a map or filter launch takes at most
constexpr long long kReduceBatch = 1 << 20;  // a reduction's fixed batch: the sum's order
constexpr unsigned long long kNoFailure = std::numeric_limits<unsigned long long>::max();

// What a process's replicas share: the program on its device and which types it takes.
struct Loaded {
    Device* device = nullptr;
    std::unique_ptr<Program> program;
    std::string node;
    bool for_int = false, for_float = false;
    ElemType int_out = ElemType::Int, float_out = ElemType::Int;  // a map's result types
    std::optional<ReduceOp> op;
    bool mean = false;
    std::string head;             // the process's name
    std::vector<FusedMap> fused;  // maps fused into it, applied after its own expression
};

// The process's expression and those fused into it, in turn, on the CPU. A fused map's
// failure says whose expression it was.
Value on_cpu(const Expr& own, const Loaded& k, const Value& x) {
    Value v = own(x);
    for (const FusedMap& f : k.fused) {
        try {
            v = f.expr(v);
        } catch (const ExprError& e) {
            throw ExprError("in '" + f.name + "' (fused into '" + k.head +
                            "' on the GPU): " + e.what());
        }
    }
    return v;
}

bool device_type(const Value& x, const Loaded& k, ElemType& t) {
    if (x.is_int() && k.for_int) {
        t = ElemType::Int;
        return true;
    }
    if (x.is_float() && k.for_float) {
        t = ElemType::Float;
        return true;
    }
    return false;
}

void put(HostBuffer& b, long long i, const Value& x) {
    if (x.is_int()) {
        const long long v = x.as_int();
        std::memcpy(b.as<char>() + i * 8, &v, 8);
    } else {
        const double v = x.as_float();
        std::memcpy(b.as<char>() + i * 8, &v, 8);
    }
}

Value get(HostBuffer& b, ElemType t, long long i) {
    switch (t) {
        case ElemType::Bool:
            return Value(b.as<unsigned char>()[i] != 0);
        case ElemType::Int: {
            long long v;
            std::memcpy(&v, b.as<char>() + i * 8, 8);
            return Value(static_cast<std::int64_t>(v));
        }
        case ElemType::Float: {
            double v;
            std::memcpy(&v, b.as<char>() + i * 8, 8);
            return Value(v);
        }
    }
    return Value();
}

// The device failed on element `i`: the CPU says why, with its own message.
[[noreturn]] void fail_as_cpu(const Expr& cpu, const Loaded& k, const Value& x) {
    on_cpu(cpu, k, x);
    throw std::logic_error("the GPU failed on x = " + to_printed(x) +
                           ", where the CPU does not: please report this");
}

Task map_or_filter(ProcessContext& ctx, std::shared_ptr<const Loaded> k, bool filter) {
    Device& dev = *k->device;
    const Expr& cpu = ctx.expr("expr");
    auto& in = ctx.in();
    auto& out = ctx.out();
    auto in_buf = dev.host_buffer(kBatch * 8);
    auto out_buf = dev.host_buffer(kBatch * 8);
    std::vector<Value> results;
    std::optional<Value> x = co_await in.read();
    while (x) {
        ElemType t;
        if (!device_type(*x, *k, t)) {  // no kernel takes it: the CPU, in its turn
            Value y = on_cpu(cpu, *k, *x);
            if (!filter) {
                co_await out.write(std::move(y));
            } else if (truthy(y)) {
                co_await out.write(std::move(*x));
            }
            x = co_await in.read();
            continue;
        }
        long long n = 0;
        put(*in_buf, n++, *x);
        x.reset();
        bool more = true;
        // A replica of an ordered fan-out marks where each input's outputs end: it takes
        // one message a launch, so that its outputs follow its inputs one by one.
        const long long limit = in.marks_boundaries() ? 1 : kBatch;
        while (n < limit && in.has_more()) {
            x = co_await in.read();
            ElemType u;
            if (!x) {
                more = false;
                break;
            }
            if (!device_type(*x, *k, u) || u != t) break;  // kept for the next round
            put(*in_buf, n++, *x);
            x.reset();
        }
        Completion done;
        std::string error;
        unsigned long long first = kNoFailure;
        ElementwiseJob job;
        job.program = k->program.get();
        job.entry = kernel_entry(filter ? "cf_filter" : "cf_map", t);
        job.in = in_buf.get();
        job.in_bytes = static_cast<std::size_t>(n) * 8;
        job.out = out_buf.get();
        const ElemType out_t = filter               ? ElemType::Bool
                               : t == ElemType::Int ? k->int_out
                                                    : k->float_out;
        job.out_bytes = static_cast<std::size_t>(n) * (out_t == ElemType::Bool ? 1 : 8);
        job.n = n;
        job.first_failure = &first;
        const auto started = std::chrono::steady_clock::now();
        dev.run(job, &error, done);
        co_await wait_for(done);
        ctx.note_device_work(std::chrono::steady_clock::now() - started, job.in_bytes,
                             job.out_bytes + 8);
        if (!error.empty()) throw std::runtime_error("on " + dev.name() + ": " + error);
        // What comes before a failed element goes out first, as on the CPU.
        const long long good = first == kNoFailure ? n : static_cast<long long>(first);
        results.clear();
        for (long long i = 0; i < good; ++i) {
            if (!filter)
                results.push_back(get(*out_buf, out_t, i));
            else if (out_buf->as<unsigned char>()[i])
                results.push_back(get(*in_buf, t, i));
        }
        if (!results.empty()) co_await out.write_all(results);
        if (good < n) fail_as_cpu(cpu, *k, get(*in_buf, t, good));
        if (!x && more) x = co_await in.read();
    }
}

// Python's combination of two partial results, as the CPU's reduce makes it.
Value combine(ReduceOp op, const Value& a, const Value& b) {
    if (a.is_int() && b.is_int()) {
        std::int64_t r = 0;
        const std::int64_t x = a.as_int(), y = b.as_int();
        switch (op) {
            case ReduceOp::Sum:
                if (__builtin_add_overflow(x, y, &r))
                    throw std::overflow_error("reduce: int overflow");
                return Value(r);
            case ReduceOp::Product:
                if (__builtin_mul_overflow(x, y, &r))
                    throw std::overflow_error("reduce: int overflow");
                return Value(r);
            case ReduceOp::Min:
                return y < x ? b : a;
            case ReduceOp::Max:
                return y > x ? b : a;
        }
    }
    switch (op) {
        case ReduceOp::Sum:
            return Value(a.as_number() + b.as_number());
        case ReduceOp::Product:
            return Value(a.as_number() * b.as_number());
        case ReduceOp::Min:
            return less_than(b, a) ? b : a;
        case ReduceOp::Max:
            return less_than(a, b) ? b : a;
    }
    return a;
}

Task reduce(ProcessContext& ctx, std::shared_ptr<const Loaded> k) {
    Device& dev = *k->device;
    const Expr* pre =
        ctx.has_param("expr") && !ctx.param("expr").is_null() ? &ctx.expr("expr") : nullptr;
    auto& in = ctx.in();
    auto in_buf = dev.host_buffer(kReduceBatch * 8);
    std::int64_t count = 0;
    std::optional<Value> acc;
    std::optional<Value> x = co_await in.read();
    while (x) {
        ElemType t;
        if (!device_type(*x, *k, t))
            throw std::invalid_argument("reduce on a GPU takes ints and floats, got " +
                                        std::string(type_name(x->type())) + " " + to_printed(*x) +
                                        " (without on: gpu it runs on the CPU)");
        long long n = 0;
        put(*in_buf, n++, *x);
        x.reset();
        while (n < kReduceBatch) {  // a full batch, whether or not it is there yet
            x = co_await in.read();
            ElemType u;
            if (!x || !device_type(*x, *k, u) || u != t) break;
            put(*in_buf, n++, *x);
            x.reset();
        }
        count += n;
        Completion done;
        std::string error;
        unsigned long long first = kNoFailure;
        unsigned char total[8] = {};  // the batch's result: an int64, a float64 or a bool
        const ElemType acc_t = t == ElemType::Int ? k->int_out : k->float_out;
        bool has = false;
        ReduceJob job;
        job.program = k->program.get();
        job.entry = kernel_entry("cf_reduce", t);
        job.in = in_buf.get();
        job.in_bytes = static_cast<std::size_t>(n) * 8;
        job.n = n;
        job.result = total;
        job.acc_bytes = acc_t == ElemType::Bool ? 1 : 8;  // a bool accumulates in one byte
        job.has_result = &has;
        job.first_failure = &first;
        const auto started = std::chrono::steady_clock::now();
        dev.run(job, &error, done);
        co_await wait_for(done);
        ctx.note_device_work(std::chrono::steady_clock::now() - started, job.in_bytes,
                             job.acc_bytes + 1 + 8);
        if (!error.empty()) throw std::runtime_error("on " + dev.name() + ": " + error);
        if (first == kCombineFailed) throw std::overflow_error("reduce: int overflow");
        if (first != kNoFailure) {
            if (!pre) throw std::logic_error("the GPU failed on a reduction without expr");
            fail_as_cpu(*pre, *k, get(*in_buf, t, static_cast<long long>(first)));
        }
        if (!has) continue;
        Value partial;
        if (acc_t == ElemType::Float) {
            double v;
            std::memcpy(&v, total, 8);
            partial = Value(v);
        } else if (acc_t == ElemType::Bool) {
            partial = Value(total[0] != 0);
        } else {
            std::int64_t v;
            std::memcpy(&v, total, 8);
            partial = Value(v);
        }
        acc = acc ? combine(*k->op, *acc, partial) : partial;
        if (!x) x = co_await in.read();
    }
    std::optional<Value> result;
    if (k->mean) {
        if (count) result = Value(acc->as_number() / static_cast<double>(count));
    } else if (acc) {
        result = std::move(acc);
    } else if (*k->op == ReduceOp::Sum) {
        result = Value(std::int64_t{0});
    } else if (*k->op == ReduceOp::Product) {
        result = Value(std::int64_t{1});
    }
    if (result) co_await ctx.out().write(std::move(*result));
}

// gpu.kernel: its kernel, its arguments, and the params' values as the kernel takes them.
struct RawLoaded {
    Device* device = nullptr;
    std::unique_ptr<Program> program;
    std::string entry;
    std::vector<KernelArg> args;
    std::vector<RawArg> scalars;  // parallel to args: the bytes of params (n is set per launch)
    unsigned block = 256;
};

// A param's value in the bytes of its argument's type (checked to fit when the graph loaded).
RawArg scalar_arg(const KernelArg& a, const Value& v) {
    switch (*a.dtype()) {
        case DType::I32:
            return RawArg::of(static_cast<std::int32_t>(v.as_int()));
        case DType::I64:
            return RawArg::of(static_cast<long long>(v.as_int()));
        case DType::F32:
            return RawArg::of(static_cast<float>(v.as_number()));
        case DType::F64:
            return RawArg::of(v.as_number());
    }
    return RawArg();
}

// One launch for each set of input tensors, one from each input; ends when an input ends.
Task raw_kernel(ProcessContext& ctx, std::shared_ptr<const RawLoaded> k) {
    Device& dev = *k->device;
    std::vector<std::unique_ptr<HostBuffer>> buffers(k->args.size());
    std::vector<Value> outputs;
    while (true) {
        RawJob job;
        job.program = k->program.get();
        job.entry = k->entry;
        job.block = k->block;
        job.args = k->scalars;
        long long n = -1;
        for (std::size_t i = 0; i < k->args.size(); ++i) {
            const KernelArg& a = k->args[i];
            if (!(a.pointer && a.is_const)) continue;
            auto x = co_await ctx.in(a.name).read();
            if (!x) co_return;
            if (!x->is_tensor() || x->as_tensor().dtype != *a.dtype())
                throw std::invalid_argument(
                    "gpu.kernel: input '" + a.name + "' takes " + dtype_name(*a.dtype()) +
                    " tensors, got " +
                    (x->is_tensor() ? std::string(dtype_name(x->as_tensor().dtype)) + " tensor"
                                    : std::string(type_name(x->type()))));
            const Tensor& t = x->as_tensor();
            const auto count = static_cast<long long>(t.size());
            if (n < 0) n = count;
            if (count != n)
                throw std::invalid_argument("gpu.kernel: input '" + a.name + "' has " +
                                            std::to_string(count) + " elements, the first " +
                                            std::to_string(n));
            if (!buffers[i] || buffers[i]->size() < t.data.size())
                buffers[i] = dev.host_buffer(t.data.size());
            if (!t.data.empty()) std::memcpy(buffers[i]->data(), t.data.data(), t.data.size());
            job.args[i] = RawArg::of(RawArg::Kind::Input, *buffers[i], t.data.size());
        }
        job.n = n;
        for (std::size_t i = 0; i < k->args.size(); ++i) {
            const KernelArg& a = k->args[i];
            if (a.pointer && !a.is_const) {
                const std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(*a.dtype());
                if (!buffers[i] || buffers[i]->size() < bytes) buffers[i] = dev.host_buffer(bytes);
                job.args[i] = RawArg::of(RawArg::Kind::Output, *buffers[i], bytes);
            } else if (!a.pointer && a.name == "n") {
                job.args[i] = RawArg::of(n);
            }
        }
        Completion done;
        std::string error;
        const auto started = std::chrono::steady_clock::now();
        dev.run(job, &error, done);
        co_await wait_for(done);
        std::uint64_t to = 0, from = 0;
        for (const RawArg& arg : job.args)
            if (arg.kind != RawArg::Kind::Scalar)
                (arg.kind == RawArg::Kind::Input ? to : from) += arg.bytes;
        ctx.note_device_work(std::chrono::steady_clock::now() - started, to, from);
        if (!error.empty()) throw std::runtime_error("on " + dev.name() + ": " + error);
        for (std::size_t i = 0; i < k->args.size(); ++i) {
            const KernelArg& a = k->args[i];
            if (!a.pointer || a.is_const) continue;
            Tensor t;
            t.dtype = *a.dtype();
            t.shape = {n};
            t.data.resize(job.args[i].bytes);
            if (!t.data.empty()) std::memcpy(t.data.data(), buffers[i]->data(), t.data.size());
            co_await ctx.out(a.name).write(Value(std::move(t)));
        }
    }
}

NodeBody raw_kernel_body(const PlanProcess& p, const KernelCache& cache, int device_index) {
    auto k = std::make_shared<RawLoaded>();
    k->device = &device_for(device_index);
    k->entry = std::string(p.params.at("entry").as_string());
    k->block = static_cast<unsigned>(p.params.at("block").as_int());
    const std::string source(p.params.at("source").as_string());
    k->args = kernel_arguments(source, k->entry);
    const Value& params = p.params.at("params");
    for (const KernelArg& a : k->args) {
        RawArg r;
        if (!a.pointer && params.is_record())
            for (const auto& [name, value] : params.as_record())
                if (name == a.name) r = scalar_arg(a, value);
        k->scalars.push_back(r);
    }
    const Compiled c = compile_cached(cache, source, p.group + ".cu", k->device->arch());
    if (!c.ok)
        throw std::runtime_error("the kernel of '" + p.group + "' does not compile: " + c.log);
    k->program = k->device->load(c.cubin, source + host_trampoline(k->args, k->entry));
    return [k](ProcessContext& ctx) { return raw_kernel(ctx, k); };
}

}  // namespace

NodeBody gpu_process_body(const PlanProcess& p, const KernelCache& cache, int device_index) {
    const std::string node = p.type ? p.type->name : "";
    if (node == "gpu.kernel") return raw_kernel_body(p, cache, device_index);
    if (node == "pi.sample" || node == "random.uniform")
        return random_process_body(p, cache, device_index);
    const ProcessKernels kernels = kernels_for(p);
    if (kernels.variants.empty()) return p.type->body;  // a count: no kernel to run
    auto k = std::make_shared<Loaded>();
    k->device = &device_for(device_index);
    k->node = node;
    k->head = p.name;
    k->fused = p.fused;
    for (const auto& v : kernels.variants) {
        if (!v.kernel) continue;
        (v.in == ElemType::Int ? k->for_int : k->for_float) = true;
        (v.in == ElemType::Int ? k->int_out : k->float_out) = v.kernel->out;
    }
    if (node == "reduce") {
        const std::string op(p.params.at("op").as_string());
        k->mean = op == "mean";
        k->op = op == "product" ? ReduceOp::Product
                : op == "min"   ? ReduceOp::Min
                : op == "max"   ? ReduceOp::Max
                                : ReduceOp::Sum;
    }
    const std::string source = kernels.source();
    const Compiled c = compile_cached(cache, source, p.group + ".cu", k->device->arch());
    if (!c.ok)
        throw std::runtime_error("the kernels of '" + p.group + "' do not compile: " + c.log);
    k->program = k->device->load(c.cubin, source);
    if (node == "reduce") return [k](ProcessContext& ctx) { return reduce(ctx, k); };
    const bool filter = node == "filter";
    return [k, filter](ProcessContext& ctx) { return map_or_filter(ctx, k, filter); };
}

}  // namespace chanflow::gpu
