// What every part of the expression language shares: the integer type, the limits, the
// operators' names and the one way an evaluation fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "chanflow/expr.hpp"
#include "chanflow/value.hpp"

// The numeric hot path is forced inline: on it a call costs as much as the arithmetic.
#define CHANFLOW_HOT [[gnu::always_inline]] inline

namespace chanflow::expr {

using i64 = std::int64_t;

constexpr i64 kIntMin = std::numeric_limits<i64>::min();
constexpr double kTwo63 = 9223372036854775808.0;
// Strings, bytes and lists made by `*` and `+` in one evaluation hold at most this many
// bytes in all (a list counts 16 a value): beyond, the expression fails instead of
// exhausting memory, however often it repeats itself ([x * 2**20, x * 2**20, ...]).
constexpr std::size_t kMaxSequenceBytes = std::size_t{1} << 28;
// Longest printed x in an error message, so a huge message cannot flood the log.
constexpr std::size_t kMaxPrintedX = 256;
// Deepest nesting the parser accepts; every walk over a tree is bounded by the same depth.
constexpr int kMaxDepth = 200;

enum class BinOp : std::uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
enum class CmpOp : std::uint8_t { Lt, Le, Gt, Ge, Eq, Ne };
/// How two operands of a comparison relate: an ordering (CmpOp), membership or identity.
enum class Rel : std::uint8_t { Cmp, In, NotIn, Is, IsNot };
enum class UnOp : std::uint8_t { Neg, Pos, Not };

/// The operator as written in the source.
const char* bin_symbol(BinOp op);

/// Fails the evaluation under way; the message is decorated with the expression and x once,
/// where the evaluation started.
[[noreturn]] inline void fail(std::string what) {
    throw ExprError(what);
}

/// x as printed in messages.
inline std::string json(const Value& v) {
    std::string s;
    append_json(s, v);
    return s;
}

inline const char* tname(const Value& v) {
    return type_name(v.type());
}

}  // namespace chanflow::expr
