// The numeric evaluator: subtrees that do nothing but arithmetic, comparisons and logic on
// numbers, evaluated over Num with no Value, no allocation and no exception. The chain
// `leaf [* // % c] [+ - c] [comparison c]` over x or x.field, which covers most map, filter
// and key expressions, is one straight-line operand with no virtual call at all. A failure
// (x is not a number, an overflow, a division by zero) sends the caller back to the generic
// evaluator, which says why.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "expr/num.hpp"

namespace chanflow::expr {

[[gnu::noinline]] inline Num field_num(const Value& x, const std::string& name) {
    const Value* f = x.field(name);
    return f ? to_num(*f) : Num::failure(NumError::NotNumber);
}

class NumNode {
public:
    virtual ~NumNode() = default;
    virtual Num eval(const Value& x) const = 0;
};

/// An operand of the numeric evaluator: a constant, a computed subtree, or a linear form
///   leaf [* c1 | // c1 | % c1] [+ c2] [comparison c3]   with leaf = x or x.field,
/// evaluated in line, without a virtual call. Compilation grows linear forms by absorbing
/// constant operations (see fuse), always in that stage order.
class NumOperand {
public:
    static NumOperand constant(Num c) {
        NumOperand o;
        o.k1_ = c;
        return o;
    }
    static NumOperand message() {
        NumOperand o;
        o.kind_ = Kind::Linear;
        return o;
    }
    static NumOperand field(std::string name) {
        NumOperand o = message();
        o.from_field_ = true;
        o.field_ = std::move(name);
        return o;
    }
    static NumOperand computed(std::unique_ptr<NumNode> n) {
        NumOperand o;
        o.kind_ = Kind::Computed;
        o.node_ = std::move(n);
        return o;
    }

    bool is_const() const { return kind_ == Kind::Const; }

    /// Whether this is a linear form over x with int constants (and no zero divisor), which
    /// run_int computes for an int x without any type tags.
    bool int_linear() const {
        return kind_ == Kind::Linear && !from_field_ &&
               (scale_ == Scale::None || (k1_.is_int() && (scale_ == Scale::Mul || k1_.i != 0))) &&
               (!add_ || k2_.is_int()) && (mask_ == 0 || k3_.is_int());
    }
    bool has_comparison() const { return mask_ != 0; }

    /// The linear form on an int x; false when an int operation overflows.
    CHANFLOW_HOT bool run_int(i64 v, i64& out) const {
        if (scale_ == Scale::Mul) {
            if (__builtin_mul_overflow(v, k1_.i, &v)) return false;
        } else if (scale_ == Scale::FloorDiv) {
            if (v == kIntMin && k1_.i == -1) return false;
            v = floor_div(v, k1_.i);
        } else if (scale_ == Scale::Mod) {
            v = floor_mod(v, k1_.i);
        }
        if (add_ && __builtin_add_overflow(v, k2_.i, &v)) return false;
        if (mask_ != 0) v = mask_holds(mask_, three_way(v, k3_.i));
        out = v;
        return true;
    }

    CHANFLOW_HOT Num get(const Value& x) const {
        if (kind_ == Kind::Linear) return linear(x);
        if (kind_ == Kind::Const) return k1_;
        return node_->eval(x);
    }

    /// Folds `a op b` into a linear form when one side is linear and the other constant;
    /// false (leaving both untouched) when that would break the stage order or exactness.
    static bool fuse(BinOp op, NumOperand& a, NumOperand& b, NumOperand& out) {
        const bool const_left = a.kind_ == Kind::Const;
        NumOperand& lin = const_left ? b : a;
        const NumOperand& k = const_left ? a : b;
        if (lin.kind_ != Kind::Linear || k.kind_ != Kind::Const) return false;
        const Num c = k.k1_;
        const bool bare = lin.scale_ == Scale::None && !lin.add_ && lin.mask_ == 0;
        const bool add_open = !lin.add_ && lin.mask_ == 0;
        if (op == BinOp::Mul && bare) {  // c * v == v * c exactly, for ints and floats
            lin.scale_ = Scale::Mul;
            lin.k1_ = c;
        } else if ((op == BinOp::FloorDiv || op == BinOp::Mod) && bare && !const_left) {
            lin.scale_ = op == BinOp::Mod ? Scale::Mod : Scale::FloorDiv;
            lin.k1_ = c;
        } else if (op == BinOp::Add && add_open) {
            lin.add_ = true;
            lin.k2_ = c;
        } else if (op == BinOp::Sub && !const_left && add_open && num_neg(c).ok() &&
                   (c.is_float() || c.i != 0)) {
            // v - c == v + -c exactly (IEEE defines it so), but for an int zero: -0.0 - 0
            // is -0.0 while -0.0 + 0 is 0.0.
            lin.add_ = true;
            lin.k2_ = num_neg(c);
        } else if (op == BinOp::Sub && const_left && bare &&
                   !(c.is_float() && c.f == 0.0 && std::signbit(c.f))) {
            // c - v == v * -1 + c, but for c = -0.0 and an int v = 0 (-0.0 - 0 is -0.0, and
            // 0 + -0.0 is 0.0). Where v * -1 overflows but c - v would not, the numeric
            // evaluator fails and the generic one answers.
            lin.scale_ = Scale::Mul;
            lin.k1_ = Num::integer(-1);
            lin.add_ = true;
            lin.k2_ = c;
        } else {
            return false;
        }
        out = std::move(lin);
        return true;
    }

