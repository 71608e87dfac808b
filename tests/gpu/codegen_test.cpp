// The CUDA C generated from expressions, on a machine without a GPU: the text (golden
// files), a real NVRTC compile of every kernel to an sm_90 cubin, what has no GPU form, and
// the element-wise kernels run on the CPU through a host shim against the CPU evaluator.
#include <dlfcn.h>
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "chanflow/expr.hpp"
#include "codegen.hpp"
#include "expr/parser.hpp"
#include "nvrtc_compiler.hpp"
#include "prelude.hpp"

namespace fs = std::filesystem;
using namespace chanflow::gpu;
using chanflow::Value;

namespace {

// The source tree, and the host compiler for the shim: as built, unless the environment
// says otherwise (tools/gpu-check.sh runs these tests away from the tree they were built in).
std::string source_dir() {
    const char* dir = std::getenv("CHANFLOW_SOURCE_DIR");
    return dir && *dir ? dir : CHANFLOW_SOURCE_DIR;
}
std::string host_compiler() {
    const char* cxx = std::getenv("CXX");
    return cxx && *cxx ? cxx : CHANFLOW_CXX;
}

std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The generated text against tests/gpu/golden/NAME.cu; CHANFLOW_UPDATE_GOLDEN=1 rewrites it.
void check_golden(const std::string& name, const std::string& text) {
    const fs::path file = fs::path(source_dir()) / "tests/gpu/golden" / (name + ".cu");
    if (std::getenv("CHANFLOW_UPDATE_GOLDEN")) std::ofstream(file, std::ios::binary) << text;
    INFO("golden file " << file.string());
    CHECK(read(file) == text);
}

void check_compiles(const Kernel& k) {
    const Compiled c =
        compile_cuda(std::string(kPrelude) + k.source, k.entry + ".cu", kDefaultArch);
    INFO(k.source << "\n" << c.log);
    REQUIRE(c.ok);
    REQUIRE(c.cubin.size() > 4);
    CHECK(c.cubin.compare(0, 4,
                          "\x7f"
                          "ELF") == 0);
}

Kernel map_of(const std::vector<std::string>& sources, ElemType in) {
    std::vector<chanflow::expr::Ast> trees;
    for (const auto& s : sources) trees.push_back(chanflow::expr::parse(s));
    std::vector<const chanflow::expr::Ast*> stages;
    for (const auto& t : trees) stages.push_back(&t);
    return map_kernel(stages, in, "cf_map");
}

// Where an expression has no GPU form, and the message.
std::pair<std::size_t, std::string> unsupported(const std::string& source, ElemType in) {
    try {
        map_of({source}, in);
    } catch (const GpuUnsupported& e) {
        return {e.offset(), e.what()};
    }
    return {0, "(no error)"};
}

// A kernel (and the prelude) built as a host shared library, run on the CPU.
class HostKernel {
public:
    explicit HostKernel(const Kernel& k) {
        char tmpl[] = "/tmp/chanflow-shim-XXXXXX";
        dir_ = mkdtemp(tmpl);
        const fs::path src = dir_ / "kernel.cpp", lib = dir_ / "kernel.so";
        std::ofstream(src) << "#include \"" << source_dir() << "/tests/gpu/host_shim.hpp\"\n"
                           << kPrelude << k.source;
        const std::string cmd = host_compiler() + " -std=c++17 -O1 -shared -fPIC -o " +
                                lib.string() + " " + src.string() + " 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        handle_ = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
        REQUIRE(handle_ != nullptr);
        launch_as_ = reinterpret_cast<void (*)(unsigned, unsigned, unsigned, unsigned)>(
            dlsym(handle_, "cf_launch_as"));
        entry_ = dlsym(handle_, k.entry.c_str());
        REQUIRE(static_cast<bool>(launch_as_));
        REQUIRE(entry_ != nullptr);
    }
    ~HostKernel() {
        if (handle_) dlclose(handle_);
        fs::remove_all(dir_);
    }
    // Every thread of a grid, one after another.
    template <class In, class Out>
    unsigned long long run(const In* in, Out* out, long long n, unsigned grid, unsigned block) {
        using Fn = void (*)(const In*, Out*, long long, unsigned long long*);
        unsigned long long first = std::numeric_limits<unsigned long long>::max();
        for (unsigned b = 0; b < grid; ++b)
            for (unsigned t = 0; t < block; ++t) {
                launch_as_(grid, block, b, t);
                reinterpret_cast<Fn>(entry_)(in, out, n, &first);
            }
        return first;
    }

private:
    fs::path dir_;
    void* handle_ = nullptr;
    void (*launch_as_)(unsigned, unsigned, unsigned, unsigned) = nullptr;
    void* entry_ = nullptr;
};

bool same_value(const Value& cpu, ElemType t, const void* gpu) {
    switch (t) {
        case ElemType::Bool:
            return cpu.is_bool() && cpu.as_bool() == (*static_cast<const unsigned char*>(gpu) != 0);
        case ElemType::Int:
            return cpu.is_int() && cpu.as_int() == *static_cast<const long long*>(gpu);
        case ElemType::Float: {
            if (!cpu.is_float()) return false;
            const double g = *static_cast<const double*>(gpu), c = cpu.as_float();
            if (std::isnan(c)) return std::isnan(g);
            return std::memcmp(&g, &c, sizeof g) == 0;  // -0.0 is not 0.0
        }
    }
    return false;
}

const std::vector<long long> kInts = {0,
                                      1,
                                      -1,
                                      2,
                                      -2,
                                      3,
                                      7,
                                      -7,
                                      10,
                                      100,
                                      12345,
                                      -99999,
                                      1LL << 31,
                                      -(1LL << 31),
                                      1LL << 53,
                                      (1LL << 53) + 1,
                                      std::numeric_limits<long long>::max(),
                                      std::numeric_limits<long long>::min(),
                                      3037000499LL,
                                      3037000500LL};
const std::vector<double> kFloats = {0.0,
                                     -0.0,
                                     1.0,
                                     -1.0,
                                     0.5,
                                     -0.5,
                                     2.5,
                                     3.5,
                                     -2.5,
                                     1e-300,
                                     1e300,
                                     -1e300,
                                     9007199254740993.0,
                                     9.3e18,
                                     -9.3e18,
                                     std::numeric_limits<double>::infinity(),
                                     -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::quiet_NaN(),
                                     0.1,
                                     7.0};

// The kernel of `source` on the CPU through the shim, element by element against the CPU
// evaluator: the same values, and the first failure where the evaluator's first is.
template <class In>
void agrees_with_evaluator(const std::string& source, const std::vector<In>& xs, ElemType in) {
    const Kernel k = map_of({source}, in);
    HostKernel host(k);
    const chanflow::Expr cpu = chanflow::Expr::compile(source);
    // Odd sizes, several grid shapes: each element is made exactly once.
    for (const auto& [grid, block] :
         std::vector<std::pair<unsigned, unsigned>>{{1, 1}, {3, 7}, {2, 32}, {64, 64}}) {
        std::vector<In> data;
        for (int r = 0; r < 3; ++r) data.insert(data.end(), xs.begin(), xs.end());
        data.pop_back();  // an odd size
        std::vector<unsigned char> out(data.size() * 8);
        const unsigned long long first =
            host.run(data.data(), reinterpret_cast<long long*>(out.data()),
                     static_cast<long long>(data.size()), grid, block);
        std::size_t cpu_first = std::numeric_limits<std::size_t>::max();
        const std::size_t width = k.out == ElemType::Bool ? 1 : 8;
        for (std::size_t i = 0; i < data.size(); ++i) {
            Value want;
            try {
                if constexpr (std::is_same_v<In, double>)
                    want = cpu(Value(data[i]));
                else
                    want = cpu(Value(static_cast<std::int64_t>(data[i])));
            } catch (const chanflow::ExprError&) {
                cpu_first = std::min(cpu_first, i);
                continue;
            }
            INFO(source << " at x = " << data[i] << " wants " << chanflow::to_printed(want)
                        << " grid " << grid << "x" << block);
            CHECK(same_value(want, k.out, out.data() + i * width));
        }
        INFO(source << " grid " << grid << "x" << block);
        CHECK(first == (cpu_first == std::numeric_limits<std::size_t>::max()
                            ? std::numeric_limits<unsigned long long>::max()
                            : cpu_first));
    }
}

}  // namespace

