#!/usr/bin/env bash
# Installs the built chanflow into a scratch prefix, builds tests/consumer (a program and a
# node plugin) against it with find_package(chanflow), and checks what they print; then runs
# the installed CLI, which must find its libraries by itself, on a graph and a plugin graph.
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source_dir/tests/consumer" -B "$scratch/build" -G Ninja \
      -DCMAKE_PREFIX_PATH="$scratch/prefix" \
      -DCHANFLOW_TEST_PLUGIN_SOURCE="$source_dir/tests/plugin/test_nodes.cpp" >/dev/null
cmake --build "$scratch/build" >/dev/null
out=$(LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib/x86_64-linux-gnu" "$scratch/build/consumer")
expected=$'0\n-10\n-20\n-30'
if [ "$out" != "$expected" ]; then
    echo "consumer printed:"; echo "$out"; echo "expected:"; echo "$expected"
    exit 1
fi
echo "consumer built against the installed package and printed the expected output"

# The installed CLI, with no LD_LIBRARY_PATH: its RPATH finds the installed libraries.
cli="$scratch/prefix/bin/chanflow"
out=$(env -u LD_LIBRARY_PATH "$cli" run "$source_dir/tests/graphs/commstime.yaml")
if [ "$out" != "$(cat "$source_dir/tests/graphs/commstime.out")" ]; then
    echo "the installed CLI printed:"; echo "$out"
    exit 1
fi
mkdir "$scratch/graph"
cp "$scratch/build/libconsumer_plugin.so" "$scratch/graph/"
cat > "$scratch/graph/plugin.yaml" <<'GRAPH'
chanflow: 1
plugins: [libconsumer_plugin.so]
processes:
  numbers: {node: range, with: {stop: 3}, out: {out: a}}
  triple:  {node: plugin.triple, in: {in: a}, out: {out: b}}
  print:   {node: print, in: {in: b}}
GRAPH
out=$(env -u LD_LIBRARY_PATH "$cli" run "$scratch/graph/plugin.yaml")
if [ "$out" != $'0\n3\n6' ]; then
    echo "the installed CLI printed, for the plugin graph:"; echo "$out"
    exit 1
fi
echo "the installed CLI ran a graph and a plugin graph"
