// gpu_placement.cpp — where `on: gpu` processes run: loading the GPU module beside this
// library, and moving processes to the CPU where no GPU can be used (docs/gpu.md).
#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "chanflow/gpu.hpp"
#include "chanflow/node.hpp"
#include "gpu_module.hpp"

#ifndef CHANFLOW_GPU_MODULE_FILE
#define CHANFLOW_GPU_MODULE_FILE ""
#endif

namespace chanflow {

const char* gpu_mode_name(GpuMode mode) noexcept {
    return mode == GpuMode::Prefer ? "prefer" : "require";
}

std::optional<GpuMode> gpu_mode_named(std::string_view word) noexcept {
    if (word == "require") return GpuMode::Require;
    if (word == "prefer") return GpuMode::Prefer;
    return std::nullopt;
}

const std::vector<std::string>& gpu_node_types() {
    static const std::vector<std::string> types = {"filter",    "gpu.kernel",     "map",
                                                   "pi.sample", "random.uniform", "reduce"};
    return types;
}

const std::vector<std::string>& gpu_only_node_types() {
    static const std::vector<std::string> types = {"gpu.kernel"};
    return types;
}

namespace {
bool runs_only_on_gpu(const PlanProcess& p) {
    const auto& only = gpu_only_node_types();
    return p.type && std::find(only.begin(), only.end(), p.type->name) != only.end();
}
}  // namespace

namespace detail {
namespace {

struct LoadedModule {
    GpuModule* module = nullptr;
    std::string why;  // when module is null
};

// The module file lies beside this library (the build tree's lib/, or the installed libdir):
// it is as trusted as the library itself, and no search path can swap it.
LoadedModule load_module() {
    const std::string file = CHANFLOW_GPU_MODULE_FILE;
    if (file.empty()) return {nullptr, "this chanflow was built without CUDA"};
    Dl_info self{};
    if (!dladdr(reinterpret_cast<void*>(&load_module), &self) || !self.dli_fname)
        return {nullptr, "cannot tell where libchanflow lies, to load its GPU module"};
    const std::filesystem::path path = std::filesystem::path(self.dli_fname).parent_path() / file;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return {nullptr, "the GPU module " + path.string() + " is not installed"};
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* err = dlerror();
        return {nullptr, std::string("the GPU module cannot be loaded: ") + (err ? err : "?")};
    }
    auto entry = reinterpret_cast<GpuModule* (*)()>(dlsym(lib, "chanflow_gpu_module_v1"));
    if (!entry) return {nullptr, "the GPU module " + path.string() + " has no entry point"};
    return {entry(), {}};  // never unloaded: its kernels and threads live as long as we do
}

const LoadedModule& loaded() {
    static const LoadedModule m = load_module();
    return m;
}

}  // namespace

GpuModule* gpu_module(std::string* why) {
    const LoadedModule& m = loaded();
    if (!m.module && why) *why = m.why;
    return m.module;
}

NodeBody gpu_body(const PlanProcess& p) {
    const std::string reason = gpu_unusable_reason();
    if (!reason.empty())
        throw std::runtime_error("process '" + p.name + "' is placed on a GPU, but " + reason +
                                 " (settle_gpu_placement moves it to the CPU or refuses)");
    return gpu_module()->body(p);
}

}  // namespace detail

std::string gpu_unusable_reason() {
    std::string why;
    detail::GpuModule* module = detail::gpu_module(&why);
    return module ? module->unusable_reason() : why;
}

std::string settle_gpu_placement(Plan& plan) {
    const bool any = std::any_of(plan.processes.begin(), plan.processes.end(),
                                 [](const PlanProcess& p) { return p.gpu; });
    if (!any) return {};
    const std::string reason = gpu_unusable_reason();
    if (reason.empty()) return {};
    std::vector<Diagnostic> refused;
    std::set<std::string> seen, moved;
    for (PlanProcess& p : plan.processes) {
        if (!p.gpu) continue;
        const bool only = runs_only_on_gpu(p);
        if (p.gpu_mode == GpuMode::Prefer && !only) {
            p.gpu = false;
            moved.insert(p.group);
        } else if (seen.insert(p.group).second) {
            refused.push_back({p.gpu_pos, "process '" + p.group + "' needs a GPU: " + reason +
                                              (only ? " (" + p.type->name + " has no CPU version)"
                                                    : " (with 'gpu: prefer' it runs on the CPU)")});
        }
    }
    if (!refused.empty()) throw GraphError(std::move(refused));
    std::string names;
    for (const std::string& name : moved) names += (names.empty() ? "'" : ", '") + name + "'";
    return "no GPU can be used (" + reason + "): " + names +
           (moved.size() == 1 ? " runs" : " run") + " on the CPU";
}

}  // namespace chanflow

