// Processes placed on a GPU, on a machine where none can be used: `require` refuses before
// anything runs, `prefer` runs on the CPU with one notice and prints what the CPU prints.
// (With a usable GPU these cases do not arise; the `gpu` tests cover that machine.)
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "run_cli.hpp"
#include "text_util.hpp"

using chanflow::test::run_cli;

namespace {

// Why no GPU can be used here ("" when one can), as `chanflow --version` says.
std::string unusable_reason() {
    const std::string out = run_cli({"--version"}).out;
    const std::string tag = "\ngpu: none usable: ";
    const auto at = out.find(tag);
    if (at == std::string::npos) return {};
    return out.substr(at + tag.size(), out.find('\n', at + tag.size()) - at - tag.size());
}

const std::string kRequire = "tests/graphs/gpu/require.yaml";
const std::string kPrefer = "tests/graphs/gpu/prefer.yaml";

}  // namespace

TEST_CASE("gpu: --version says whether a GPU can be used, and why not") {
    const auto v = run_cli({"--version"});
    CHECK(v.exit_code == 0);
    const bool usable = v.out.find("\ngpu: usable\n") != std::string::npos;
    CHECK((usable || !unusable_reason().empty()));
#if !CHANFLOW_TEST_GPU_MODULE
    CHECK(unusable_reason() == "this chanflow was built without CUDA");
#endif
}

TEST_CASE("gpu: without a usable GPU, require refuses the graph before anything runs") {
    const std::string reason = unusable_reason();
    if (reason.empty()) return;  // a GPU machine: nothing to refuse
    const std::string refused = ": error: process 'square' needs a GPU: " + reason +
                                " (with 'gpu: prefer' it runs on the CPU)\n";
    for (const char* backend : {"threads", "processes"}) {
        CAPTURE(backend);
        const auto r = run_cli({"run", kRequire, "--backend", backend});
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());
        CHECK(r.err == kRequire + ":6:50" + refused + kRequire +
                           ":7:55: error: process 'odd' "
                           "needs a GPU: " +
                           reason + " (with 'gpu: prefer' it runs on the CPU)\n");
    }
    // --gpu require wins over the file's prefer.
    const auto r = run_cli({"run", kPrefer, "--gpu", "require"});
    CHECK(r.exit_code == 2);
    CHECK(r.err == kPrefer + ":7:50" + refused + kPrefer +
                       ":8:46: error: process 'total' "
                       "needs a GPU: " +
                       reason + " (with 'gpu: prefer' it runs on the CPU)\n");
    // check compiles kernels and needs no GPU; without the GPU module it cannot.
    const auto c = run_cli({"check", kRequire});
#if CHANFLOW_TEST_GPU_MODULE
    CHECK(c.exit_code == 0);
    CHECK(c.out == kRequire + ": ok (4 processes, 3 channels)\n");
#else
    CHECK(c.exit_code == 2);
    CHECK(c.err.find(":6:50: error: process 'square' needs a GPU: this chanflow was built "
                     "without CUDA") != std::string::npos);
    CHECK(run_cli({"check", kRequire, "--gpu", "prefer"}).exit_code == 0);
#endif
}

TEST_CASE("gpu: without a usable GPU, prefer runs on the CPU with one notice") {
    const std::string reason = unusable_reason();
    if (reason.empty()) return;
    const std::string expected =
        chanflow::test::read_file(CHANFLOW_SOURCE_DIR "/tests/graphs/gpu/require.out");
    for (const char* backend : {"threads", "processes"}) {
        CAPTURE(backend);
        const auto r = run_cli({"run", kRequire, "--gpu", "prefer", "--backend", backend});
        CHECK(r.exit_code == 0);
        CHECK(r.out == expected);
        CHECK(r.err == "notice: no GPU can be used (" + reason +
                           "): 'odd', 'square' run on "
                           "the CPU\n");
    }
    // The file's `gpu: prefer` on its own: a process's `gpu: require` wins over it.
    const auto r = run_cli({"run", kPrefer});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("process 'total' needs a GPU") != std::string::npos);
    CHECK(r.err.find("'square'") == std::string::npos);
    const auto p = run_cli({"run", kPrefer, "--gpu", "prefer"});
    CHECK(p.exit_code == 0);
    CHECK(p.out == chanflow::test::read_file(CHANFLOW_SOURCE_DIR "/tests/graphs/gpu/prefer.out"));
    CHECK(p.err == "notice: no GPU can be used (" + reason +
                       "): 'square', 'total' run on "
                       "the CPU\n");
}

