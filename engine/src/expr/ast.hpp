// The syntax tree of one expression: what the parser makes and every back end reads. The
// CPU evaluator (tree_builder.cpp) walks it once to build its nodes; another code generator
// can walk it the same way without touching the evaluator. A tree is plain data: no
// evaluation state, no folding, names already resolved (x, constants, built-in functions).
// Its depth is bounded by kMaxDepth, which the parser enforces, so a recursive walk is safe.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "expr/builtins.hpp"
#include "expr/common.hpp"

namespace chanflow::expr {

/// One link of a comparison: `<`, `in`, `is not` ...; `op` counts only for Rel::Cmp.
struct Link {
    Rel rel = Rel::Cmp;
    CmpOp op = CmpOp::Eq;
};

struct Ast {
    enum class Kind : std::uint8_t {
        Constant,     // value
        Message,      // x
        Unary,        // unary, kids {a}
        Binary,       // binary, kids {a, b}
        Compare,      // links, kids {a, b, ...}: a link between each neighbouring pair
        And,          // kids {a, b}; the value of a or b, as Python
        Or,           // kids {a, b}
        Conditional,  // kids {condition, then, otherwise}
        Index,        // kids {base, index}
        Slice,        // kids {base, lo, hi}; an absent bound is a null constant
        Field,        // name, kids {base}
        List,         // kids: the items
        Record,       // kids {key0, value0, key1, value1, ...}
        Call,         // fn, kids: the arguments
    };

    Kind kind = Kind::Constant;
    std::size_t offset = 0;  // where the node starts in the source
    Value value;             // Constant
    UnOp unary = UnOp::Neg;
    BinOp binary = BinOp::Add;
    std::vector<Link> links;      // Compare
    std::string name;             // Field
    const Builtin* fn = nullptr;  // Call
    std::vector<Ast> kids;

    static Ast constant(Value v, std::size_t offset) {
        Ast a;
        a.value = std::move(v);
        a.offset = offset;
        return a;
    }
    static Ast of(Kind kind, std::size_t offset, std::vector<Ast> kids = {}) {
        Ast a;
        a.kind = kind;
        a.offset = offset;
        a.kids = std::move(kids);
        return a;
    }

    bool is_constant() const { return kind == Kind::Constant; }
};

}  // namespace chanflow::expr
