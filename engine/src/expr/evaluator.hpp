// The generic evaluator: a tree of small immutable nodes over Values that implements all of
// Python's rules. It is the reference, and the only evaluator that reports errors. Each
// node's numeric subtrees also get a numeric evaluator (numeric.hpp), tried first; when it
// fails, the node runs again here and says why. Constant subtrees are folded when built.
#pragma once

#include <cstdint>
#include <memory>

#include "expr/ast.hpp"
#include "expr/numeric.hpp"

namespace chanflow::expr {

class Node {
public:
    virtual ~Node() = default;
    virtual Value eval(const Value& x) const = 0;
    /// This subtree for the numeric evaluator; false when it does more than numbers.
    virtual bool to_numeric(NumOperand& /*out*/) const { return false; }
    /// Gives the largest numeric subtrees below this node a numeric evaluator.
    virtual void accelerate() {}
};

/// An operand of a generic node: the message x, a constant, or a computed subtree, which
/// may carry a numeric evaluator to try first. Leaves are read in place, so they cost
/// neither a virtual call nor a refcount.
class Operand {
public:
    static Operand message() {
        Operand o;
        o.kind_ = Kind::X;
        return o;
    }
    static Operand constant(Value v) {
        Operand o;
        o.value_ = std::move(v);
        return o;
    }
    static Operand computed(std::unique_ptr<Node> n) {
        Operand o;
        o.kind_ = Kind::Computed;
        o.node_ = std::move(n);
        return o;
    }

    bool is_const() const { return kind_ == Kind::Const; }
    bool is_message() const { return kind_ == Kind::X; }
    bool is_fast() const { return kind_ == Kind::Fast; }
    const Value& value() const { return value_; }
    const NumOperand& fast() const { return fast_; }

    /// The operand's value, either in place or stored in tmp.
    CHANFLOW_HOT const Value& get(const Value& x, Value& tmp) const {
        if (kind_ == Kind::X) return x;
        if (kind_ == Kind::Const) return value_;
        tmp = computed_value(x);
        return tmp;
    }
    CHANFLOW_HOT Value eval(const Value& x) const {
        if (kind_ == Kind::X) return x;
        if (kind_ == Kind::Const) return value_;
        return computed_value(x);
    }

    /// eval without the numeric evaluator, for when it has just failed.
    Value eval_generic(const Value& x) const {
        if (kind_ == Kind::X) return x;
        if (kind_ == Kind::Const) return value_;
        return node_->eval(x);
    }

    bool to_numeric(NumOperand& out) const {
        switch (kind_) {
            case Kind::X:
                out = NumOperand::message();
                return true;
            case Kind::Const:
                if (!is_numeric(value_)) return false;
                out = NumOperand::constant(to_num(value_));
                return true;
            default:
                return node_->to_numeric(out);
        }
    }

    void accelerate() {
        if (kind_ != Kind::Computed) return;
        NumOperand n;
        if (node_->to_numeric(n) && !n.is_const()) {
            fast_ = std::move(n);
            kind_ = Kind::Fast;
        } else {
            node_->accelerate();
        }
    }

private:
    CHANFLOW_HOT Value computed_value(const Value& x) const {
        if (kind_ == Kind::Fast) {
            const Num r = fast_.get(x);
            if (r.ok()) [[likely]]
                return to_value(r);
        }
        return node_->eval(x);
    }

    enum class Kind : std::uint8_t { X, Const, Computed, Fast };
    Kind kind_ = Kind::Const;
    Value value_;
    std::unique_ptr<Node> node_;
    NumOperand fast_;  // Fast: tried before node_
};

/// The evaluator of a parsed expression, its numeric subtrees accelerated.
Operand build_evaluator(const Ast& tree);

}  // namespace chanflow::expr
