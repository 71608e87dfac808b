// gpu_process.hpp — the body of a map, filter or reduce process placed on a GPU.
#pragma once

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "kernel_cache.hpp"

namespace chanflow::gpu {

/// Compiles (or loads from the cache) the process's kernels for device `device_index`'s
/// architecture and loads them there; the body runs them. Throws std::runtime_error when the
/// device cannot be used.
NodeBody gpu_process_body(const PlanProcess& p, const KernelCache& cache, int device_index);

}  // namespace chanflow::gpu