TEST_CASE("gpu codegen: the text of map, filter and reduce kernels (golden files)") {
    check_golden("map_square_int", map_of({"x * x"}, ElemType::Int).source);
    check_golden(
        "map_fused_float",
        map_of({"x * 2.0 + 1", "sqrt(x) if x > 0 else -x", "x < 3 < 5"}, ElemType::Float).source);
    check_golden("map_logic_int", map_of({"x > 0 and x % 3 == 0 or not x"}, ElemType::Int).source);
    const auto odd = chanflow::expr::parse("x % 2 == 1");
    check_golden("filter_odd_int", filter_kernel(odd, ElemType::Int, "cf_filter").source);
    const auto pre = chanflow::expr::parse("x * x");
    check_golden("reduce_sum_squares_float",
                 reduce_kernel(ReduceOp::Sum, &pre, ElemType::Float, "cf_reduce").source);
}

TEST_CASE("gpu codegen: every generated kernel compiles with NVRTC to an sm_90 cubin") {
    for (ElemType in : {ElemType::Int, ElemType::Float}) {
        CAPTURE(elem_type_name(in));
        check_compiles(map_of({"x * x"}, in));
        check_compiles(map_of({"x + 1", "x // 3", "x % 5", "-x", "x ** 2", "abs(x)"}, in));
        check_compiles(map_of({"x / 2", "floor(x)", "ceil(x)", "round(x)", "int(x)"}, in));
        check_compiles(
            map_of({"sqrt(abs(x)) + exp(x / 1e6) + log(abs(x) + 1) + sin(x) + cos(x)"}, in));
        check_compiles(map_of({"log(abs(x) + 2, 10)", "float(x) ** 0.5", "bool(x)", "not x"}, in));
        check_compiles(map_of({"min(x, x * 2, x - 1)", "max(x, x)", "x if x > 1 else x + 1"}, in));
        check_compiles(map_of({"1 <= x < 10 != x", "x == 2 or x >= 4 and True"}, in));
        const auto cond = chanflow::expr::parse("x > 2 and x < 100");
        check_compiles(filter_kernel(cond, in, "cf_filter"));
        const auto pre = chanflow::expr::parse("x * 3");
        for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Product, ReduceOp::Min, ReduceOp::Max}) {
            check_compiles(reduce_kernel(op, nullptr, in, "cf_reduce"));
            check_compiles(reduce_kernel(op, &pre, in, "cf_reduce"));
        }
    }
    // A kernel that does not compile says so, with NVRTC's message.
    const Compiled bad =
        compile_cuda("extern \"C\" __global__ void k() { undeclared(); }", "bad.cu", 90);
    CHECK(!bad.ok);
    CHECK(bad.log.find("undeclared") != std::string::npos);
    CHECK(nvrtc_version().rfind("NVRTC ", 0) == 0);
}