namespace chanflow {
namespace {

bool fusable(const PlanProcess& p) {
    return p.gpu && !p.hidden && p.type && p.type->name == "map" && p.replicas == 1 && !p.ordered &&
           p.exprs.count("expr");
}

// The one channel of a process's ports in one direction, or none.
std::optional<std::size_t> only_channel(const std::vector<PlanPort>& ports) {
    std::optional<std::size_t> found;
    for (const auto& port : ports)
        for (std::size_t c : port.channels) {
            if (found) return std::nullopt;
            found = c;
        }
    return found;
}

}  // namespace

std::size_t fuse_gpu_maps(Plan& plan) {
    const std::size_t n = plan.processes.size();
    // next[a] = b: b reads what a alone writes, and may be fused into it.
    std::vector<std::size_t> next(n, n);
    std::vector<bool> has_prev(n, false);
    std::vector<bool> channel_gone(plan.channels.size(), false);
    for (std::size_t a = 0; a < n; ++a) {
        const PlanProcess& pa = plan.processes[a];
        if (!fusable(pa)) continue;
        const auto c = only_channel(pa.outputs);
        if (!c) continue;
        const PlanChannel& ch = plan.channels[*c];
        if (ch.hidden || ch.writers.size() != 1 || ch.readers.size() != 1) continue;
        const std::size_t b = ch.readers[0].process;
        const PlanProcess& pb = plan.processes[b];
        if (b == a || !fusable(pb) || only_channel(pb.inputs) != c || pa.rank != pb.rank ||
            pa.device != pb.device)
            continue;
        next[a] = b;
        has_prev[b] = true;
        channel_gone[*c] = true;
    }
    // Each chain's head takes in the rest: their expressions, then the last one's outputs.
    std::vector<bool> gone(n, false);
    std::size_t fused = 0;
    for (std::size_t head = 0; head < n; ++head) {
        if (has_prev[head] || next[head] == n) continue;
        PlanProcess& h = plan.processes[head];
        std::size_t last = head;
        for (std::size_t b = next[head]; b != n; b = next[b]) {
            PlanProcess& pb = plan.processes[b];
            h.fused.push_back({pb.name, pb.exprs.at("expr")});
            gone[b] = true;
            last = b;
            ++fused;
        }
        h.outputs = plan.processes[last].outputs;
        for (const auto& port : h.outputs)
            for (std::size_t c : port.channels)
                for (EndRef& w : plan.channels[c].writers)
                    if (w.process == last) w.process = head;
    }
    if (fused == 0) return 0;
    // Renumber what is left.
    std::vector<std::size_t> process_at(n), channel_at(plan.channels.size());
    std::vector<PlanProcess> processes;
    for (std::size_t i = 0; i < n; ++i) {
        process_at[i] = processes.size();
        if (!gone[i]) processes.push_back(std::move(plan.processes[i]));
    }
    std::vector<PlanChannel> channels;
    for (std::size_t c = 0; c < plan.channels.size(); ++c) {
        channel_at[c] = channels.size();
        if (!channel_gone[c]) channels.push_back(std::move(plan.channels[c]));
    }
    for (PlanChannel& ch : channels) {
        for (EndRef& e : ch.writers) e.process = process_at[e.process];
        for (EndRef& e : ch.readers) e.process = process_at[e.process];
    }
    for (PlanProcess& p : processes) {
        for (auto* ports : {&p.inputs, &p.outputs})
            for (PlanPort& port : *ports)
                for (std::size_t& c : port.channels) c = channel_at[c];
    }
    plan.processes = std::move(processes);
    plan.channels = std::move(channels);
    return fused;
}

}  // namespace chanflow
