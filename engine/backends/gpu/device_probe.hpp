// device_probe.hpp — how many GPUs this machine can run kernels on, or why none.
#pragma once

#include <string>

namespace chanflow::gpu {

struct DeviceProbe {
    int devices = 0;
    std::string reason;  // why no kernel can run, in words; "" when devices > 0
};

/// Asks the CUDA runtime in a child process (so that this one never starts CUDA).
DeviceProbe probe_devices();

}  // namespace chanflow::gpu
