// nvrtc_compiler.cpp — CUDA C to a cubin with NVRTC.
#include "nvrtc_compiler.hpp"

#include <nvrtc.h>

#include <string>
#include <vector>

namespace chanflow::gpu {
namespace {

std::vector<std::string> options_for(int arch) {
    return {"--gpu-architecture=sm_" + std::to_string(arch), "--std=c++17", "--fmad=false",
            "-default-device"};
}

}  // namespace

std::string compile_options(int arch) {
    std::string joined;
    for (const auto& o : options_for(arch)) joined += (joined.empty() ? "" : " ") + o;
    return joined;
}

std::vector<int> supported_archs() {
    int count = 0;
    if (nvrtcGetNumSupportedArchs(&count) != NVRTC_SUCCESS || count <= 0) return {};
    std::vector<int> archs(static_cast<std::size_t>(count));
    if (nvrtcGetSupportedArchs(archs.data()) != NVRTC_SUCCESS) return {};
    return archs;
}

std::string nvrtc_version() {
    int major = 0, minor = 0;
    nvrtcVersion(&major, &minor);
    return "NVRTC " + std::to_string(major) + "." + std::to_string(minor);
}

Compiled compile_cuda(const std::string& source, const std::string& name, int arch) {
    Compiled out;
    nvrtcProgram prog = nullptr;
    if (nvrtcCreateProgram(&prog, source.c_str(), name.c_str(), 0, nullptr, nullptr) !=
        NVRTC_SUCCESS) {
        out.log = "NVRTC cannot create a program";
        return out;
    }
    const std::vector<std::string> options = options_for(arch);
    std::vector<const char*> argv;
    for (const auto& o : options) argv.push_back(o.c_str());
    const nvrtcResult result =
        nvrtcCompileProgram(prog, static_cast<int>(argv.size()), argv.data());
    std::size_t log_size = 0;
    if (nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
        out.log.resize(log_size);
        nvrtcGetProgramLog(prog, out.log.data());
        out.log.resize(log_size - 1);  // the terminating NUL
    }
    if (result == NVRTC_SUCCESS) {
        std::size_t size = 0;
        if (nvrtcGetCUBINSize(prog, &size) == NVRTC_SUCCESS) {
            out.cubin.resize(size);
            out.ok = nvrtcGetCUBIN(prog, out.cubin.data()) == NVRTC_SUCCESS;
        }
    } else if (out.log.empty()) {
        out.log = nvrtcGetErrorString(result);
    }
    nvrtcDestroyProgram(&prog);
    return out;
}

}  // namespace chanflow::gpu
