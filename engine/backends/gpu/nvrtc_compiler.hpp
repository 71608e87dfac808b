// nvrtc_compiler.hpp — CUDA C to a cubin with NVRTC, which needs no GPU and no driver.
#pragma once

#include <string>
#include <vector>

namespace chanflow::gpu {

/// The architecture `check` compiles for when none is given (sm_90, the H100's).
constexpr int kDefaultArch = 90;

struct Compiled {
    bool ok = false;
    std::string cubin;  // the binary, when ok
    std::string log;    // NVRTC's messages
};

/// Compiles `source` for sm_`arch`, IEEE-exact (no fused multiply-add, no fast math), so that
/// element-wise float arithmetic gives what the CPU gives.
Compiled compile_cuda(const std::string& source, const std::string& name, int arch);

/// What NVRTC calls itself: "NVRTC 13.0", part of every cache key.
std::string nvrtc_version();

/// The architectures this NVRTC compiles for (75, 80, 86, ...).
std::vector<int> supported_archs();

/// The options compile_cuda passes, part of every cache key.
std::string compile_options(int arch);

}  // namespace chanflow::gpu
