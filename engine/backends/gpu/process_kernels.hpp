// process_kernels.hpp — the kernels of one process placed on a GPU: which node, which
// expression, one kernel for each type of message it has a GPU form for.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chanflow/graph.hpp"
#include "codegen.hpp"

namespace chanflow::gpu {

/// The kernel for messages of one type, or why there is none.
struct KernelVariant {
    ElemType in = ElemType::Int;
    std::optional<Kernel> kernel;
    std::string unsupported;  // when there is no kernel: why
    std::size_t offset = 0;   // and where in the expression
};

struct ProcessKernels {
    std::string param;  // the parameter holding the expression ("expr"), "" when none
    std::vector<KernelVariant> variants;  // for int and for float messages; none: no kernel needed
    /// Every kernel's source, after kPrelude: one NVRTC program for the process.
    std::string source() const;
    /// A variant with a kernel exists.
    bool any() const;
};

/// The name of a kernel of `kind` (cf_map, cf_filter, cf_reduce) for messages of `in`:
/// "cf_map_int".
std::string kernel_entry(const char* kind, ElemType in);

/// The kernels of a map, filter or reduce process (`p` as checked). A reduce that counts
/// needs none.
ProcessKernels kernels_for(const PlanProcess& p);

}  // namespace chanflow::gpu
