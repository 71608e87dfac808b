// host_device.cpp — the host device: the generated kernels, compiled by the host's C++
// compiler (CXX, else c++), run on the CPU one grid thread at a time. It tests the whole GPU
// path (batching, launches, failures, unbatching) where no GPU is; it is no way to run fast.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "device.hpp"
#include "submit_queue.hpp"

namespace chanflow::gpu {
namespace {

// What CUDA gives a kernel, for a grid of one block of one thread: the kernels' loops then
// cover every element, and a reduction's block combines them in order.
constexpr const char* kHostShim = R"(
struct cf_dim3 { unsigned x = 0, y = 0, z = 0; };
static cf_dim3 threadIdx, blockIdx, blockDim{1, 1, 1}, gridDim{1, 1, 1};
#define __shared__ static
#define __syncthreads() ((void)0)
#define __restrict__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
template <class T> T atomicAdd(T* at, T v) { T old = *at; *at += v; return old; }
)";

class HostBufferImpl final : public HostBuffer {
public:
    explicit HostBufferImpl(std::size_t bytes)
        : size_(bytes ? bytes : 1), bytes_(new unsigned char[size_]) {}
    void* data() noexcept override { return bytes_.get(); }
    std::size_t size() const noexcept override { return size_; }

private:
    std::size_t size_;
    std::unique_ptr<unsigned char[]> bytes_;
};

class HostProgram final : public Program {
public:
    HostProgram(void* lib, std::filesystem::path dir) : lib_(lib), dir_(std::move(dir)) {}
    ~HostProgram() override {
        if (lib_) dlclose(lib_);
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    void* entry(const std::string& name) const {
        void* f = dlsym(lib_, name.c_str());
        if (!f) throw std::runtime_error("no kernel '" + name + "' in the host program");
        return f;
    }

private:
    void* lib_;
    std::filesystem::path dir_;
};

class HostDevice final : public Device {
public:
    std::string name() const override { return "the host (kernels on the CPU)"; }
    int arch() const override { return 90; }

    std::unique_ptr<Program> load(const std::string&, const std::string& source) override {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl =
            std::string(tmp && *tmp ? tmp : "/tmp") + "/chanflow-host-kernels-XXXXXX";
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("cannot make a folder for host kernels");
        const std::filesystem::path dir = tmpl;
        const auto src = dir / "kernels.cpp", lib = dir / "kernels.so";
        std::ofstream(src) << kHostShim << source;
        const char* cxx = std::getenv("CXX");
        const std::string cmd = std::string(cxx && *cxx ? cxx : "c++") +
                                " -std=c++17 -O1 -w -shared -fPIC -o " + lib.string() + " " +
                                src.string() + " >" + (dir / "log").string() + " 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            std::ifstream in(dir / "log");
            std::string log((std::istreambuf_iterator<char>(in)), {});
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
            throw std::runtime_error("the host compiler could not build the kernels: " +
                                     log.substr(0, 2000));
        }
        void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) throw std::runtime_error("cannot load the host kernels");
        return std::make_unique<HostProgram>(handle, dir);
    }

    std::unique_ptr<HostBuffer> host_buffer(std::size_t bytes) override {
        return std::make_unique<HostBufferImpl>(bytes);
    }

    void run(const ElementwiseJob& job, std::string* error, Completion& done) override {
        queue_.post([job, error, &done] {
            try {
                using Fn = void (*)(const void*, void*, long long, unsigned long long*);
                auto f = reinterpret_cast<Fn>(
                    static_cast<const HostProgram*>(job.program)->entry(job.entry));
                *job.first_failure = std::numeric_limits<unsigned long long>::max();
                f(job.in->data(), job.out->data(), job.n, job.first_failure);
            } catch (const std::exception& e) {
                *error = e.what();
            }
            done.complete();
        });
    }

    void run(const ReduceJob& job, std::string* error, Completion& done) override {
        queue_.post([job, error, &done] {
            try {
                using Fn =
                    void (*)(const void*, long long, void*, unsigned char*, unsigned long long*);
                auto f = reinterpret_cast<Fn>(
                    static_cast<const HostProgram*>(job.program)->entry(job.entry));
                *job.first_failure = std::numeric_limits<unsigned long long>::max();
                unsigned char has = 0;
                f(job.in->data(), job.n, job.result, &has, job.first_failure);
                *job.has_result = has != 0;
            } catch (const std::exception& e) {
                *error = e.what();
            }
            done.complete();
        });
    }

    // The program of a raw kernel holds cf_raw_launch (raw_kernel.hpp, host_trampoline),
    // which calls the kernel once for every thread of the grid.
    void run(const RawJob& job, std::string* error, Completion& done) override {
        queue_.post([job, error, &done] {
            try {
                using Fn = void (*)(void**, unsigned, unsigned);
                auto f = reinterpret_cast<Fn>(
                    static_cast<const HostProgram*>(job.program)->entry("cf_raw_launch"));
                std::vector<void*> pointers(job.args.size());
                std::vector<void*> args(job.args.size());
                for (std::size_t i = 0; i < job.args.size(); ++i) {
                    const RawArg& a = job.args[i];
                    if (a.kind == RawArg::Kind::Scalar) {
                        args[i] = const_cast<unsigned char*>(a.scalar);
                    } else {
                        pointers[i] = a.buffer->data();
                        args[i] = &pointers[i];
                    }
                }
                const long long grid =
                    job.grid ? job.grid
                             : std::max<long long>((job.n + job.block - 1) / job.block, 1);
                f(args.data(), static_cast<unsigned>(grid), job.block);
            } catch (const std::exception& e) {
                *error = e.what();
            }
            done.complete();
        });
    }

private:
    SubmitQueue queue_;
};

}  // namespace

Device& host_device() {
    static HostDevice device;
    return device;
}

}  // namespace chanflow::gpu
