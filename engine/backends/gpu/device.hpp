// device.hpp — where a GPU process's kernels run: a CUDA device, or the host device that runs
// the same generated kernels on the CPU (for testing the GPU path without a GPU,
// CHANFLOW_GPU_DEVICE=host). A device never blocks its caller: work is queued, and the
// Completion it is given is completed when the results are in host memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "chanflow/process.hpp"

namespace chanflow::gpu {

/// Host memory a device copies from and to quickly (pinned, on a CUDA device).
class HostBuffer {
public:
    virtual ~HostBuffer() = default;
    virtual void* data() noexcept = 0;
    virtual std::size_t size() const noexcept = 0;
    template <class T>
    T* as() noexcept {
        return static_cast<T*>(data());
    }
};

/// A compiled program on a device: its kernels by name.
class Program {
public:
    virtual ~Program() = default;
};

/// One kernel launch over n elements: `in` (n elements) to `out` (n elements), the first
/// failing index to `*first_failure` (left as ULLONG_MAX when none failed).
struct ElementwiseJob {
    const Program* program = nullptr;
    std::string entry;
    HostBuffer* in = nullptr;
    std::size_t in_bytes = 0;
    HostBuffer* out = nullptr;
    std::size_t out_bytes = 0;
    long long n = 0;
    unsigned long long* first_failure = nullptr;
};

/// A reduction of n elements to one: the passes of reduce_kernel (codegen.hpp). The result
/// goes to `result` (acc_bytes), has_result says whether any element was seen.
struct ReduceJob {
    const Program* program = nullptr;
    std::string entry;  // and entry + "_partials"
    HostBuffer* in = nullptr;
    std::size_t in_bytes = 0;
    std::size_t acc_bytes = 8;
    long long n = 0;
    void* result = nullptr;
    bool* has_result = nullptr;
    unsigned long long* first_failure = nullptr;
};

/// One launch of a raw kernel (gpu.kernel) over n elements with `block` threads a block.
/// Its arguments, in the kernel's order: an input's or an output's elements (copied in, or
/// out after the launch), or a scalar (a param, or n) given by its bytes.
struct RawArg {
    enum class Kind : std::uint8_t { Input, Output, InOut, Scalar } kind = Kind::Scalar;
    HostBuffer* buffer = nullptr;  // Input, Output, InOut (copied in and out)
    std::size_t bytes = 0;         // the buffer's bytes in use
    unsigned char scalar[8] = {};  // Scalar: the value's bytes (4 or 8 of them)

    /// A scalar argument: an int, long long, float or double, by its bytes.
    template <class T>
    static RawArg of(T value) noexcept {
        static_assert(sizeof(T) <= sizeof(scalar));
        RawArg a;
        std::memcpy(a.scalar, &value, sizeof value);
        return a;
    }
    /// A buffer argument.
    static RawArg of(Kind kind, HostBuffer& b, std::size_t bytes) noexcept {
        RawArg a;
        a.kind = kind;
        a.buffer = &b;
        a.bytes = bytes;
        return a;
    }
};
struct RawJob {
    const Program* program = nullptr;
    std::string entry;
    std::vector<RawArg> args;
    long long n = 0;
    unsigned block = 256;
    unsigned grid = 0;  // blocks; 0: enough to give each of the n elements a thread
};

class Device {
public:
    virtual ~Device() = default;
    /// "NVIDIA H100 80GB HBM3 (device 0)", or "the host (kernels on the CPU)".
    virtual std::string name() const = 0;
    /// The architecture its programs are compiled for (90 for sm_90).
    virtual int arch() const = 0;
    /// Loads a program compiled for arch() (`source` is what was compiled, for the host).
    virtual std::unique_ptr<Program> load(const std::string& cubin, const std::string& source) = 0;
    virtual std::unique_ptr<HostBuffer> host_buffer(std::size_t bytes) = 0;
    /// Queue the job; `done` is completed once its results are in host memory. Errors of
    /// the device itself are thrown here or reported through `*error` before `done`.
    virtual void run(const ElementwiseJob& job, std::string* error, Completion& done) = 0;
    virtual void run(const ReduceJob& job, std::string* error, Completion& done) = 0;
    virtual void run(const RawJob& job, std::string* error, Completion& done) = 0;
};

/// The device this process runs kernels on: CHANFLOW_GPU_DEVICE=host, else CUDA device
/// `index` modulo the devices there are. Throws std::runtime_error when none can be opened.
Device& device_for(int index);

/// Whether CHANFLOW_GPU_DEVICE asks for the host device.
bool host_device_asked();

}  // namespace chanflow::gpu
