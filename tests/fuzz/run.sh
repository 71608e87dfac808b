#!/usr/bin/env bash
# Runs a libFuzzer target: first on every input that once crashed it (each must pass), then
# for SECONDS from the seeds (read only; new inputs go to a scratch corpus). Fails on any
# crash, sanitizer report, leak or hang.
#   run.sh FUZZER SECONDS REGRESSIONS SEED...
# A directory is used as it is; a file gives one input per line; REGRESSIONS "-": none.
set -euo pipefail
fuzzer=$(realpath "$1") seconds=$2 regressions=$3
[ "$regressions" = - ] || regressions=$(realpath "$regressions")
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
inputs_of() {  # a directory, or a file split into a directory of one input per line
    if [ -d "$1" ]; then
        realpath "$1"
    else
        local dir
        dir=$(mktemp -d "$work/lines.XXXXXX")
        local i=0
        while IFS= read -r line || [ -n "$line" ]; do
            printf '%s' "$line" >"$dir/$((i++))"
        done <"$1"
        echo "$dir"
    fi
}
seed_dirs=()
for s in "$@"; do seed_dirs+=("$(inputs_of "$s")"); done
mkdir -p "$work/corpus_new"
cd "$work"  # crash-* files, if any, land here and are shown below
fail() {
    tail -n 60 "$1" >&2
    for f in crash-* leak-* timeout-* oom-*; do [ -e "$f" ] && od -A d -c "$f" | head -40 >&2; done
    exit 1
}
options=(-timeout=30 -rss_limit_mb=2048)
if [ "$regressions" != - ]; then
    regression_dir=$(inputs_of "$regressions")
    if ! "$fuzzer" "${options[@]}" "$regression_dir"/* 2>regressions.log; then
        fail regressions.log
    fi
    echo "regressions: $(ls "$regression_dir" | wc -l) inputs pass"
fi
if ! "$fuzzer" "${options[@]}" -max_len=8192 -max_total_time="$seconds" -print_final_stats=1 \
        corpus_new "${seed_dirs[@]}" 2>fuzz.log; then
    fail fuzz.log
fi
grep -E "^stat::number_of_executed_units|^Done" fuzz.log
