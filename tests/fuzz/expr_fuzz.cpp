// libFuzzer target for expressions: any text either compiles or is refused with an
// ExprSyntaxError; what compiles, evaluated on a few values of x, gives a value or an
// ExprError. Anything else (a crash, a sanitizer report, another exception, a hang) is a
// bug; tests/fuzz/expr_regressions/ keeps every input that ever was one. Seeds:
// tests/fuzz/expr_seeds/.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "chanflow/expr.hpp"
#include "chanflow/value.hpp"

namespace {
std::vector<chanflow::Value> values_of_x() {
    using chanflow::List;
    using chanflow::Record;
    using chanflow::Value;
    Value deep(1);
    for (int i = 0; i < Value::kMaxNesting; ++i) deep = Value(List{deep});
    return {Value(),
            Value(0),
            Value(-7),
            Value(std::numeric_limits<long long>::min()),
            Value(std::numeric_limits<long long>::max()),
            Value(2.5),
            Value(-0.0),
            Value(std::numeric_limits<double>::infinity()),
            Value(std::numeric_limits<double>::quiet_NaN()),
            Value(true),
            Value("Hello, World"),
            Value(""),
            Value::bytes({0, 255, 7}),
            Value(List{Value(1), Value("a"), Value(List{Value(2.0)})}),
            Value(Record{{"a", Value(1)}, {"b", Value(List{})}}),
            deep};
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::vector<chanflow::Value> xs = values_of_x();
    const std::string_view source(reinterpret_cast<const char*>(data), size);
    chanflow::Expr e;
    try {
        e = chanflow::Expr::compile(source);
    } catch (const chanflow::ExprSyntaxError&) {
        return 0;
    }
    // A slow evaluation is no bug (one may make 256 MiB of lists, which takes a while under
    // the sanitizers): after a second, the other values of x are left out.
    const auto start = std::chrono::steady_clock::now();
    for (const chanflow::Value& x : xs) {
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(1)) break;
        try {
            const chanflow::Value v = e(x);
            const std::string printed = chanflow::to_printed(v);  // every value prints
            (void)printed;
            (void)chanflow::stable_hash(v);
        } catch (const chanflow::ExprError&) {
        }
    }
    return 0;
}
