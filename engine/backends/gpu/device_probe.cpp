// device_probe.cpp — can this machine run kernels, and if not, why not, in words.
//
// The CUDA runtime is asked in a child process of its own: a process that has started CUDA
// cannot hand it on to the partitions it forks (the processes backend), so the program that
// places the graph never starts it.
#include "device_probe.hpp"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace chanflow::gpu {
namespace {

struct Answer {
    int error = -1;  // a cudaError_t; -1: the child did not answer
    int devices = 0;
};

// Runs in the child: what cudaGetDeviceCount says.
[[noreturn]] void ask_runtime(int fd) {
    Answer a;
    a.error = static_cast<int>(cudaGetDeviceCount(&a.devices));
    const ssize_t n = write(fd, &a, sizeof a);
    _exit(n == static_cast<ssize_t>(sizeof a) ? 0 : 1);
}

Answer ask_in_child() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return {};
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        ask_runtime(fds[1]);
    }
    close(fds[1]);
    Answer a;
    if (pid > 0) {
        // A driver that hangs must not hang the graph: 20 s, then the child is killed.
        pollfd p{fds[0], POLLIN, 0};
        int ready;
        do ready = poll(&p, 1, 20000);
        while (ready < 0 && errno == EINTR);
        if (ready > 0 && read(fds[0], &a, sizeof a) != static_cast<ssize_t>(sizeof a)) a = {};
        if (ready == 0) kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    close(fds[0]);
    return a;
}

bool driver_installed() {
    void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    if (!lib) lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!lib) return false;
    dlclose(lib);
    return true;
}

}  // namespace

DeviceProbe probe_devices() {
    const Answer a = ask_in_child();
    DeviceProbe probe;
    switch (a.error) {
        case cudaSuccess:
            probe.devices = a.devices;
            if (a.devices <= 0) probe.reason = "the NVIDIA driver sees no GPU";
            break;
        case -1:
            probe.reason = "the CUDA runtime did not answer whether there is a GPU";
            break;
        case cudaErrorInsufficientDriver:
            probe.reason = driver_installed()
                               ? "the NVIDIA driver is older than this chanflow's CUDA runtime"
                               : "no NVIDIA driver is installed";
            break;
        case cudaErrorStubLibrary:
            probe.reason = "the CUDA driver library found is the toolkit's stub, not a driver";
            break;
        case cudaErrorNoDevice:
            probe.reason = "the NVIDIA driver sees no GPU (CUDA_VISIBLE_DEVICES may hide them)";
            break;
        default:
            probe.reason = std::string("the CUDA runtime cannot start: ") +
                           cudaGetErrorString(static_cast<cudaError_t>(a.error));
    }
    return probe;
}

}  // namespace chanflow::gpu
