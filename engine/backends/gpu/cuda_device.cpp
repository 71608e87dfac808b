// cuda_device.cpp — a CUDA device: programs loaded with the runtime's library API (no driver
// API), host buffers pinned, device memory from the stream-ordered pool, and one submitting
// thread that queues copies and launches on one stream. A job ends with a host function on
// that stream that completes the waiting process: no thread ever waits in a synchronize.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "codegen.hpp"
#include "device.hpp"
#include "submit_queue.hpp"

namespace chanflow::gpu {
namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

class PinnedBuffer final : public HostBuffer {
public:
    explicit PinnedBuffer(std::size_t bytes) : size_(bytes ? bytes : 1) {
        check(cudaMallocHost(&data_, size_), "cannot pin host memory");
    }
    ~PinnedBuffer() override { cudaFreeHost(data_); }
    void* data() noexcept override { return data_; }
    std::size_t size() const noexcept override { return size_; }

private:
    void* data_ = nullptr;
    std::size_t size_;
};

class CudaProgram final : public Program {
public:
    explicit CudaProgram(cudaLibrary_t lib) : lib_(lib) {}
    ~CudaProgram() override { cudaLibraryUnload(lib_); }
    // On the submitting thread only.
    const void* kernel(const std::string& name) const {
        auto it = kernels_.find(name);
        if (it == kernels_.end()) {
            cudaKernel_t k = nullptr;
            check(cudaLibraryGetKernel(&k, lib_, name.c_str()), "no kernel in the program");
            it = kernels_.emplace(name, k).first;
        }
        return reinterpret_cast<const void*>(it->second);
    }

private:
    cudaLibrary_t lib_;
    mutable std::unordered_map<std::string, cudaKernel_t> kernels_;
};

// Runs on a thread of the CUDA runtime's once the stream reaches it; calls no CUDA API.
void CUDART_CB land(void* arg) {
    static_cast<Completion*>(arg)->complete();
}

class CudaDevice final : public Device {
public:
    explicit CudaDevice(int index) : index_(index) {
        queue_.call([&] {
            check(cudaSetDevice(index_), "cannot use the GPU");
            cudaDeviceProp props{};
            check(cudaGetDeviceProperties(&props, index_), "cannot read the GPU's properties");
            name_ = std::string(props.name) + " (device " + std::to_string(index_) + ")";
            arch_ = props.major * 10 + props.minor;
            sms_ = props.multiProcessorCount;
            check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                  "cannot make a stream");
        });
    }
    ~CudaDevice() override {
        queue_.call([&] {
            cudaStreamSynchronize(stream_);
            cudaStreamDestroy(stream_);
        });
    }

    std::string name() const override { return name_; }
    int arch() const override { return arch_; }

