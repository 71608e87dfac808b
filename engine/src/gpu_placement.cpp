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
    static const std::vector<std::string> types = {"filter", "gpu.kernel", "map", "reduce"};
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