TEST_CASE("gpu: --gpu takes require or prefer, on run and check only") {
    auto r = run_cli({"run", kRequire, "--gpu", "maybe"});
    CHECK(r.exit_code == 2);
    CHECK(r.err ==
          "chanflow: error: --gpu takes require or prefer, got 'maybe'\n"
          "(see 'chanflow --help')\n");
    r = run_cli({"dot", kRequire, "--gpu", "prefer"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--gpu belongs to 'run' and 'check'") != std::string::npos);
}

#if CHANFLOW_TEST_GPU_MODULE
TEST_CASE("gpu: check generates and compiles every kernel, and names what has no GPU form") {
    const std::string graph = "tests/graphs/gpu/no_gpu_form.yaml";
    const auto r = run_cli({"check", graph});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    // x ** x has a GPU form for float messages: accepted.
    CHECK(r.err == graph +
                       ":4:41: error: process 'm1' cannot run on a GPU: len(...) has "
                       "no GPU form\n" +
                       graph +
                       ":6:35: error: process 'f' cannot run on a GPU: fields have no "
                       "GPU form (the GPU sees numbers)\n");
    // The same graph with `gpu: prefer` checks alike: check looks at the kernels either way.
    CHECK(run_cli({"check", graph, "--gpu", "prefer"}).err == r.err);
}
#endif

#if CHANFLOW_TEST_GPU_MODULE
TEST_CASE("gpu: check keeps the kernels it compiled, and a second check loads them") {
    char tmpl[] = "/tmp/chanflow-kernel-cache-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    const std::string cache = dir + "/kernels";
    const char* before = std::getenv("CHANFLOW_KERNEL_CACHE");
    const std::string saved = before ? before : "";
    setenv("CHANFLOW_KERNEL_CACHE", cache.c_str(), 1);
    // Each entry's inode: a compile would store a new file in its place.
    const auto entries = [&] {
        std::map<std::string, ino_t> found;
        for (const auto& e : std::filesystem::directory_iterator(cache)) {
            struct stat st {};
            if (stat(e.path().c_str(), &st) == 0) found[e.path().filename().string()] = st.st_ino;
        }
        return found;
    };
    CHECK(run_cli({"check", kPrefer}).exit_code == 0);
    const auto first = entries();
    CHECK(first.size() == 2);  // square's kernels and total's: one program each
    CHECK(run_cli({"check", kPrefer}).exit_code == 0);
    CHECK(entries() == first);
    if (saved.empty())
        unsetenv("CHANFLOW_KERNEL_CACHE");
    else
        setenv("CHANFLOW_KERNEL_CACHE", saved.c_str(), 1);
    std::filesystem::remove_all(dir);
}
#endif

#if CHANFLOW_TEST_GPU_MODULE
TEST_CASE("gpu: a kernel from the graph file is checked against its ports and params") {
    const std::string ok = "tests/graphs/gpu/kernel_saxpy.yaml";
    const auto c = run_cli({"check", ok});
    CHECK(c.exit_code == 0);
    CHECK(c.out == ok + ": ok (4 processes, 3 channels)\n");
    // NVRTC's message at the graph file's line; arguments against ports and params; no CPU
    // version to fall back on.
    const std::string bad = "tests/graphs/gpu/kernel_errors.yaml";
    const auto r = run_cli({"check", bad});
    CHECK(r.exit_code == 2);
    CHECK(r.err == bad +
                       ":13:9: error: CUDA C of process 'broken': identifier \"offset\" is "
                       "undefined\n" +
                       bad +
                       ":24:72: error: argument 'k' of kernel 'scale' has type int, but param "
                       "'k' is 2.5\n" +
                       bad +
                       ":27:20: error: node type 'gpu.kernel' runs only on a GPU: add 'on: "
                       "gpu' to process 'cpu_only'\n");
    const std::string reason = unusable_reason();
    if (reason.empty()) return;
    const auto p = run_cli({"run", ok, "--gpu", "prefer"});
    CHECK(p.exit_code == 2);
    CHECK(p.out.empty());
    CHECK(p.err == ok + ":9:9: error: process 'saxpy' needs a GPU: " + reason +
                       " (gpu.kernel has no CPU version)\n");
}
#endif

#if CHANFLOW_TEST_GPU_MODULE
TEST_CASE("gpu: check compiles for the architecture --gpu-arch names") {
    CHECK(run_cli({"check", kRequire, "--gpu-arch", "80"}).exit_code == 0);
    CHECK(run_cli({"check", "tests/graphs/gpu/kernel_saxpy.yaml", "--gpu-arch", "120"}).exit_code ==
          0);
    const auto odd = run_cli({"check", kRequire, "--gpu-arch", "76"});
    CHECK(odd.exit_code == 2);
    CHECK(odd.err.find(":6:3: error: NVRTC ") != std::string::npos);
    CHECK(odd.err.find(" cannot compile for sm_76 (it compiles for 75, 80, ") != std::string::npos);
    const auto bad = run_cli({"check", kRequire, "--gpu-arch", "sm_90"});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--gpu-arch takes an architecture from 75 to 121") != std::string::npos);
    CHECK(
        run_cli({"run", kRequire, "--gpu-arch", "90"}).err.find("--gpu-arch belongs to 'check'") !=
        std::string::npos);
}
#endif
