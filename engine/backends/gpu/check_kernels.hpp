// check_kernels.hpp — what `chanflow check` (and every load) does for a process placed on a
// GPU: generate or read its kernels, compile them, and put what fails at its place in the
// graph file.
#pragma once

#include <vector>

#include "chanflow/graph.hpp"
#include "kernel_cache.hpp"

namespace chanflow::gpu {

/// For sm_`arch`.
void check_process_kernels(const ProcessSpec& spec, const PlanProcess& p, const KernelCache& cache,
                           int arch, std::vector<Diagnostic>& diags);

}  // namespace chanflow::gpu
