// chanflow_gpu_bench — GPU processes against raw CUDA on the same card, in one run.
//
// Raw baselines (skipped where no CUDA device can be used): a device-to-device copy, pinned
// copies both ways, an empty kernel's launch and synchronize. Then the engine: a scalar
// stream through a GPU map against the same map on the CPU (messages a second), and the
// round trip of one message through a GPU map (a rendezvous makes every batch one element)
// against the raw launch. With CHANFLOW_GPU_DEVICE=host the engine's rows run on the host
// device: a test of this program, not a measurement of a GPU.
//   chanflow_gpu_bench [MESSAGES [PI_SAMPLES]]   (default 4 000 000 and 10^10)
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "chanflow/chanflow.hpp"
#include "device.hpp"
#include "nvrtc_compiler.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool ok(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    std::printf("  %s: %s\n", what, cudaGetErrorString(e));
    return false;
}

// A hand-written Monte Carlo pi, as one would write it without chanflow: each thread draws
// its share of the points with a 64-bit LCG, a block adds its counts in shared memory.
constexpr const char* kHandPi = R"CUDA(
extern "C" __global__ void hand_pi(unsigned long long seed, long long samples,
                                   unsigned long long* inside) {
    __shared__ unsigned long long block_count[256];
    const long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long threads = (long long)gridDim.x * blockDim.x;
    unsigned long long x = seed ^ (unsigned long long)id * 0x9e3779b97f4a7c15ULL, count = 0;
    for (long long i = id; i < samples; i += threads) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const double a = (double)(x >> 11) * 0x1.0p-53;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const double b = (double)(x >> 11) * 0x1.0p-53;
        count += a * a + b * b < 1.0;
    }
    block_count[threadIdx.x] = count;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) block_count[threadIdx.x] += block_count[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(inside, block_count[0]);
}
)CUDA";

// The hand-written pi over `samples` points, in seconds (0 when it cannot run).
double hand_pi(long long samples, int arch) {
    const chanflow::gpu::Compiled c = chanflow::gpu::compile_cuda(kHandPi, "hand_pi.cu", arch);
    cudaLibrary_t lib = nullptr;
    cudaKernel_t kernel = nullptr;
    unsigned long long* inside = nullptr;
    if (!c.ok ||
        !ok(cudaLibraryLoadData(&lib, c.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
            "cudaLibraryLoadData") ||
        !ok(cudaLibraryGetKernel(&kernel, lib, "hand_pi"), "cudaLibraryGetKernel") ||
        !ok(cudaMalloc(reinterpret_cast<void**>(&inside), 8), "cudaMalloc"))
        return 0;
    unsigned long long seed = 7;
    void* args[] = {&seed, &samples, &inside};
    cudaMemset(inside, 0, 8);
    const auto t0 = Clock::now();
    cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(1024), dim3(256), args, 0,
                     nullptr);
    unsigned long long count = 0;
    cudaMemcpy(&count, inside, 8, cudaMemcpyDeviceToHost);
    const double secs = since(t0);
    std::printf("%-52s %8.3f s (pi ~ %.6f)\n", "hand-written pi kernel", secs,
                4.0 * static_cast<double>(count) / static_cast<double>(samples));
    cudaFree(inside);
    cudaLibraryUnload(lib);
    return secs;
}

// pi.sample on a GPU: one task of `samples` points, through the engine.
double engine_pi(long long samples) {
    chanflow::Graph g("pi");
    g.process("tasks", "range").with("stop", 1).out("out", "t");
    auto sample = g.process("sample", "pi.sample");
    sample.with("samples", samples).with("seed", 7).in("in", "t").out("out", "hits").gpu();
    g.process("sink", "collect").in("in", "hits");
    chanflow::Plan plan = g.plan();
    if (!chanflow::settle_gpu_placement(plan).empty()) return -1;
    const auto t0 = Clock::now();
    const chanflow::RunResult r = chanflow::run(plan, {});
    if (r.status != chanflow::RunStatus::Ok) return -1;
    return since(t0);
}

// Raw CUDA; returns the empty kernel's launch + synchronize in seconds (0 when not run).
double raw_baselines() {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("raw CUDA baselines: skipped (no CUDA device)\n");
        return 0;
    }
    cudaDeviceProp props{};
    cudaGetDeviceProperties(&props, 0);
    std::printf("device: %s, sm_%d%d\n", props.name, props.major, props.minor);
    const std::size_t bytes = std::size_t{1} << 30;
    void *a = nullptr, *b = nullptr, *pinned = nullptr;
    if (!ok(cudaMalloc(&a, bytes), "cudaMalloc") || !ok(cudaMalloc(&b, bytes), "cudaMalloc") ||
        !ok(cudaMallocHost(&pinned, bytes / 4), "cudaMallocHost"))
        return 0;
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);  // warm
    cudaDeviceSynchronize();
    auto t0 = Clock::now();
    for (int i = 0; i < 10; ++i) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    std::printf("%-52s %8.1f GB/s (read + write)\n", "device-to-device copy, 1 GiB",
                20.0 * bytes / since(t0) / 1e9);
    for (const auto kind : {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost}) {
        cudaMemcpyAsync(kind == cudaMemcpyHostToDevice ? a : pinned,
                        kind == cudaMemcpyHostToDevice ? pinned : a, bytes / 4, kind, nullptr);
        cudaDeviceSynchronize();
        t0 = Clock::now();
        for (int i = 0; i < 10; ++i)
            cudaMemcpyAsync(kind == cudaMemcpyHostToDevice ? a : pinned,
                            kind == cudaMemcpyHostToDevice ? pinned : a, bytes / 4, kind, nullptr);
        cudaDeviceSynchronize();
        std::printf("%-52s %8.1f GB/s\n",
                    kind == cudaMemcpyHostToDevice
                        ? "pinned cudaMemcpyAsync host to device, 256 MiB"
                        : "pinned cudaMemcpyAsync device to host, 256 MiB",
                    2.5 * bytes / since(t0) / 1e9);
    }
    const chanflow::gpu::Compiled empty = chanflow::gpu::compile_cuda(
        "extern \"C\" __global__ void empty() {}", "empty.cu", props.major * 10 + props.minor);
    cudaLibrary_t lib = nullptr;
    cudaKernel_t kernel = nullptr;
    double launch = 0;
    if (empty.ok &&
        ok(cudaLibraryLoadData(&lib, empty.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
           "cudaLibraryLoadData") &&
        ok(cudaLibraryGetKernel(&kernel, lib, "empty"), "cudaLibraryGetKernel")) {
        const int rounds = 20000;
        t0 = Clock::now();
        for (int i = 0; i < rounds; ++i) {
            cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(1), dim3(1), nullptr, 0,
                             nullptr);
            cudaStreamSynchronize(nullptr);
        }
        launch = since(t0) / rounds;
        std::printf("%-52s %8.2f us\n", "empty kernel: launch + synchronize", launch * 1e6);
        cudaLibraryUnload(lib);
    }
    cudaFree(a);
    cudaFree(b);
    cudaFreeHost(pinned);
    return launch;
}

