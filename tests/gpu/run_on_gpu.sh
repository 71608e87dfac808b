#!/usr/bin/env bash
# The GPU graphs on a GPU: each prints what its .out file holds. Skipped (exit 77) where no
# GPU can be used, as `chanflow --version` says.
#   run_on_gpu.sh CHANFLOW SOURCE_DIR
set -uo pipefail
chanflow=$1
source_dir=$2
gpu=$("$chanflow" --version | sed -n 's/^gpu: //p')
if [ "$gpu" != "usable" ]; then
    echo "skipped: $gpu"
    exit 77
fi
status=0
for graph in "$source_dir"/tests/graphs/gpu/*.yaml; do
    expected=${graph%.yaml}.out
    [ -f "$expected" ] || continue  # a graph for check only
    if ! diff <("$chanflow" run "$graph" --gpu require) "$expected"; then
        echo "FAILED: $graph"
        status=1
    fi
done
exit $status
