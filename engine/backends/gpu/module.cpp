// module.cpp — the GPU module's face to the engine (engine/src/gpu_module.hpp).
#include <mutex>
#include <stdexcept>
#include <string>

#include "device_probe.hpp"
#include "gpu_module.hpp"
#include "graph_internal.hpp"
#include "kernel_cache.hpp"
#include "nvrtc_compiler.hpp"
#include "process_kernels.hpp"

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

    // Generates the process's kernels and compiles them, as a run would before it starts.
    void check(const ProcessSpec& spec, const PlanProcess& p,
               std::vector<Diagnostic>& diags) override {
        const ProcessKernels kernels = kernels_for(p);
        if (kernels.variants.empty()) return;
        const SpecValue* written = nullptr;
        for (const auto& [name, value] : spec.with)
            if (name == kernels.param) written = &value;
        const SourcePos at = written ? written->pos : spec.pos;
        if (!kernels.any()) {
            // None for ints nor floats: say why for ints, where it stands.
            const KernelVariant& v = kernels.variants.front();
            diags.push_back({written ? detail::position_in(*written, v.offset) : at,
                             "process '" + spec.name + "' cannot run on a GPU: " + v.unsupported});
            return;
        }
        const Compiled c =
            compile_cached(cache(), kernels.source(), spec.name + ".cu", kDefaultArch);
        if (!c.ok)
            diags.push_back({at, "process '" + spec.name +
                                     "': the CUDA C generated for it does not compile (please "
                                     "report this): " +
                                     c.log});
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
