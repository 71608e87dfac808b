// process_kernels.cpp — from a checked process to its kernels, one for int messages and
// one for float messages.
#include "process_kernels.hpp"

#include <stdexcept>

#include "chanflow/node.hpp"
#include "expr/parser.hpp"
#include "prelude.hpp"

namespace chanflow::gpu {
namespace {

std::optional<ReduceOp> reduce_op(const std::string& op) {
    if (op == "sum" || op == "mean") return ReduceOp::Sum;  // mean: the sum over the count
    if (op == "product") return ReduceOp::Product;
    if (op == "min") return ReduceOp::Min;
    if (op == "max") return ReduceOp::Max;
    return std::nullopt;  // count needs no kernel
}

const Value* param(const PlanProcess& p, const std::string& name) {
    const auto it = p.params.find(name);
    return it == p.params.end() || it->second.is_null() ? nullptr : &it->second;
}

}  // namespace

std::string kernel_entry(const char* kind, ElemType in) {
    return std::string(kind) + "_" + elem_type_name(in);
}

std::string ProcessKernels::source() const {
    std::string s = kPrelude;
    for (const auto& v : variants)
        if (v.kernel) s += "\n" + v.kernel->source;
    return s;
}

bool ProcessKernels::any() const {
    for (const auto& v : variants)
        if (v.kernel) return true;
    return false;
}

ProcessKernels kernels_for(const PlanProcess& p) {
    const std::string node = p.type ? p.type->name : "";
    ProcessKernels out;
    const Value* source = param(p, "expr");
    std::optional<expr::Ast> tree;
    if (source && source->is_string()) {
        out.param = "expr";
        tree = expr::parse(source->as_string());  // checked already: it parses
    }
    // Maps fused into this one apply after it, in the same kernel.
    std::vector<expr::Ast> fused;
    for (const FusedMap& f : p.fused) fused.push_back(expr::parse(f.expr.source()));
    std::vector<const expr::Ast*> stages;
    if (tree) stages.push_back(&*tree);
    for (const auto& f : fused) stages.push_back(&f);
    std::optional<ReduceOp> op;
    if (node == "reduce") {
        const Value* name = param(p, "op");
        op = reduce_op(name && name->is_string() ? std::string(name->as_string()) : "sum");
        if (!op) return out;  // count reads no value; an unknown op fails as on the CPU
    }
    for (ElemType in : {ElemType::Int, ElemType::Float}) {
        KernelVariant v;
        v.in = in;
        try {
            if (node == "map" && tree) {
                v.kernel = map_kernel(stages, in, kernel_entry("cf_map", in));
            } else if (node == "filter" && tree) {
                v.kernel = filter_kernel(*tree, in, kernel_entry("cf_filter", in));
            } else if (node == "reduce") {
                v.kernel =
                    reduce_kernel(*op, tree ? &*tree : nullptr, in, kernel_entry("cf_reduce", in));
            } else {
                throw std::logic_error("no GPU version of node '" + node + "'");
            }
        } catch (const GpuUnsupported& e) {
            v.unsupported = e.what();
            v.offset = e.offset();
        }
        out.variants.push_back(std::move(v));
    }
    return out;
}

}  // namespace chanflow::gpu
