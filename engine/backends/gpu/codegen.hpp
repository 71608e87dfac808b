// codegen.hpp — CUDA C from the expression syntax tree (engine/src/expr/ast.hpp): the map,
// filter and reduce kernels of processes placed on a GPU.
//
// Kernels are statically typed: the message x is an int (int64) or a float (float64) for a
// whole batch, and every part of the expression must have one type for that x. Python's
// dynamic types allow more (`1 if c else 2.0`); such an expression has no GPU form for that
// x, and GpuUnsupported says where and why. What the CPU evaluator would fail on (overflow,
// division by zero, a math domain error) sets the element's failure flag; the host then
// evaluates that element on the CPU, for the CPU's exact message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "expr/ast.hpp"

namespace chanflow::gpu {

/// The type of a batch's elements, and of what an expression makes of them.
enum class ElemType : std::uint8_t { Bool, Int, Float };
const char* elem_type_name(ElemType t) noexcept;  // "bool", "int", "float"
const char* elem_c_type(ElemType t) noexcept;     // how it is stored: unsigned char, ...

/// An expression, or a part of one, that has no GPU form.
class GpuUnsupported : public std::runtime_error {
public:
    GpuUnsupported(const std::string& what, std::size_t offset)
        : std::runtime_error(what), offset_(offset) {}
    /// Where in the expression's source the part starts.
    std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t offset_;
};

/// One kernel's CUDA C (after kPrelude) and the type of what it makes.
struct Kernel {
    std::string entry;  // the extern "C" function's name
    std::string source;
    ElemType out = ElemType::Int;
};

/// Maps applied in turn, fused into one kernel:
///   ENTRY(const IN* in, OUT* out, long long n, unsigned long long* first_failure)
/// Throws GpuUnsupported, with the index of the stage in `stage`.
Kernel map_kernel(const std::vector<const expr::Ast*>& stages, ElemType in,
                  const std::string& entry, std::size_t* stage = nullptr);

/// A filter: keep[i] = 1 where the condition holds on in[i], else 0:
///   ENTRY(const IN* in, unsigned char* keep, long long n, unsigned long long* first_failure)
Kernel filter_kernel(const expr::Ast& condition, ElemType in, const std::string& entry);

enum class ReduceOp : std::uint8_t { Sum, Product, Min, Max };
/// How many threads a reduction block has, and the most blocks a pass launches: fixed, so
/// that the order in which floats are added depends on the element count alone.
constexpr int kReduceBlock = 256;
constexpr int kReduceMaxBlocks = 1024;
constexpr unsigned long long kCombineFailed = 9223372036854775807ULL;

/// A deterministic reduction in passes. `entry` reads the elements (after `pre`, when
/// given): block b combines its share of in[0, n) in a fixed tree order into partial[b],
/// has[b] saying whether it saw any element:
///   ENTRY(const IN* in, long long n, ACC* partial, unsigned char* has,
///         unsigned long long* first_failure)
/// `entry`_partials does the same over partials and their flags, until one is left:
///   ENTRY_partials(const ACC* in, const unsigned char* in_has, long long n, ACC* partial,
///                  unsigned char* has, unsigned long long* first_failure)
/// first_failure is an element's index where `pre` failed, kCombineFailed where ints
/// overflowed while combining.
Kernel reduce_kernel(ReduceOp op, const expr::Ast* pre, ElemType in, const std::string& entry);

/// The type `ast` has for an x of type `in`; throws GpuUnsupported.
ElemType result_type(const expr::Ast& ast, ElemType in);

}  // namespace chanflow::gpu