    std::unique_ptr<Program> load(const std::string& cubin, const std::string&) override {
        cudaLibrary_t lib = nullptr;
        std::string error;
        queue_.call([&] {
            const cudaError_t e =
                cudaLibraryLoadData(&lib, cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
            if (e != cudaSuccess) error = cudaGetErrorString(e);
        });
        if (!error.empty()) throw std::runtime_error("cannot load kernels on the GPU: " + error);
        return std::make_unique<CudaProgram>(lib);
    }

    std::unique_ptr<HostBuffer> host_buffer(std::size_t bytes) override {
        std::unique_ptr<HostBuffer> b;
        queue_.call([&] { b = std::make_unique<PinnedBuffer>(bytes); });
        return b;
    }

    void run(const ElementwiseJob& job, std::string* error, Completion& done) override {
        queue_.post([this, job, error, &done] {
            try {
                void *in = nullptr, *out = nullptr, *fail = nullptr;
                check(cudaMallocAsync(&in, std::max<std::size_t>(job.in_bytes, 1), stream_),
                      "device memory");
                check(cudaMallocAsync(&out, std::max<std::size_t>(job.out_bytes, 1), stream_),
                      "device memory");
                check(cudaMallocAsync(&fail, 8, stream_), "device memory");
                check(cudaMemcpyAsync(in, job.in->data(), job.in_bytes, cudaMemcpyHostToDevice,
                                      stream_),
                      "copy to the GPU");
                check(cudaMemsetAsync(fail, 0xff, 8, stream_), "device memset");
                long long n = job.n;
                void* args[] = {&in, &out, &n, &fail};
                const unsigned block = 256;
                const unsigned grid = static_cast<unsigned>(std::clamp<long long>(
                    (n + block - 1) / block, 1, static_cast<long long>(sms_) * 32));
                check(cudaLaunchKernel(
                          static_cast<const CudaProgram*>(job.program)->kernel(job.entry),
                          dim3(grid), dim3(block), args, 0, stream_),
                      "kernel launch");
                check(cudaMemcpyAsync(job.out->data(), out, job.out_bytes, cudaMemcpyDeviceToHost,
                                      stream_),
                      "copy from the GPU");
                check(cudaMemcpyAsync(job.first_failure, fail, 8, cudaMemcpyDeviceToHost, stream_),
                      "copy from the GPU");
                cudaFreeAsync(in, stream_);
                cudaFreeAsync(out, stream_);
                cudaFreeAsync(fail, stream_);
                check(cudaLaunchHostFunc(stream_, land, &done), "host function");
            } catch (const std::exception& e) {
                *error = e.what();
                done.complete();
            }
        });
    }

    void run(const ReduceJob& job, std::string* error, Completion& done) override {
        queue_.post([this, job, error, &done] {
            try {
                const auto* program = static_cast<const CudaProgram*>(job.program);
                auto blocks = [](long long count) {
                    return std::clamp<long long>((count + kReduceBlock - 1) / kReduceBlock, 1,
                                                 kReduceMaxBlocks);
                };
                void *in = nullptr, *fail = nullptr;
                void *partial[2] = {}, *has[2] = {};
                check(cudaMallocAsync(&in, std::max<std::size_t>(job.in_bytes, 1), stream_),
                      "device memory");
                check(cudaMallocAsync(&fail, 8, stream_), "device memory");
                for (int i = 0; i < 2; ++i) {
                    check(cudaMallocAsync(&partial[i], job.acc_bytes * kReduceMaxBlocks, stream_),
                          "device memory");
                    check(cudaMallocAsync(&has[i], kReduceMaxBlocks, stream_), "device memory");
                }
                check(cudaMemcpyAsync(in, job.in->data(), job.in_bytes, cudaMemcpyHostToDevice,
                                      stream_),
                      "copy to the GPU");
                check(cudaMemsetAsync(fail, 0xff, 8, stream_), "device memset");
                long long n = job.n;
                long long count = blocks(n);
                void* first[] = {&in, &n, &partial[0], &has[0], &fail};
                check(
                    cudaLaunchKernel(program->kernel(job.entry), dim3(static_cast<unsigned>(count)),
                                     dim3(kReduceBlock), first, 0, stream_),
                    "kernel launch");
                int cur = 0;
                while (count > 1) {
                    long long from = count;
                    count = blocks(from);
                    void* args[] = {&partial[cur],     &has[cur],     &from,
                                    &partial[1 - cur], &has[1 - cur], &fail};
                    check(cudaLaunchKernel(program->kernel(job.entry + "_partials"),
                                           dim3(static_cast<unsigned>(count)), dim3(kReduceBlock),
                                           args, 0, stream_),
                          "kernel launch");
                    cur = 1 - cur;
                }
                check(cudaMemcpyAsync(job.result, partial[cur], job.acc_bytes,
                                      cudaMemcpyDeviceToHost, stream_),
                      "copy from the GPU");
                check(cudaMemcpyAsync(job.has_result, has[cur], 1, cudaMemcpyDeviceToHost, stream_),
                      "copy from the GPU");
                check(cudaMemcpyAsync(job.first_failure, fail, 8, cudaMemcpyDeviceToHost, stream_),
                      "copy from the GPU");
                cudaFreeAsync(in, stream_);
                cudaFreeAsync(fail, stream_);
                for (int i = 0; i < 2; ++i) {
                    cudaFreeAsync(partial[i], stream_);
                    cudaFreeAsync(has[i], stream_);
                }
                check(cudaLaunchHostFunc(stream_, land, &done), "host function");
            } catch (const std::exception& e) {
                *error = e.what();
                done.complete();
            }
        });
    }

    void run(const RawJob& job, std::string* error, Completion& done) override {
        queue_.post([this, job, error, &done] {
            std::vector<void*> device(job.args.size(), nullptr);
            try {
                std::vector<void*> args(job.args.size());
                for (std::size_t i = 0; i < job.args.size(); ++i) {
                    const RawArg& a = job.args[i];
                    if (a.kind == RawArg::Kind::Scalar) {
                        args[i] = const_cast<unsigned char*>(a.scalar);
                        continue;
                    }
                    check(cudaMallocAsync(&device[i], std::max<std::size_t>(a.bytes, 1), stream_),
                          "device memory");
                    if (a.kind == RawArg::Kind::Input || a.kind == RawArg::Kind::InOut)
                        check(cudaMemcpyAsync(device[i], a.buffer->data(), a.bytes,
                                              cudaMemcpyHostToDevice, stream_),
                              "copy to the GPU");
                    args[i] = &device[i];
                }
                const long long grid =
                    job.grid ? job.grid
                             : std::max<long long>((job.n + job.block - 1) / job.block, 1);
                check(cudaLaunchKernel(
                          static_cast<const CudaProgram*>(job.program)->kernel(job.entry),
                          dim3(static_cast<unsigned>(grid)), dim3(job.block), args.data(), 0,
                          stream_),
                      "kernel launch");
                for (std::size_t i = 0; i < job.args.size(); ++i)
                    if (job.args[i].kind == RawArg::Kind::Output ||
                        job.args[i].kind == RawArg::Kind::InOut)
                        check(cudaMemcpyAsync(job.args[i].buffer->data(), device[i],
                                              job.args[i].bytes, cudaMemcpyDeviceToHost, stream_),
                              "copy from the GPU");
                for (void* d : device)
                    if (d) cudaFreeAsync(d, stream_);
                check(cudaLaunchHostFunc(stream_, land, &done), "host function");
            } catch (const std::exception& e) {
                for (void* d : device)
                    if (d) cudaFreeAsync(d, stream_);
                *error = e.what();
                done.complete();
            }
        });
    }

private:
    int index_;
    std::string name_;
    int arch_ = 90;
    int sms_ = 1;
    cudaStream_t stream_ = nullptr;
    SubmitQueue queue_;
};

}  // namespace

Device& host_device();

bool host_device_asked() {
    const char* which = std::getenv("CHANFLOW_GPU_DEVICE");
    return which && std::string(which) == "host";
}

Device& device_for(int index) {
    if (host_device_asked()) return host_device();
    static std::mutex mu;
    static std::unordered_map<int, std::unique_ptr<CudaDevice>> devices;
    std::lock_guard lock(mu);
    int count = 0;
    check(cudaGetDeviceCount(&count), "no GPU");
    if (count <= 0) throw std::runtime_error("no GPU");
    const int chosen = index % count;
    auto& d = devices[chosen];
    if (!d) d = std::make_unique<CudaDevice>(chosen);
    return *d;
}

}  // namespace chanflow::gpu
