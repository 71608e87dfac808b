#!/usr/bin/env bash
# Runs a libFuzzer target for a while: new inputs go to a scratch corpus, the seeds are only
# read. Fails on any crash, sanitizer report or leak.
#   run.sh FUZZER SEEDS SECONDS
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus_new"
cd "$work"  # crash-* files, if any, land here and are shown below
if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 \
        corpus_new "$seeds" 2>fuzz.log; then
    cat fuzz.log >&2
    for f in crash-* leak-* timeout-*; do [ -e "$f" ] && od -A d -t x1 "$f" >&2; done
    exit 1
fi
grep -E "^stat::number_of_executed_units|^Done" fuzz.log
