// host_shim.hpp — what a CUDA kernel finds about itself (threadIdx, blockIdx, ...), supplied
// on the CPU so that generated element-wise kernels run there for the tests: the caller
// sets them and calls the kernel once per thread of the grid.
#pragma once

struct cf_dim3 {
    unsigned x = 0, y = 0, z = 0;
};
inline cf_dim3 threadIdx, blockIdx, blockDim, gridDim;

extern "C" void cf_launch_as(unsigned grid, unsigned block, unsigned b, unsigned t) {
    gridDim.x = grid;
    blockDim.x = block;
    blockIdx.x = b;
    threadIdx.x = t;
}
