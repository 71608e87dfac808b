// module.cpp — the GPU module's face to the engine (engine/src/gpu_module.hpp).
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "check_kernels.hpp"
#include "device.hpp"
#include "device_probe.hpp"
#include "gpu_module.hpp"
#include "gpu_process.hpp"
#include "kernel_cache.hpp"
#include "nvrtc_compiler.hpp"
#include "runtime_impl.hpp"

namespace chanflow::gpu {
namespace {

// Which of this host's GPUs this process uses: its node-local rank under mpirun, its
// partition on the processes backend, else the first (the device is this index modulo the
// devices there are).
int device_index() {
    if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) return std::atoi(local);
    return std::max(detail::this_partition(), 0);
}

class Module final : public detail::GpuModule {
public:
    std::string unusable_reason() override {
        std::call_once(probed_, [this] {
            if (!host_device_asked()) probe_ = probe_devices();
        });
        return probe_.reason;
    }

    // Generates or reads the process's kernels and compiles them, as a load does.
    void check(const ProcessSpec& spec, const PlanProcess& p, int arch,
               std::vector<Diagnostic>& diags) override {
        arch = arch ? arch : kDefaultArch;
        const std::vector<int> archs = supported_archs();
        if (std::find(archs.begin(), archs.end(), arch) == archs.end()) {
            std::string list;
            for (int a : archs) list += (list.empty() ? "" : ", ") + std::to_string(a);
            diags.push_back({spec.pos, nvrtc_version() + " cannot compile for sm_" +
                                           std::to_string(arch) + " (it compiles for " + list +
                                           ")"});
            return;
        }
        check_process_kernels(spec, p, cache(), arch, diags);
    }

    NodeBody body(const PlanProcess& p) override {
        return gpu_process_body(p, cache(), p.device ? *p.device : device_index());
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
