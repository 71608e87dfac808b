// gpu_module.hpp — what the engine asks of the GPU module (private).
//
// The GPU module is a library of its own (libchanflow_gpu, engine/backends/gpu/), built where
// the CUDA toolkit is found and installed beside libchanflow. The engine loads it the first
// time a graph places a process on a GPU, so that a graph without one never loads CUDA.
#pragma once

#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"

namespace chanflow::detail {

class GpuModule {
public:
    virtual ~GpuModule() = default;
    /// Why kernels cannot run here, in words; "" when they can. Probed once.
    virtual std::string unusable_reason() = 0;
    /// Compiles the kernels of one checked process placed on a GPU (`spec` as written, `p`
    /// its first replica) for sm_`arch` (0: the default); what does not compile lands in
    /// `diags` at its place in the file.
    virtual void check(const ProcessSpec& spec, const PlanProcess& p, int arch,
                       std::vector<Diagnostic>& diags) = 0;
    /// The body of a process that runs on a GPU (unusable_reason() is "").
    virtual NodeBody body(const PlanProcess& p) = 0;
};

/// The GPU module, loaded on first use; nullptr when there is none, and `why` says why.
GpuModule* gpu_module(std::string* why = nullptr);

/// The body of a plan process placed on a GPU; throws std::runtime_error when none is usable.
NodeBody gpu_body(const PlanProcess& p);

}  // namespace chanflow::detail

/// The module's one entry point, looked up by name after dlopen.
extern "C" chanflow::detail::GpuModule* chanflow_gpu_module_v1();