    static bool fuse(CmpOp op, NumOperand& a, NumOperand& b, NumOperand& out) {
        const bool const_left = a.kind_ == Kind::Const;
        NumOperand& lin = const_left ? b : a;
        NumOperand& c = const_left ? a : b;
        if (lin.kind_ != Kind::Linear || c.kind_ != Kind::Const || lin.mask_ != 0) return false;
        lin.mask_ = cmp_mask(const_left ? mirrored(op) : op);
        lin.k3_ = c.k1_;
        out = std::move(lin);
        return true;
    }

    /// -v and +v as linear forms (v * -1, v * 1: the same values, bools becoming ints).
    static bool fuse_sign(bool negate, NumOperand& a) {
        if (a.kind_ != Kind::Linear || a.scale_ != Scale::None || a.add_ || a.mask_ != 0)
            return false;
        a.scale_ = Scale::Mul;
        a.k1_ = Num::integer(negate ? -1 : 1);
        return true;
    }

private:
    enum class Kind : std::uint8_t { Const, Linear, Computed };
    enum class Scale : std::uint8_t { None, Mul, FloorDiv, Mod };

    CHANFLOW_HOT Num linear(const Value& x) const {
        Num v = from_field_ ? field_num(x, field_) : to_num(x);
        if (scale_ == Scale::Mul)
            v = num_arith<BinOp::Mul>(v, k1_);
        else if (scale_ == Scale::FloorDiv)
            v = num_arith<BinOp::FloorDiv>(v, k1_);
        else if (scale_ == Scale::Mod)
            v = num_arith<BinOp::Mod>(v, k1_);
        if (add_) v = num_arith<BinOp::Add>(v, k2_);
        if (mask_ != 0) v = num_compare(mask_, v, k3_);
        return v;
    }

    Kind kind_ = Kind::Const;
    Scale scale_ = Scale::None;
    bool add_ = false;
    bool from_field_ = false;
    std::uint8_t mask_ = 0;     // the comparison stage, 0 when absent
    Num k1_ = Num::integer(0);  // the constant (Const) or the scale stage's operand
    Num k2_ = Num::integer(0);  // the add stage's operand
    Num k3_ = Num::integer(0);  // the comparison stage's operand
    std::string field_;
    std::unique_ptr<NumNode> node_;
};

template <BinOp Op>
class NumArith final : public NumNode {
public:
    NumArith(NumOperand a, NumOperand b) : a_(std::move(a)), b_(std::move(b)) {}
    Num eval(const Value& x) const override { return num_arith<Op>(a_.get(x), b_.get(x)); }

private:
    NumOperand a_, b_;
};

class NumCompare final : public NumNode {
public:
    NumCompare(std::uint8_t mask, NumOperand a, NumOperand b)
        : mask_(mask), a_(std::move(a)), b_(std::move(b)) {}
    Num eval(const Value& x) const override { return num_compare(mask_, a_.get(x), b_.get(x)); }

private:
    std::uint8_t mask_;
    NumOperand a_, b_;
};

/// `and` / `or`, returning an operand as Python does.
class NumLogic final : public NumNode {
public:
    NumLogic(bool is_and, NumOperand a, NumOperand b)
        : is_and_(is_and), a_(std::move(a)), b_(std::move(b)) {}
    Num eval(const Value& x) const override {
        const Num a = a_.get(x);
        if (!a.ok()) return a;
        return num_truthy(a) == is_and_ ? b_.get(x) : a;
    }

private:
    bool is_and_;
    NumOperand a_, b_;
};

class NumConditional final : public NumNode {
public:
    NumConditional(NumOperand cond, NumOperand then, NumOperand otherwise)
        : cond_(std::move(cond)), then_(std::move(then)), else_(std::move(otherwise)) {}
    Num eval(const Value& x) const override {
        const Num c = cond_.get(x);
        if (!c.ok()) return c;
        return num_truthy(c) ? then_.get(x) : else_.get(x);
    }

private:
    NumOperand cond_, then_, else_;
};

/// A one-argument function or a unary operator.
class NumCall final : public NumNode {
public:
    NumCall(NumFn fn, NumOperand a) : fn_(fn), a_(std::move(a)) {}
    Num eval(const Value& x) const override {
        const Num a = a_.get(x);
        return a.ok() ? fn_(a) : a;
    }

private:
    NumFn fn_;
    NumOperand a_;
};

template <BinOp Op>
NumOperand num_arith_operand(NumOperand a, NumOperand b) {
    NumOperand fused;
    if (NumOperand::fuse(Op, a, b, fused)) return fused;
    return NumOperand::computed(std::make_unique<NumArith<Op>>(std::move(a), std::move(b)));
}

inline NumOperand num_compare_operand(CmpOp op, NumOperand a, NumOperand b) {
    NumOperand fused;
    if (NumOperand::fuse(op, a, b, fused)) return fused;
    return NumOperand::computed(
        std::make_unique<NumCompare>(cmp_mask(op), std::move(a), std::move(b)));
}

}  // namespace chanflow::expr
