// The MPI backend embedded (chanflow/mpi.hpp), run by ctest under mpirun on 2 and 3 ranks:
// tensors small and large cross ranks intact (the large ones out of line, straight into
// their own memory), every delivery policy gets its values where they belong, and what
// `collect` nodes received is gathered to rank 0. Exit 0 when all holds, 1 (rank 0 says
// what did not) otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chanflow/chanflow.hpp"
#include "chanflow/mpi.hpp"

namespace {

// Tensor i: float64, i * 40 000 + 1 elements (0 B to 2.4 MiB), element k = i * 1000 + k.
chanflow::Value tensor(std::int64_t i) {
    chanflow::Tensor t;
    t.dtype = chanflow::DType::F64;
    const std::int64_t n = i * 40000 + 1;
    t.shape = {n};
    t.data.resize(static_cast<std::size_t>(n) * 8);
    for (std::int64_t k = 0; k < n; ++k) {
        const double v = static_cast<double>(i * 1000 + k);
        std::memcpy(t.data.data() + k * 8, &v, 8);
    }
    return chanflow::Value(std::move(t));
}

chanflow::Task tensors_body(chanflow::ProcessContext& ctx) {
    auto& out = ctx.out();
    for (std::int64_t i = 0; i < 8; ++i) co_await out.write(tensor(i));
}

int failures = 0;
void expect(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "embed_test: %s\n", what.c_str());
        ++failures;
    }
}

}  // namespace

int main(int argc, char** argv) {
    chanflow::NodeRegistry::global().add({.name = "test.tensors",
                                          .doc = "Writes tensors 0..7 of growing size.",
                                          .ports = {chanflow::out_port("out")},
                                          .body = tensors_body});
    chanflow::MpiSession mpi(argc, argv);
    chanflow::Graph g("embed");
    g.process("src", "test.tensors").rank(mpi.size() - 1).out("out", "t");
    g.process("got", "collect").rank(0).in("in", "t");
    g.process("numbers", "range").with("stop", 1000).out("out", "n");
    g.process("twice", "map")
        .with("expr", "x * 2")
        .replicas(3)
        .in("in", "n", chanflow::Deliver::Hash)
        .out("out", "m");
    g.process("all", "collect").in("in", "m");
    g.process("copies", "collect").replicas(3).in("in", "t2", chanflow::Deliver::Broadcast);
    g.process("feed", "range").with("stop", 50).rank(mpi.size() - 1).out("out", "t2");
    const chanflow::Plan plan = g.plan();
    const chanflow::RunResult r = chanflow::run_mpi(mpi, plan, chanflow::place(plan, mpi.size()));
    expect(r.status == chanflow::RunStatus::Ok, "the run failed: " + r.message);
    if (mpi.rank() != 0) return r.exit_code();

    const auto& got = r.collected.at("got");
    expect(got.size() == 8, "tensors: " + std::to_string(got.size()) + " arrived, not 8");
    for (std::size_t i = 0; i < got.size(); ++i) {
        const chanflow::Value want = tensor(static_cast<std::int64_t>(i));
        expect(got[i].is_tensor() && got[i].as_tensor().shape == want.as_tensor().shape &&
                   got[i].as_tensor().data == want.as_tensor().data,
               "tensor " + std::to_string(i) + " arrived changed or out of order");
    }
    std::int64_t sum = 0;
    for (const auto& v : r.collected.at("all")) sum += v.as_int();
    expect(r.collected.at("all").size() == 1000 && sum == 999000,
           "hash: " + std::to_string(r.collected.at("all").size()) + " values, sum " +
               std::to_string(sum));
    // Three readers of a broadcast, wherever they ran: each of the 50 values three times.
    std::int64_t copies = 0;
    for (const auto& v : r.collected.at("copies")) copies += v.as_int();
    expect(r.collected.at("copies").size() == 150 && copies == 3 * 1225,
           "broadcast: " + std::to_string(r.collected.at("copies").size()) + " values");
    return failures == 0 ? 0 : 1;
}
