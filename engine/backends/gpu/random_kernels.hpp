// random_kernels.hpp — pi.sample and random.uniform on a GPU. Their numbers are the CPU's:
// SplitMix64 is counter-based (draw i of a stream seeded s is mix(s + (i + 1) * golden)), so
// each thread computes its own draws, and the GPU gives the same counts and floats as the CPU
// nodes (nodes/random.cpp), bit for bit.
#pragma once

#include <cstdint>
#include <string>

namespace chanflow::gpu {

/// extern "C" __global__ void cf_pi(long long state, long long samples,
///                                  unsigned long long* inside)
/// adds to *inside how many of the task's `samples` points fall in the quarter circle, the
/// task's stream starting after `state`. Launch with a grid of kPiBlocks blocks.
std::string pi_kernel_source();
constexpr unsigned kPiBlocks = 1024;

/// extern "C" __global__ void cf_uniform(long long state, long long first, long long n,
///                                       double low, double high, double* out)
/// out[i] = draw first + i of the stream after `state`, scaled to [low, high).
std::string uniform_kernel_source();

/// The state a pi.sample task's stream starts after, as the CPU node seeds it.
std::uint64_t pi_task_state(std::uint64_t seed, std::int64_t task);

}  // namespace chanflow::gpu
