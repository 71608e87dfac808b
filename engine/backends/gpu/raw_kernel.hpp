// raw_kernel.hpp — gpu.kernel: CUDA C from the graph file. Its kernel's arguments are read
// from the source and matched by name against the process's ports and params before
// anything compiles, and NVRTC's messages are moved to the graph file's lines.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "chanflow/value.hpp"

namespace chanflow::gpu {

/// A problem with a kernel's source, at an offset into it.
class KernelSourceError : public std::runtime_error {
public:
    KernelSourceError(const std::string& what, std::size_t offset)
        : std::runtime_error(what), offset_(offset) {}
    std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t offset_;
};

/// One argument of a kernel: `const float* __restrict__ x` is {x, "float", pointer, const}.
struct KernelArg {
    std::string name;
    std::string type;  // the element or scalar type: float, double, int, long long
    bool pointer = false;
    bool is_const = false;
    std::size_t offset = 0;  // where it starts in the source
    /// The dtype of a pointer's elements, or of a scalar; none for other types.
    std::optional<DType> dtype() const;
};

/// The arguments of `extern "C" __global__ void ENTRY(...)` in `source` (comments ignored);
/// throws KernelSourceError when there is no such kernel, an argument cannot be read, or the
/// source would #include a file.
std::vector<KernelArg> kernel_arguments(const std::string& source, const std::string& entry);

/// How a process's ports and params meet its kernel's arguments.
struct KernelBinding {
    std::vector<std::string> inputs, outputs;  // the process's ports, as bound
    Record params;                             // `params:`
};

/// Every argument is an input port (a const pointer), an output port (a pointer), a param
/// (a scalar of a type its value fits) or n (long long); every port and param is an argument;
/// there is an input. Throws KernelSourceError at the argument, or at the entry.
void match_arguments(const std::vector<KernelArg>& args, const KernelBinding& binding,
                     const std::string& entry, std::size_t entry_offset);

/// For the host device: `extern "C" void cf_raw_launch(void** args, unsigned grid,
/// unsigned block)`, which calls ENTRY with args (each points to its value, as for
/// cudaLaunchKernel) once for every thread of the grid.
std::string host_trampoline(const std::vector<KernelArg>& args, const std::string& entry);

/// Where `entry` is declared in `source` (for errors that concern the whole kernel).
std::size_t entry_offset(const std::string& source, const std::string& entry);

}  // namespace chanflow::gpu