TEST_CASE("gpu codegen: what has no GPU form says where and why") {
    using P = std::pair<std::size_t, std::string>;
    CHECK(unsupported("x ** x", ElemType::Int).first == 0);
    CHECK(unsupported("x ** x", ElemType::Int).second.find("the exponent must be a constant") !=
          std::string::npos);
    CHECK(unsupported("x ** x", ElemType::Float).second == "(no error)");
    CHECK(unsupported("1 + (x if x > 0 else 2.5)", ElemType::Int) ==
          P{5,
            "this conditional is an int or a float depending on the condition; on a GPU both "
            "branches must have one type (float(...) makes a float)"});
    CHECK(unsupported("max(x, 0)", ElemType::Float).second.find("max() of an int and a float") ==
          0);
    CHECK(unsupported("x.a", ElemType::Int) ==
          P{0, "fields have no GPU form (the GPU sees numbers)"});
    CHECK(unsupported("x + len('ab')", ElemType::Int).first == 4);
    CHECK(unsupported("str(x)", ElemType::Int).second == "str(...) has no GPU form");
    CHECK(unsupported("x in [1, 2]", ElemType::Int).second.find("'in' and 'is'") == 0);
    CHECK(unsupported("x and 1.5", ElemType::Int).second.find("'and' of int and float") == 0);
    CHECK(unsupported("'a'", ElemType::Int).second == "str values have no GPU form");
}

TEST_CASE("gpu codegen: element-wise kernels on the CPU agree with the evaluator") {
    const std::vector<std::string> int_exprs = {"x * x",
                                                "x + 1",
                                                "x - 1",
                                                "-x",
                                                "x // 7",
                                                "x % 7",
                                                "x // -3",
                                                "x % -3",
                                                "x / 4",
                                                "x ** 2",
                                                "x ** -1",
                                                "abs(x)",
                                                "x * 3037000500",
                                                "x if x > 2 else 0",
                                                "x > 0 and x < 10",
                                                "1 < x <= 100",
                                                "not x",
                                                "min(x, 5, -x)",
                                                "max(x, 3)",
                                                "float(x) * 0.5",
                                                "int(x / 3)",
                                                "round(x / 2)",
                                                "floor(x / 2)",
                                                "ceil(x / 2)",
                                                "sqrt(x)",
                                                "x // 0",
                                                "bool(x % 2)",
                                                "x == 9007199254740993.0",
                                                "x < 9.3e18",
                                                "log(x)",
                                                "log(x, 2)"};
    for (const auto& e : int_exprs) agrees_with_evaluator<long long>(e, kInts, ElemType::Int);
    const std::vector<std::string> float_exprs = {"x * x",
                                                  "x + 1",
                                                  "x * 2.0 + 1",
                                                  "-x",
                                                  "x // 2",
                                                  "x % 2",
                                                  "x % -2.5",
                                                  "x / 3",
                                                  "x ** 2",
                                                  "x ** 0.5",
                                                  "abs(x)",
                                                  "int(x)",
                                                  "round(x)",
                                                  "floor(x)",
                                                  "ceil(x)",
                                                  "sqrt(x)",
                                                  "exp(x)",
                                                  "log(x)",
                                                  "sin(x)",
                                                  "cos(x)",
                                                  "x == 9007199254740993",
                                                  "x < 9223372036854775807",
                                                  "min(x, 1.0)",
                                                  "max(x, -x)",
                                                  "x if x == x else 0.0",
                                                  "x / 0",
                                                  "x > 1 or x < -1",
                                                  "0.1 + 0.2 + x"};
    for (const auto& e : float_exprs) agrees_with_evaluator<double>(e, kFloats, ElemType::Float);
}
