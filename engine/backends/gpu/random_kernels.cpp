// random_kernels.cpp — pi.sample and random.uniform as kernels (random_kernels.hpp).
#include "random_kernels.hpp"

namespace chanflow::gpu {
namespace {

// SplitMix64's step and mix, and a draw's double in [0, 1), as nodes/random.cpp has them.
constexpr const char* kSplitMix = R"CUDA(
__device__ __forceinline__ unsigned long long cf_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
// Draw i (from 0) of the stream whose state starts at s.
__device__ __forceinline__ double cf_draw(unsigned long long s, unsigned long long i) {
    return (double)(cf_mix64(s + (i + 1ULL) * 0x9e3779b97f4a7c15ULL) >> 11) * 0x1.0p-53;
}
)CUDA";

}  // namespace

std::string pi_kernel_source() {
    return std::string(kSplitMix) + R"CUDA(
extern "C" __global__ void cf_pi(long long state, long long samples, unsigned long long* inside) {
    const unsigned long long s = (unsigned long long)state;
    unsigned long long count = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < samples;
         i += (long long)gridDim.x * blockDim.x) {
        const double x = cf_draw(s, 2ULL * (unsigned long long)i);
        const double y = cf_draw(s, 2ULL * (unsigned long long)i + 1ULL);
        count += x * x + y * y < 1.0;
    }
    if (count) atomicAdd(inside, count);  // ints: the sum is the same in any order
}
)CUDA";
}

std::string uniform_kernel_source() {
    return std::string(kSplitMix) + R"CUDA(
extern "C" __global__ void cf_uniform(long long state, long long first, long long n, double low,
                                      double high, double* out) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = low + (high - low) * cf_draw((unsigned long long)state,
                                                     (unsigned long long)(first + i));
}
)CUDA";
}

std::uint64_t pi_task_state(std::uint64_t seed, std::int64_t task) {
    // SplitMix64{seed ^ (task * C)}.next(): the task's own stream's state.
    std::uint64_t z =
        (seed ^ (static_cast<std::uint64_t>(task) * 0xd1342543de82ef95ULL)) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace chanflow::gpu
