// Reading a gpu.kernel's arguments from its CUDA C, and matching them to ports and params.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "raw_kernel.hpp"

using namespace chanflow::gpu;
using chanflow::DType;
using chanflow::Record;
using chanflow::Value;

namespace {

std::string error_of(const std::string& source, const std::string& entry,
                     const KernelBinding& binding, std::size_t* offset = nullptr) {
    try {
        match_arguments(kernel_arguments(source, entry), binding, entry,
                        entry_offset(source, entry));
    } catch (const KernelSourceError& e) {
        if (offset) *offset = e.offset();
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("raw kernels: arguments are read with their types, comments and qualifiers aside") {
    const std::string src =
        "// extern \"C\" __global__ void k(int nonsense)\n"
        "__device__ float helper(float v) { return v; }\n"
        "extern \"C\" __global__ void k(const float* __restrict__ x, /* y */ double *y,\n"
        "                              long long n, int count) {}\n";
    const auto args = kernel_arguments(src, "k");
    REQUIRE(args.size() == 4);
    CHECK(args[0].name == "x");
    CHECK(args[0].type == "float");
    CHECK(args[0].pointer);
    CHECK(args[0].is_const);
    CHECK(args[0].dtype() == DType::F32);
    CHECK(src.compare(args[0].offset, 5, "const") == 0);
    CHECK(args[1].name == "y");
    CHECK((args[1].pointer && !args[1].is_const && args[1].dtype() == DType::F64));
    CHECK((args[2].name == "n" && !args[2].pointer && args[2].dtype() == DType::I64));
    CHECK((args[3].name == "count" && args[3].dtype() == DType::I32));
    CHECK(kernel_arguments("extern \"C\" __global__ void e() {}", "e").empty());
    CHECK(kernel_arguments("extern \"C\" __global__ void e(void) {}", "e").empty());
}

TEST_CASE("raw kernels: what cannot be read or matched says so, where it stands") {
    CHECK_THROWS_WITH(kernel_arguments("__global__ void k(float* x) {}", "k"),
                      "kernel 'k' must be declared extern \"C\"");
    // A source that repeats the name a million times is read in one pass.
    std::string many;
    for (int i = 0; i < 1000000; ++i) many += "k( ";
    CHECK_THROWS_WITH(kernel_arguments("extern \"C\" " + many, "k"),
                      "no kernel 'extern \"C\" __global__ void k(...)' in the source");
    CHECK_THROWS_WITH(kernel_arguments("extern \"C\" __device__ void k(float* x) {}", "k"),
                      "no kernel 'extern \"C\" __global__ void k(...)' in the source");
    CHECK_THROWS_WITH(
        kernel_arguments("  # include \"/etc/passwd\"\nextern \"C\" __global__ void k() {}", "k"),
        "a kernel's source may not #include files");
    CHECK_NOTHROW(kernel_arguments("// #include <x>\nextern \"C\" __global__ void k() {}", "k"));
    CHECK_THROWS_WITH(kernel_arguments("extern \"C\" __global__ void k(float** x) {}", "k"),
                      "cannot read this kernel argument: a type, at most one '*' and a name "
                      "are expected");
    const std::string src =
        "extern \"C\" __global__ void k(const float* a, float* b, double s, long long n) {}";
    KernelBinding good{{"a"}, {"b"}, Record{{"s", Value(1)}}};
    CHECK(error_of(src, "k", good).empty());
    std::size_t at = 0;
    KernelBinding swapped{{"b"}, {"a"}, Record{{"s", Value(1.5)}}};
    CHECK(error_of(src, "k", swapped, &at) ==
          "argument 'a' of kernel 'k' is output port 'a': it must be a pointer (not const) to "
          "float, double, int or long long");
    CHECK(src.compare(at, 14, "const float* a") == 0);
    KernelBinding stranger{{"a"}, {"b"}, Record{}};
    CHECK(error_of(src, "k", stranger) ==
          "argument 's' of kernel 'k' is neither a port (in: a; out: b), a param (none) nor n");
    KernelBinding extra{{"a", "c"}, {"b"}, Record{{"s", Value(2.0)}}};
    CHECK(error_of(src, "k", extra) == "input port 'c' is not an argument of kernel 'k'");
    KernelBinding none{{}, {"b", "a"}, Record{{"s", Value(2.0)}}};
    CHECK(error_of("extern \"C\" __global__ void k(float* a, float* b, double s) {}", "k", none) ==
          "kernel 'k' needs an input port: its first input gives n, the element count");
    KernelBinding big{{"a"}, {"b"}, Record{{"s", Value(1)}}};
    CHECK(error_of("extern \"C\" __global__ void k(const float* a, float* b, int s) {}", "k",
                   KernelBinding{{"a"}, {"b"}, Record{{"s", Value(std::int64_t{1} << 40)}}}) ==
          "argument 's' of kernel 'k' has type int, but param 's' is 1099511627776");
    CHECK(error_of(src, "k", big).empty());
}
