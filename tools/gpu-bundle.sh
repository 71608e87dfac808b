#!/usr/bin/env bash
# Prepares gpu-bundle/: what tools/gpu-check.sh needs on a GPU machine that has the CUDA
# toolkit but none of chanflow's other build dependencies. A Release build of the CLI and the
# GPU tests (without MPI and GraphViz, which that machine lacks), with the shared libraries
# they need beyond the C library and CUDA, and the graphs and scripts the check runs.
#   bash tools/gpu-bundle.sh        then carry gpu-bundle/ to the GPU machine
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-gpu-bundle
bundle=gpu-bundle
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHANFLOW_CUDA=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON >/dev/null
cmake --build "$build" --target chanflow_cli chanflow_gpu_tests chanflow_gpu_bench

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/tests/graphs" "$bundle/tests/gpu"
cp "$build"/bin/chanflow "$build"/bin/chanflow_gpu_tests "$build"/bin/chanflow_gpu_bench "$bundle/bin/"
cp -P "$build"/lib/libchanflow.so* "$build"/lib/libchanflow_gpu.so* "$bundle/lib/"
# What the programs load that a bare machine may not have; never the C library or CUDA's.
for f in "$bundle"/bin/* "$bundle"/lib/libchanflow_gpu.so.*.*.*; do
    ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libnvrtc[^/]*)\.so' |
    grep -v "/$build/" | while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
cp -r tests/graphs/gpu "$bundle/tests/graphs/"
cp -r tests/gpu/golden tests/gpu/host_shim.hpp tests/gpu/run_on_gpu.sh "$bundle/tests/gpu/"
cp tools/gpu-check.sh "$bundle/"
du -sh "$bundle"
