#!/usr/bin/env bash
# Draws every graph of graphs/ into docs/pictures/NAME.svg with `chanflow dot`.
# Run from the source tree after a build: bash docs/pictures/generate.sh [path/to/chanflow]
set -euo pipefail
chanflow=${1:-build/bin/chanflow}
for graph in graphs/*.yaml; do
    name=$(basename "$graph" .yaml)
    "$chanflow" dot "$graph" -o "docs/pictures/$name.svg"
done
