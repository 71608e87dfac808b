// Python's operators on values, for the generic evaluator and the built-in functions.
#pragma once

#include <cstddef>
#include <string_view>

#include "expr/common.hpp"

namespace chanflow::expr {

// What the evaluation under way on this thread has made with `*` and `+` so far.
inline thread_local std::size_t tl_sequence_bytes = 0;

/// An evaluation starts with the whole of kMaxSequenceBytes to make.
struct EvaluationBudget {
    EvaluationBudget() noexcept { tl_sequence_bytes = 0; }
};

/// Python ==: numbers by value across int/float/bool, records regardless of field order.
bool py_equal(const Value& a, const Value& b);
/// Python's ordering and equality; fails when Python could not order the two.
bool compare(const Value& a, const Value& b, CmpOp op);
/// Every binary operator on every pair of values: the slow path behind the fast ones.
Value binary(BinOp op, const Value& a, const Value& b);

/// base.name, failing with Python's message when base has no such field.
Value field_of(const Value& base, std::string_view name);
/// base[idx] for strings, bytes, lists, records and tensors, negative indexes included.
Value index_of(const Value& base, const Value& idx);
/// base[lo:hi]; a null bound is open.
Value slice_of(const Value& base, const Value& lo, const Value& hi);
/// `item in container`.
bool contains(const Value& container, const Value& item);

}  // namespace chanflow::expr
