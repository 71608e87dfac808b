#!/usr/bin/env bash
# Installs the built chanflow into a scratch prefix, builds tests/consumer against it with
# find_package(chanflow), and checks the program's output.
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source_dir/tests/consumer" -B "$scratch/build" -G Ninja \
      -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
out=$(LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib/x86_64-linux-gnu" "$scratch/build/consumer")
expected=$'0\n-10\n-20\n-30'
if [ "$out" != "$expected" ]; then
    echo "consumer printed:"; echo "$out"; echo "expected:"; echo "$expected"
    exit 1
fi
echo "consumer built against the installed package and printed the expected output"
