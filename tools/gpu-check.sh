#!/usr/bin/env bash
# On a GPU machine, from gpu-bundle/ (tools/gpu-bundle.sh): what the machine says about its
# GPU, the GPU module's tests, and the GPU graphs against their expected output. One command,
# a few minutes; every step runs even when one before it failed, and the exit code says
# whether all passed.
#   bash gpu-bundle/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
step() {
    echo "== $*"
    "$@" || { echo "== FAILED: $*"; status=1; }
}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
step bin/chanflow --version
# The golden files and the host shim are read from here, as from the source tree.
export CHANFLOW_SOURCE_DIR="$PWD"
step bin/chanflow_gpu_tests
skipped=0
bash tests/gpu/run_on_gpu.sh bin/chanflow "$PWD" || {
    rc=$?
    [ $rc -eq 77 ] && skipped=1 || status=1
}
[ $skipped -eq 1 ] && echo "== skipped: the GPU graphs (no usable GPU, as --version says)"
# The same graphs on the host device: the GPU path without the GPU, for comparison.
CHANFLOW_GPU_DEVICE=host bash tests/gpu/run_on_gpu.sh bin/chanflow "$PWD" || status=1
# Raw CUDA baselines and GPU processes, side by side on this card.
step bin/chanflow_gpu_bench "${GPU_CHECK_MESSAGES:-20000000}" "${GPU_CHECK_PI_SAMPLES:-10000000000}"
exit $status
