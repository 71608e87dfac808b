#!/usr/bin/env bash
# chanflow's one script behind the README's two commands.
#   bash build.sh demo   install what is missing, build the CLI, run the showcase graph
#   bash build.sh test   install what is missing, build everything, run the whole test suite,
#                        and check that a Release build (build-release/) compiles too
#   bash build.sh build  install what is missing and build everything
#   bash build.sh asan   the test suite built with AddressSanitizer and UBSan (build-asan/)
#   bash build.sh tsan   the test suite built with ThreadSanitizer (build-tsan/)
# Environment: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo),
#              SANITIZE (address,undefined | thread), JOBS (default: cores).
# Here warnings are errors (CHANFLOW_WERROR); a plain cmake build only shows them.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}

packages=(g++ cmake ninja-build ccache pkg-config libtbb-dev libyaml-cpp-dev doctest-dev
          graphviz libgraphviz-dev libopenmpi-dev openmpi-bin python3-mpi4py clang
          libclang-rt-14-dev)

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# configure_and_build [TARGET]: everything, or only TARGET and what it needs.
configure_and_build() {
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
          -DCHANFLOW_SANITIZE="${SANITIZE:-}" -DCHANFLOW_WERROR=ON >/dev/null
    cmake --build "$BUILD_DIR" -j "$JOBS" ${1:+--target "$1"}
}

case "${1:-}" in
    demo)
        install_missing
        configure_and_build chanflow_cli
        "$BUILD_DIR"/bin/chanflow run graphs/showcase.yaml
        ;;
    test)
        install_missing
        configure_and_build
        ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
        echo "== a Release build compiles without warnings too" >&2
        BUILD_DIR=build-release BUILD_TYPE=Release configure_and_build
        ;;
    build)
        install_missing
        configure_and_build
        ;;
    asan | tsan)
        install_missing
        if [ "$1" = asan ]; then SANITIZE=address,undefined; else SANITIZE=thread; fi
        BUILD_DIR=build-$1 BUILD_TYPE=Debug
        # Benchmarks measure nothing useful under a sanitizer.
        cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=$BUILD_TYPE \
              -DCHANFLOW_SANITIZE=$SANITIZE -DCHANFLOW_BENCH=OFF -DCHANFLOW_WERROR=ON >/dev/null
        cmake --build "$BUILD_DIR" -j "$JOBS"
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
            TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp" \
            ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -E install
        ;;
    *)
        echo "usage: bash build.sh demo|test|build|asan|tsan" >&2
        exit 2
        ;;
esac
