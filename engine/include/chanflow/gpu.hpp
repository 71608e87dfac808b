// chanflow/gpu.hpp — processes placed on a GPU (`on: gpu`, docs/gpu.md).
//
// A graph places a numeric process on a GPU with one line; the GPU module (libchanflow_gpu,
// built where the CUDA toolkit is found) turns it into CUDA kernels. Before a run, the
// program settles where those processes run:
//
//   chanflow::Plan plan = chanflow::load_plan("graphs/gpu_saxpy.yaml");
//   std::string notice = chanflow::settle_gpu_placement(plan);  // throws GraphError
//   if (!notice.empty()) std::cerr << "notice: " << notice << '\n';
//   chanflow::run(plan);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chanflow {

struct Plan;

/// What a process placed on a GPU does where no GPU can be used: `require` (the default)
/// refuses to run the graph; `prefer` runs the process on the CPU, with one notice.
enum class GpuMode : std::uint8_t { Require, Prefer };

/// "require" or "prefer".
const char* gpu_mode_name(GpuMode mode) noexcept;
/// The mode a word names, or nothing.
std::optional<GpuMode> gpu_mode_named(std::string_view word) noexcept;

/// The node types that have a GPU version: `on: gpu` is accepted on these alone.
const std::vector<std::string>& gpu_node_types();

/// The node types that run only on a GPU (gpu.kernel): they need `on: gpu`, and where no
/// GPU can be used `prefer` cannot move them to the CPU.
const std::vector<std::string>& gpu_only_node_types();

/// Why this program cannot run kernels, in words ("this chanflow was built without CUDA",
/// "no NVIDIA driver is installed", ...); "" when it can. Probed once, on first use.
std::string gpu_unusable_reason();

/// Decides where the plan's `on: gpu` processes run, before anything runs. Where a GPU can
/// be used they stay on it. Where none can, a `require` process makes this throw
/// GraphError ("process 'NAME' needs a GPU: REASON", at its `on: gpu`), and `prefer`
/// processes move to the CPU: the returned notice says which ("" when none moved).
std::string settle_gpu_placement(Plan& plan);

/// Fuses each chain of adjacent `map` processes placed on one GPU into its first process,
/// whose kernel then applies their expressions in turn: one launch, and no copies or
/// channel between them (docs/gpu.md#fused-maps). Two maps are adjacent when the first's one
/// output channel is the second's one input, neither is replicated or ordered, and both run
/// where the other does (`rank`, `device`). Call after settle_gpu_placement and before the
/// plan is placed on partitions. Returns how many processes were fused away.
std::size_t fuse_gpu_maps(Plan& plan);

}  // namespace chanflow