// range -> 4 GPU maps -> sink, their kernels fused into one or run one by one.
double run_chain(std::int64_t n, bool fuse) {
    chanflow::Graph g("chain");
    g.process("numbers", "range").with("stop", n).out("out", "c0");
    const char* exprs[] = {"x * 2.0", "x + 1", "x * x", "x - 0.5"};
    for (int i = 0; i < 4; ++i) {
        auto m = g.process("m" + std::to_string(i), "map");
        m.with("expr", exprs[i])
            .in("in", "c" + std::to_string(i))
            .out("out", "c" + std::to_string(i + 1))
            .gpu();
    }
    g.process("sink", "discard").in("in", "c4");
    chanflow::Plan plan = g.plan();
    if (!chanflow::settle_gpu_placement(plan).empty()) return -1;
    if (fuse) chanflow::fuse_gpu_maps(plan);
    const auto t0 = Clock::now();
    if (chanflow::run(plan, {}).status != chanflow::RunStatus::Ok) return -1;
    return since(t0);
}

double run_graph(std::int64_t n, bool gpu, std::size_t capacity) {
    chanflow::Graph g("bench");
    g.process("numbers", "range").with("stop", n).out("out", "a");
    auto map = g.process("scale", "map");
    map.with("expr", "x * 2.0 + 1").in("in", "a").out("out", "b");
    if (gpu) map.gpu();
    g.process("sink", "discard").in("in", "b");
    g.channel("a", capacity);
    chanflow::Plan plan = g.plan();
    if (gpu && !chanflow::settle_gpu_placement(plan).empty()) return -1;
    const auto t0 = Clock::now();
    const chanflow::RunResult r = chanflow::run(plan, {});
    if (r.status != chanflow::RunStatus::Ok) return -1;
    return since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : 4'000'000;
    const long long pi_samples = argc > 2 ? std::atoll(argv[2]) : 10'000'000'000LL;
    std::printf("chanflow_gpu_bench: %s\n", chanflow::gpu_unusable_reason().empty()
                                                ? "GPU processes can run"
                                                : chanflow::gpu_unusable_reason().c_str());
    const double launch = chanflow::gpu::host_device_asked() ? 0 : raw_baselines();
    if (!chanflow::gpu_unusable_reason().empty()) return 0;
    run_graph(1000, true, 64);  // warm: kernels compiled and cached
    const double cpu = run_graph(n, false, 64);
    const double gpu = run_graph(n, true, 64);
    std::printf("%-52s %8.2f M msg/s (CPU map %.2f M msg/s, ratio %.2f)\n",
                "scalar channel -> GPU map (x * 2.0 + 1) -> sink", n / gpu / 1e6, n / cpu / 1e6,
                cpu / gpu);
    const double unfused = run_chain(n, false);
    const double fused = run_chain(n, true);
    std::printf("%-52s %8.2f M msg/s (unfused %.2f M msg/s, fused %.2fx faster)\n",
                "4 adjacent GPU maps, fused into one kernel", n / fused / 1e6, n / unfused / 1e6,
                unfused / fused);
    int devices = 0;
    if (!chanflow::gpu::host_device_asked() && cudaGetDeviceCount(&devices) == cudaSuccess &&
        devices > 0) {
        cudaDeviceProp props{};
        cudaGetDeviceProperties(&props, 0);
        const double hand = hand_pi(pi_samples, props.major * 10 + props.minor);
        engine_pi(1000);  // warm: the kernel compiled and cached
        const double engine = engine_pi(pi_samples);
        if (hand > 0 && engine > 0)
            std::printf("%-52s %8.3f s (%.2fx the hand-written kernel's time)\n",
                        "pi.sample on the GPU, one task", engine, engine / hand);
    } else {
        const double engine = engine_pi(pi_samples);
        std::printf("%-52s %8.3f s\n", "pi.sample on the device, one task", engine);
    }
    const std::int64_t trips = 2000;
    const double one = run_graph(trips, true, 0) / trips;
    std::printf("%-52s %8.2f us", "one message through a GPU map (rendezvous)", one * 1e6);
    if (launch > 0) std::printf(" (%.2fx raw launch + synchronize)", one / launch);
    std::printf("\n");
    return 0;
}
