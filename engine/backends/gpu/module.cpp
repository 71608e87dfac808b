// module.cpp — the GPU module's face to the engine (engine/src/gpu_module.hpp).
#include <mutex>
#include <stdexcept>
#include <string>

#include "check_kernels.hpp"
#include "device_probe.hpp"
#include "gpu_module.hpp"
#include "kernel_cache.hpp"

namespace chanflow::gpu {
namespace {

class Module final : public detail::GpuModule {
public:
    std::string unusable_reason() override {
        std::call_once(probed_, [this] {
            probe_ = probe_devices();
            // Found a GPU: kernels are compiled and checked, but this build does not launch
            // them yet (docs/gpu.md, "What runs where").
            if (probe_.reason.empty())
                probe_.reason = "this chanflow compiles kernels but does not launch them yet";
        });
        return probe_.reason;
    }

    // Generates or reads the process's kernels and compiles them, as a load does.
    void check(const ProcessSpec& spec, const PlanProcess& p,
               std::vector<Diagnostic>& diags) override {
        check_process_kernels(spec, p, cache(), diags);
    }

    NodeBody body(const PlanProcess& p) override {
        throw std::logic_error("process '" + p.name + "': no GPU body");
    }

private:
    const KernelCache& cache() {
        std::call_once(cache_opened_, [this] { cache_ = KernelCache::from_environment(); });
        return cache_;
    }

    std::once_flag cache_opened_;
    KernelCache cache_;
    std::once_flag probed_;
    DeviceProbe probe_;
};

}  // namespace
}  // namespace chanflow::gpu

extern "C" chanflow::detail::GpuModule* chanflow_gpu_module_v1() {
    static chanflow::gpu::Module module;
    return &module;
}
