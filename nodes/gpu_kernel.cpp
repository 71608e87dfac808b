// gpu.kernel: CUDA C from the graph file, run on a GPU (docs/gpu.md#raw-kernels). It has no
// CPU version: where no GPU can be used, a graph that holds one does not run.
#include <stdexcept>

#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task gpu_kernel_body(ProcessContext& ctx) {
    throw std::runtime_error("gpu.kernel '" + ctx.name() + "' runs only on a GPU");
    co_return;
}

CHANFLOW_NODE(
    {.name = "gpu.kernel",
     .doc = "Runs a CUDA C kernel from the graph file on a GPU (with on: gpu): one launch per "
            "set of input tensors, one from each input; each output emits a tensor of n "
            "elements.",
     .params = {param("source", ParamType::String, "the CUDA C that defines the kernel"),
                param("entry", ParamType::String, "the kernel's name (extern \"C\" __global__)"),
                param("params", ParamType::Any, "the kernel's scalar arguments by name",
                      Value(Record{})),
                param("block", ParamType::Int, "threads a block", 256).within(1, 1024)},
     .body = gpu_kernel_body,
     .open_ports = true});

}  // namespace
}  // namespace chanflow
