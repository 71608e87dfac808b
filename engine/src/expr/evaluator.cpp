#include "expr/evaluator.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "expr/values.hpp"

namespace chanflow::expr {
namespace {

template <BinOp Op>
class Arith final : public Node {
public:
    Arith(Operand a, Operand b) : a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value ta, tb;
        const Value& a = a_.get(x, ta);
        const Value& b = b_.get(x, tb);
        if (a.is_int() && b.is_int()) {
            const Num r = int_arith<Op>(a.as_int(), b.as_int());
            if (r.ok()) return to_value(r);
        }
        return binary(Op, a, b);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a, b;
        if (!a_.to_numeric(a) || !b_.to_numeric(b)) return false;
        out = num_arith_operand<Op>(std::move(a), std::move(b));
        return true;
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    Operand a_, b_;
};

class Compare final : public Node {
public:
    Compare(CmpOp op, Operand a, Operand b) : op_(op), a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value ta, tb;
        const Value& a = a_.get(x, ta);
        const Value& b = b_.get(x, tb);
        if (a.is_int() && b.is_int())
            return Value(mask_holds(cmp_mask(op_), three_way(a.as_int(), b.as_int())));
        return Value(compare(a, b, op_));
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a, b;
        if (!a_.to_numeric(a) || !b_.to_numeric(b)) return false;
        out = num_compare_operand(op_, std::move(a), std::move(b));
        return true;
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    CmpOp op_;
    Operand a_, b_;
};

/// `is` compares type and value: our values have no identity, and this keeps `x is None`
/// and `x is True` meaning what they mean in Python.
bool identical(const Value& a, const Value& b) {
    return a.type() == b.type() && py_equal(a, b);
}

bool relate(Rel rel, CmpOp op, const Value& a, const Value& b) {
    switch (rel) {
        case Rel::Cmp:
            return compare(a, b, op);
        case Rel::In:
            return contains(b, a);
        case Rel::NotIn:
            return !contains(b, a);
        case Rel::Is:
            return identical(a, b);
        case Rel::IsNot:
            return !identical(a, b);
    }
    return false;
}

/// `in`, `not in`, `is`, `is not`.
class Relation final : public Node {
public:
    Relation(Rel rel, Operand a, Operand b) : rel_(rel), a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value ta, tb;
        const Value& a = a_.get(x, ta);  // Python evaluates left to right
        return Value(relate(rel_, CmpOp::Eq, a, b_.get(x, tb)));
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    Rel rel_;
    Operand a_, b_;
};

/// a < b <= c ...: each middle operand evaluated once, stopping at the first false.
class Chain final : public Node {
public:
    Chain(std::vector<Operand> operands, std::vector<Link> links)
        : operands_(std::move(operands)), links_(std::move(links)) {}
    Value eval(const Value& x) const override {
        Value left = operands_[0].eval(x);
        for (std::size_t i = 0; i < links_.size(); ++i) {
            Value right = operands_[i + 1].eval(x);
            if (!relate(links_[i].rel, links_[i].op, left, right)) return Value(false);
            left = std::move(right);
        }
        return Value(true);
    }
    // Numbers are pure, so a < b < c may evaluate b twice: (a < b) and (b < c).
    bool to_numeric(NumOperand& out) const override {
        for (const Link& l : links_)
            if (l.rel != Rel::Cmp) return false;
        for (std::size_t i = 0; i < links_.size(); ++i) {
            NumOperand a, b;
            if (!operands_[i].to_numeric(a) || !operands_[i + 1].to_numeric(b)) return false;
            NumOperand link = num_compare_operand(links_[i].op, std::move(a), std::move(b));
            out = i == 0 ? std::move(link)
                         : NumOperand::computed(
                               std::make_unique<NumLogic>(true, std::move(out), std::move(link)));
        }
        return true;
    }
    void accelerate() override {
        for (Operand& o : operands_) o.accelerate();
    }

private:
    std::vector<Operand> operands_;
    std::vector<Link> links_;
};

class Logic final : public Node {
public:
    Logic(bool is_and, Operand a, Operand b)
        : is_and_(is_and), a_(std::move(a)), b_(std::move(b)) {}
    Value eval(const Value& x) const override {
        Value t;
        const Value& a = a_.get(x, t);
        return truthy(a) == is_and_ ? b_.eval(x) : a;
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a, b;
        if (!a_.to_numeric(a) || !b_.to_numeric(b)) return false;
        out = NumOperand::computed(std::make_unique<NumLogic>(is_and_, std::move(a), std::move(b)));
        return true;
    }
    void accelerate() override {
        a_.accelerate();
        b_.accelerate();
    }

private:
    bool is_and_;
    Operand a_, b_;
};

class Conditional final : public Node {
public:
    Conditional(Operand cond, Operand then, Operand otherwise)
        : cond_(std::move(cond)), then_(std::move(then)), else_(std::move(otherwise)) {}
    Value eval(const Value& x) const override {
        Value t;
        return truthy(cond_.get(x, t)) ? then_.eval(x) : else_.eval(x);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand c, a, b;
        if (!cond_.to_numeric(c) || !then_.to_numeric(a) || !else_.to_numeric(b)) return false;
        out = NumOperand::computed(
            std::make_unique<NumConditional>(std::move(c), std::move(a), std::move(b)));
        return true;
    }
    void accelerate() override {
        cond_.accelerate();
        then_.accelerate();
        else_.accelerate();
    }

private:
    Operand cond_, then_, else_;
};

class Unary final : public Node {
public:
    Unary(UnOp op, Operand a) : op_(op), a_(std::move(a)) {}
    Value eval(const Value& x) const override {
        Value t;
        const Value& a = a_.get(x, t);
        if (op_ == UnOp::Not) return Value(!truthy(a));
        const char sign = op_ == UnOp::Neg ? '-' : '+';
        if (!is_numeric(a))
            fail(std::string("bad operand type for unary ") + sign + ": " + tname(a));
        const Num r = op_ == UnOp::Neg ? num_neg(to_num(a)) : num_pos(to_num(a));
        if (!r.ok()) num_fail(r.err, sign + ('(' + json(a) + ')'));
        return to_value(r);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a;
        if (!a_.to_numeric(a)) return false;
        if (op_ != UnOp::Not && NumOperand::fuse_sign(op_ == UnOp::Neg, a)) {
            out = std::move(a);
            return true;
        }
        const NumFn fn = op_ == UnOp::Not ? num_not : op_ == UnOp::Neg ? num_neg : num_pos;
        out = NumOperand::computed(std::make_unique<NumCall>(fn, std::move(a)));
        return true;
    }
    void accelerate() override { a_.accelerate(); }

private:
    UnOp op_;
    Operand a_;
};

class Index final : public Node {
public:
    Index(Operand base, Operand index) : base_(std::move(base)), index_(std::move(index)) {}
    Value eval(const Value& x) const override {
        Value tb, ti;
        const Value& base = base_.get(x, tb);
        return index_of(base, index_.get(x, ti));
    }
    // x["name"] reads a field of x, like x.name.
    bool to_numeric(NumOperand& out) const override {
        if (!base_.is_message() || !index_.is_const() || !index_.value().is_string()) return false;
        out = NumOperand::field(std::string(index_.value().as_string()));
        return true;
    }
    void accelerate() override {
        base_.accelerate();
        index_.accelerate();
    }

private:
    Operand base_, index_;
};

class Slice final : public Node {
public:
    Slice(Operand base, Operand lo, Operand hi)
        : base_(std::move(base)), lo_(std::move(lo)), hi_(std::move(hi)) {}
    Value eval(const Value& x) const override {
        Value tb, tl, th;
        const Value& base = base_.get(x, tb);
        const Value& lo = lo_.get(x, tl);
        return slice_of(base, lo, hi_.get(x, th));
    }
    void accelerate() override {
        base_.accelerate();
        lo_.accelerate();
        hi_.accelerate();
    }

private:
    Operand base_, lo_, hi_;
};

class FieldAccess final : public Node {
public:
    FieldAccess(Operand base, std::string name) : base_(std::move(base)), name_(std::move(name)) {}
    Value eval(const Value& x) const override {
        Value t;
        const Value& base = base_.get(x, t);
        if (const Value* v = base.field(name_)) return *v;
        return field_of(base, name_);  // throws the right message
    }
    bool to_numeric(NumOperand& out) const override {
        if (!base_.is_message()) return false;
        out = NumOperand::field(name_);
        return true;
    }
    void accelerate() override { base_.accelerate(); }

private:
    Operand base_;
    std::string name_;
};

class ListLiteral final : public Node {
public:
    explicit ListLiteral(std::vector<Operand> items) : items_(std::move(items)) {}
    Value eval(const Value& x) const override {
        List out;
        out.reserve(items_.size());
        for (const Operand& o : items_) out.push_back(o.eval(x));
        return Value(std::move(out));
    }
    void accelerate() override {
        for (Operand& o : items_) o.accelerate();
    }

private:
    std::vector<Operand> items_;
};

class RecordLiteral final : public Node {
public:
    RecordLiteral(std::vector<Operand> keys, std::vector<Operand> values)
        : keys_(std::move(keys)), values_(std::move(values)) {}
    Value eval(const Value& x) const override {
        Record out;
        out.reserve(keys_.size());
        for (std::size_t i = 0; i < keys_.size(); ++i) {
            Value key = keys_[i].eval(x);
            if (!key.is_string()) fail(std::string("record keys must be str, not ") + tname(key));
            Value value = values_[i].eval(x);
            // A repeated key keeps its first place and its last value, as a Python dict.
            auto same = [&](const Field& f) { return f.first == key.as_string(); };
            if (auto it = std::find_if(out.begin(), out.end(), same); it != out.end())
                it->second = std::move(value);
            else
                out.emplace_back(key.as_string(), std::move(value));
        }
        return Value(std::move(out));
    }
    void accelerate() override {
        for (Operand& o : keys_) o.accelerate();
        for (Operand& o : values_) o.accelerate();
    }

private:
    std::vector<Operand> keys_, values_;
};

class Call final : public Node {
public:
    Call(const Builtin& fn, std::vector<Operand> args) : fn_(fn), args_(std::move(args)) {}
    Value eval(const Value& x) const override {
        const std::size_t n = args_.size();
        if (n <= 4) {  // the common case: no allocation for the argument array
            std::array<Value, 4> buf;
            for (std::size_t i = 0; i < n; ++i) buf[i] = args_[i].eval(x);
            return fn_.fn(buf.data(), n);
        }
        std::vector<Value> buf;
        buf.reserve(n);
        for (const Operand& a : args_) buf.push_back(a.eval(x));
        return fn_.fn(buf.data(), n);
    }
    bool to_numeric(NumOperand& out) const override {
        NumOperand a;
        if (!fn_.num || args_.size() != 1 || !args_[0].to_numeric(a)) return false;
        out = NumOperand::computed(std::make_unique<NumCall>(fn_.num, std::move(a)));
        return true;
    }
    void accelerate() override {
        for (Operand& o : args_) o.accelerate();
    }

private:
    const Builtin& fn_;
    std::vector<Operand> args_;
};

/// Wraps a node as an operand, folding it to a constant when it does not read x. A fold
/// that fails stays a node, so that `1 / 0` only fails (with its message) when evaluated.
Operand finish(std::unique_ptr<Node> node, bool foldable) {
    if (foldable) {
        try {
            EvaluationBudget budget;
            return Operand::constant(node->eval(Value()));
        } catch (const ExprError&) {
        } catch (const TypeError&) {
        } catch (const ValueError&) {
        }
    }
    return Operand::computed(std::move(node));
}

bool all_const(const std::vector<Operand>& v) {
    return std::all_of(v.begin(), v.end(), [](const Operand& o) { return o.is_const(); });
}

template <BinOp Op>
Operand make_arith_as(Operand a, Operand b) {
    const bool c = a.is_const() && b.is_const();
    return finish(std::make_unique<Arith<Op>>(std::move(a), std::move(b)), c);
}

Operand make_arith(BinOp op, Operand a, Operand b) {
    switch (op) {
        case BinOp::Add:
            return make_arith_as<BinOp::Add>(std::move(a), std::move(b));
        case BinOp::Sub:
            return make_arith_as<BinOp::Sub>(std::move(a), std::move(b));
        case BinOp::Mul:
            return make_arith_as<BinOp::Mul>(std::move(a), std::move(b));
        case BinOp::Div:
            return make_arith_as<BinOp::Div>(std::move(a), std::move(b));
        case BinOp::FloorDiv:
            return make_arith_as<BinOp::FloorDiv>(std::move(a), std::move(b));
        case BinOp::Mod:
            return make_arith_as<BinOp::Mod>(std::move(a), std::move(b));
        case BinOp::Pow:
            return make_arith_as<BinOp::Pow>(std::move(a), std::move(b));
    }
    return Operand();
}

Operand make_compare(CmpOp op, Operand a, Operand b) {
    const bool c = a.is_const() && b.is_const();
    return finish(std::make_unique<Compare>(op, std::move(a), std::move(b)), c);
}

Operand build(const Ast& a);

std::vector<Operand> build_all(const std::vector<Ast>& trees) {
    std::vector<Operand> out;
    out.reserve(trees.size());
    for (const Ast& t : trees) out.push_back(build(t));
    return out;
}

Operand build_compare(const Ast& a) {
    std::vector<Operand> operands = build_all(a.kids);
    if (a.links.size() > 1) {  // a < b < c: each middle operand evaluated once
        const bool c = all_const(operands);
        return finish(std::make_unique<Chain>(std::move(operands), a.links), c);
    }
    const Link link = a.links.front();
    if (link.rel == Rel::Cmp)
        return make_compare(link.op, std::move(operands[0]), std::move(operands[1]));
    const bool c = all_const(operands);
    return finish(
        std::make_unique<Relation>(link.rel, std::move(operands[0]), std::move(operands[1])), c);
}

/// `a and b`, `a or b`: a constant left side decides at once which operand is the value.
Operand build_logic(const Ast& a, bool is_and) {
    Operand left = build(a.kids[0]);
    Operand right = build(a.kids[1]);
    if (left.is_const()) return truthy(left.value()) == is_and ? std::move(right) : std::move(left);
    return Operand::computed(std::make_unique<Logic>(is_and, std::move(left), std::move(right)));
}

Operand build_record(const Ast& a) {
    std::vector<Operand> keys, values;
    for (std::size_t i = 0; i + 1 < a.kids.size(); i += 2) {
        keys.push_back(build(a.kids[i]));
        values.push_back(build(a.kids[i + 1]));
    }
    const bool c = all_const(keys) && all_const(values);
    return finish(std::make_unique<RecordLiteral>(std::move(keys), std::move(values)), c);
}

// Recursion follows the tree, whose depth the parser bounds (kMaxDepth).
Operand build(const Ast& a) {
    using K = Ast::Kind;
    switch (a.kind) {
        case K::Constant:
            return Operand::constant(a.value);
        case K::Message:
            return Operand::message();
        case K::Unary: {
            Operand o = build(a.kids[0]);
            const bool c = o.is_const();
            return finish(std::make_unique<Unary>(a.unary, std::move(o)), c);
        }
        case K::Binary:
            return make_arith(a.binary, build(a.kids[0]), build(a.kids[1]));
        case K::Compare:
            return build_compare(a);
        case K::And:
        case K::Or:
            return build_logic(a, a.kind == K::And);
        case K::Conditional: {
            Operand cond = build(a.kids[0]);
            Operand then = build(a.kids[1]);
            Operand otherwise = build(a.kids[2]);
            if (cond.is_const())
                return truthy(cond.value()) ? std::move(then) : std::move(otherwise);
            return Operand::computed(std::make_unique<Conditional>(std::move(cond), std::move(then),
                                                                   std::move(otherwise)));
        }
        case K::Index: {
            Operand base = build(a.kids[0]);
            Operand index = build(a.kids[1]);
            const bool c = base.is_const() && index.is_const();
            return finish(std::make_unique<Index>(std::move(base), std::move(index)), c);
        }
        case K::Slice: {
            std::vector<Operand> o = build_all(a.kids);
            const bool c = all_const(o);
            return finish(
                std::make_unique<Slice>(std::move(o[0]), std::move(o[1]), std::move(o[2])), c);
        }
        case K::Field: {
            Operand base = build(a.kids[0]);
            const bool c = base.is_const();
            return finish(std::make_unique<FieldAccess>(std::move(base), a.name), c);
        }
        case K::List: {
            std::vector<Operand> items = build_all(a.kids);
            const bool c = all_const(items);
            return finish(std::make_unique<ListLiteral>(std::move(items)), c);
        }
        case K::Record:
            return build_record(a);
        case K::Call: {
            std::vector<Operand> args = build_all(a.kids);
            const bool c = all_const(args);
            return finish(std::make_unique<Call>(*a.fn, std::move(args)), c);
        }
    }
    return Operand();
}

}  // namespace

Operand build_evaluator(const Ast& tree) {
    Operand root = build(tree);
    root.accelerate();
    return root;
}

}  // namespace chanflow::expr
