// The whole GPU path (kernels generated, compiled, loaded; messages batched, launched,
// waited for and unbatched; failures re-evaluated on the CPU) on the host device, which runs
// the same generated kernels on the CPU: every GPU graph prints what the CPU prints.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "run_cli.hpp"
#include "text_util.hpp"

namespace fs = std::filesystem;
using chanflow::test::read_file;
using chanflow::test::run_cli;

#if CHANFLOW_TEST_GPU_MODULE
namespace {

// Sets an environment variable for the CLI runs of one test.
struct ScopedEnv {
    std::string name;
    ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
    ~ScopedEnv() { unsetenv(name.c_str()); }
};

struct Case {
    std::string graph;
    int exit_code;
    std::string err;
};

const std::vector<Case> kCases = {
    {"require", 0, ""},
    {"prefer", 0, ""},
    {"pipeline", 0, ""},
    {"ordered_filter", 0, ""},
    {"fused_maps", 0, ""},
    {"reduce_bools", 0, ""},
    {"pi_sample", 0, ""},
    {"random_uniform", 0, ""},
    // The CPU says "process 'invert' failed: ..."; fused on the GPU, its head fails.
    {"fused_fails", 1,
     "error: process 'triple' failed: in 'invert' (fused into 'triple' on the GPU): division by "
     "zero in '12 // (x - 6)' (x = 6)\n"},
    {"mixed_types", 1,
     "error: process 'm' failed: unsupported operand types for //: int and str in '100 // x' "
     "(x = \"s\")\n"},
    {"fails_mid_batch", 1, "error: process 'm' failed: division by zero in '12 // x' (x = 0)\n"},
};

}  // namespace

TEST_CASE("gpu host device: the GPU graphs print what the CPU prints, failures included") {
    for (const Case& c : kCases) {
        const std::string graph = "tests/graphs/gpu/" + c.graph + ".yaml";
        const std::string want =
            read_file(fs::path(CHANFLOW_SOURCE_DIR) / ("tests/graphs/gpu/" + c.graph + ".out"));
        CAPTURE(graph);
        // The CPU's answer (no GPU here: prefer runs there) ...
        const auto cpu = run_cli({"run", graph, "--gpu", "prefer"});
        CHECK(cpu.out == want);
        CHECK(cpu.exit_code == c.exit_code);
        // ... is the host device's, on the threads and processes backends.
        ScopedEnv host("CHANFLOW_GPU_DEVICE", "host");
        for (const char* backend : {"threads", "processes"}) {
            CAPTURE(backend);
            std::vector<std::string> args = {"run", graph, "--backend", backend};
            if (std::string(backend) == "processes") args.insert(args.end(), {"--procs", "2"});
            const auto gpu = run_cli(args);
            CHECK(gpu.out == want);
            CHECK(gpu.exit_code == c.exit_code);
            CHECK(gpu.err == c.err);
        }
    }
}

TEST_CASE("gpu host device: --stats shows the work done on the device and the bytes moved") {
    ScopedEnv host("CHANFLOW_GPU_DEVICE", "host");
    char tmpl[] = "/tmp/chanflow-gpu-stats-XXXXXX";
    const fs::path dir = mkdtemp(tmpl);
    for (const char* backend : {"threads", "processes"}) {
        CAPTURE(backend);
        const std::string file = (dir / (std::string(backend) + ".json")).string();
        const auto r = run_cli(
            {"run", "tests/graphs/gpu/pipeline.yaml", "--backend", backend, "--stats=" + file});
        REQUIRE(r.exit_code == 0);
        const std::string json = read_file(file);
        using chanflow::test::stats_field;
        // 100 000 ints in, 8 bytes each; the map's results back, and each batch's failure mark.
        CHECK(stats_field(json, "m", "bytes_to_device") == 800000);
        CHECK(stats_field(json, "m", "bytes_from_device") >= 800000);
        CHECK(stats_field(json, "f", "bytes_to_device") == 800000);
        CHECK(stats_field(json, "r", "bytes_to_device") == 14286 * 8);
        CHECK(stats_field(json, "src", "bytes_to_device") == -1);  // not on a GPU: no field
        CHECK(json.find("\"name\": \"m\", ") != std::string::npos);
        // dot reads the file back.
        CHECK(run_cli({"dot", "tests/graphs/gpu/pipeline.yaml", "--stats-from", file}).exit_code ==
              0);
    }
    // --trace: a GPU track with a slice for each piece of device work.
    for (const char* backend : {"threads", "processes"}) {
        CAPTURE(backend);
        const std::string trace = (dir / (std::string(backend) + ".trace.json")).string();
        REQUIRE(run_cli({"run", "tests/graphs/gpu/pipeline.yaml", "--backend", backend, "--trace",
                         trace})
                    .exit_code == 0);
        const std::string json = read_file(trace);
        CHECK(json.find("\"args\": {\"name\": \"GPU\"}") != std::string::npos);
        for (const char* p : {"m", "f", "r"})
            CHECK(json.find("\"cat\": \"gpu\", \"name\": \"" + std::string(p) + "\"") !=
                  std::string::npos);
    }
    const auto table = run_cli({"run", "tests/graphs/gpu/pipeline.yaml", "--stats"});
    CHECK(table.err.find("\non a GPU  device s   MB to GPU  MB from GPU\nm ") != std::string::npos);
    CHECK(table.err.find("\nf           ") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("gpu host device: --version says a GPU can be used, and a raw kernel runs") {
    ScopedEnv host("CHANFLOW_GPU_DEVICE", "host");
    CHECK(run_cli({"--version"}).out.find("\ngpu: usable\n") != std::string::npos);
    for (const char* backend : {"threads", "processes"}) {
        CAPTURE(backend);
        const auto r = run_cli({"run", "tests/graphs/gpu/kernel_saxpy.yaml", "--backend", backend});
        CHECK(r.exit_code == 0);
        CHECK(r.err.empty());
        CHECK(r.out ==
              read_file(fs::path(CHANFLOW_SOURCE_DIR) / "tests/graphs/gpu/kernel_saxpy.out"));
    }
}

#endif
