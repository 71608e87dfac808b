#!/usr/bin/env bash
# Draws every graph of graphs/ (and two larger test graphs) into docs/pictures/NAME.svg with `chanflow dot`, and the word
# count with the statistics of a run over 20 MiB of generated text painted on it.
# Run from the source tree after a build: bash docs/pictures/generate.sh [build/bin]
set -euo pipefail
bin=${1:-build/bin}
for graph in graphs/*.yaml tests/graphs/big_pipeline.yaml tests/graphs/mesh_fan.yaml; do
    name=$(basename "$graph" .yaml)
    "$bin/chanflow" dot "$graph" -o "docs/pictures/$name.svg"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin/chanflow-textgen" --mb 20 -o "$work/text.txt"
"$bin/chanflow" run graphs/wordcount.yaml --set path="$work/text.txt" --stats="$work/stats.json" >/dev/null
"$bin/chanflow" dot graphs/wordcount.yaml --stats-from "$work/stats.json" -o docs/pictures/wordcount-stats.svg
"$bin/chanflow" dot graphs/wordcount.yaml --backend processes --procs 2 -o docs/pictures/wordcount-procs2.svg
