// libFuzzer target for graph files: any text either loads, checks and places, or is refused
// with a GraphError. Plugins are never loaded. Anything else (a crash, a sanitizer report,
// another exception, a hang) is a bug; tests/fuzz/graph_regressions/ keeps every input that
// ever was one. Seeds: tests/fuzz/graph_seeds/ (the cookbook and test graphs).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chanflow/graph.hpp"
#include "chanflow/placement.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    chanflow::CheckOptions options;
    options.plugins = false;
    try {
        const chanflow::Plan plan =
            chanflow::check_graph(chanflow::parse_graph_spec(text, "fuzz.yaml"), options);
        for (int partitions : {1, 2, 5}) chanflow::place(plan, partitions);
    } catch (const chanflow::GraphError&) {
    }
    return 0;
}
