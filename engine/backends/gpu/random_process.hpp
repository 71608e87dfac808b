// random_process.hpp — pi.sample and random.uniform on a GPU.
#pragma once

#include <string>

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "kernel_cache.hpp"

namespace chanflow::gpu {

/// The CUDA C of pi.sample's or random.uniform's kernel.
std::string random_kernel_source(const std::string& node);

/// Compiles (or loads) the node's kernel for device `device_index` and loads it there.
NodeBody random_process_body(const PlanProcess& p, const KernelCache& cache, int device_index);

}  // namespace chanflow::gpu
