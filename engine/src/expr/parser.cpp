#include "expr/parser.hpp"

#include <string>
#include <utility>
#include <vector>

#include "expr/check.hpp"
#include "expr/lexer.hpp"

namespace chanflow::expr {
namespace {

std::vector<Ast> pair(Ast a, Ast b) {
    std::vector<Ast> v;
    v.reserve(2);
    v.push_back(std::move(a));
    v.push_back(std::move(b));
    return v;
}

Ast binary(BinOp op, Ast a, Ast b) {
    const std::size_t at = a.offset;
    Ast n = Ast::of(Ast::Kind::Binary, at, pair(std::move(a), std::move(b)));
    n.binary = op;
    return n;
}

Ast unary(UnOp op, std::size_t offset, Ast a) {
    std::vector<Ast> kids;
    kids.push_back(std::move(a));
    Ast n = Ast::of(Ast::Kind::Unary, offset, std::move(kids));
    n.unary = op;
    return n;
}

class Parser {
public:
    explicit Parser(std::string_view src) : toks_(tokenize(src)) {}

    Ast parse() {
        Ast e = expression();
        if (peek().kind != Tok::End) unexpected(peek());
        return e;
    }

private:
    // Recursion guard: every level of nesting passes through expression() or a unary
    // operator.
    struct Nest {
        explicit Nest(Parser& p) : p_(p) {
            if (++p_.depth_ > kMaxDepth)
                throw ExprSyntaxError("expression nested too deeply", p_.peek().pos);
        }
        ~Nest() { --p_.depth_; }
        Parser& p_;
    };
    // A left-associative chain (a + b + c ...) deepens the tree without recursing here;
    // each link counts as a level too, so that the tree's depth stays bounded.
    struct Links {
        explicit Links(Parser& p) : p_(p) {}
        void add() {
            ++n_;
            if (++p_.depth_ > kMaxDepth)
                throw ExprSyntaxError("expression nested too deeply", p_.peek().pos);
        }
        ~Links() { p_.depth_ -= n_; }
        Parser& p_;
        int n_ = 0;
    };

    const Token& peek(std::size_t ahead = 0) const {
        return toks_[std::min(i_ + ahead, toks_.size() - 1)];
    }
    const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }

    bool is_op(std::string_view op, std::size_t ahead = 0) const {
        const Token& t = peek(ahead);
        return t.kind == Tok::Op && t.text == op;
    }
    bool is_kw(std::string_view kw, std::size_t ahead = 0) const {
        const Token& t = peek(ahead);
        return t.kind == Tok::Name && t.text == kw;
    }
    bool accept_op(std::string_view op) {
        if (!is_op(op)) return false;
        ++i_;
        return true;
    }
    bool accept_kw(std::string_view kw) {
        if (!is_kw(kw)) return false;
        ++i_;
        return true;
    }

    [[noreturn]] void unexpected(const Token& t, std::string_view expected = {}) const {
        std::string what = t.kind == Tok::End ? std::string("unexpected end of expression")
                                              : "unexpected '" + std::string(t.text) + "'";
        if (!expected.empty()) what += " (expected '" + std::string(expected) + "')";
        throw ExprSyntaxError(what, t.pos);
    }
    void expect_op(std::string_view op) {
        if (!accept_op(op)) unexpected(peek(), op);
    }

    // expression := or_test ['if' or_test 'else' expression]
    Ast expression() {
        Nest nest(*this);
        Ast a = or_test();
        if (!accept_kw("if")) return a;
        Ast cond = or_test();
        if (!accept_kw("else")) unexpected(peek(), "else");
        Ast b = expression();
        const std::size_t at = a.offset;
        std::vector<Ast> kids;
        kids.reserve(3);
        kids.push_back(std::move(cond));
        kids.push_back(std::move(a));
        kids.push_back(std::move(b));
        return Ast::of(Ast::Kind::Conditional, at, std::move(kids));
    }

    Ast or_test() {
        Ast a = and_test();
        Links links(*this);
        while (accept_kw("or")) {
            links.add();
            const std::size_t at = a.offset;
            a = Ast::of(Ast::Kind::Or, at, pair(std::move(a), and_test()));
        }
        return a;
    }

    Ast and_test() {
        Ast a = not_test();
        Links links(*this);
        while (accept_kw("and")) {
            links.add();
            const std::size_t at = a.offset;
            a = Ast::of(Ast::Kind::And, at, pair(std::move(a), not_test()));
        }
        return a;
    }

    Ast not_test() {
        const std::size_t at = peek().pos;
        if (!accept_kw("not")) return comparison();
        Nest nest(*this);
        return unary(UnOp::Not, at, not_test());
    }

    // The comparison operator at the cursor, consuming it; false when there is none.
    bool comparison_op(Link& link) {
        static constexpr std::pair<std::string_view, CmpOp> ops[] = {
            {"<", CmpOp::Lt},  {"<=", CmpOp::Le}, {">", CmpOp::Gt},
            {">=", CmpOp::Ge}, {"==", CmpOp::Eq}, {"!=", CmpOp::Ne}};
        for (const auto& [text, o] : ops)
            if (accept_op(text)) {
                link = {Rel::Cmp, o};
                return true;
            }
        if (accept_kw("in")) {
            link = {Rel::In, CmpOp::Eq};
        } else if (is_kw("not") && is_kw("in", 1)) {
            i_ += 2;
            link = {Rel::NotIn, CmpOp::Eq};
        } else if (accept_kw("is")) {
            link = {accept_kw("not") ? Rel::IsNot : Rel::Is, CmpOp::Eq};
        } else {
            return false;
        }
        return true;
    }

    // comparison := arith (comp_op arith)*: a < b < c means a < b and b < c.
    Ast comparison() {
        Ast first = arith();
        Link link;
        if (!comparison_op(link)) return first;
        const std::size_t at = first.offset;
        std::vector<Ast> operands;
        operands.push_back(std::move(first));
        std::vector<Link> links;
        do {
            links.push_back(link);
            operands.push_back(arith());
        } while (comparison_op(link));
        Ast n = Ast::of(Ast::Kind::Compare, at, std::move(operands));
        n.links = std::move(links);
        return n;
    }

    Ast arith() {
        Ast a = term();
        Links links(*this);
        while (true) {
            BinOp op;
            if (accept_op("+"))
                op = BinOp::Add;
            else if (accept_op("-"))
                op = BinOp::Sub;
            else
                return a;
            links.add();
            a = binary(op, std::move(a), term());
        }
    }

    Ast term() {
        Ast a = factor();
        Links links(*this);
        while (true) {
            BinOp op;
            if (accept_op("*"))
                op = BinOp::Mul;
            else if (accept_op("/"))
                op = BinOp::Div;
            else if (accept_op("//"))
                op = BinOp::FloorDiv;
            else if (accept_op("%"))
                op = BinOp::Mod;
            else
                return a;
            links.add();
            a = binary(op, std::move(a), factor());
        }
    }

    // factor := ('-' | '+') factor | power. Unary minus binds looser than **: -2**2 == -4.
    Ast factor() {
        const std::size_t at = peek().pos;
        UnOp op;
        if (accept_op("-"))
            op = UnOp::Neg;
        else if (accept_op("+"))
            op = UnOp::Pos;
        else
            return power();
        Nest nest(*this);
        return unary(op, at, factor());
    }

    // power := postfix ['**' factor]: right-associative, and 2**-1 is allowed.
    Ast power() {
        Ast base = postfix(atom());
        if (!accept_op("**")) return base;
        Nest nest(*this);  // a ** b ** c recurses through factor()
        return binary(BinOp::Pow, std::move(base), factor());
    }

    Ast postfix(Ast a) {
        Links links(*this);
        while (true) {
            if (is_op(".") || is_op("[")) links.add();
            if (accept_op(".")) {
                const Token& t = next();
                if (t.kind != Tok::Name) unexpected(t);
                const std::size_t at = a.offset;
                std::vector<Ast> kids;
                kids.push_back(std::move(a));
                a = Ast::of(Ast::Kind::Field, at, std::move(kids));
                a.name = std::string(t.text);
            } else if (accept_op("[")) {
                a = subscript(std::move(a));
            } else {
                return a;
            }
        }
    }

    // After '[': an index or a slice [lo:hi], either bound optional.
    Ast subscript(Ast base) {
        const std::size_t at = base.offset;
        std::vector<Ast> kids;
        kids.reserve(3);
        kids.push_back(std::move(base));
        kids.push_back(is_op(":") ? Ast::constant(Value(), peek().pos) : expression());
        if (!accept_op(":")) {
            expect_op("]");
            return Ast::of(Ast::Kind::Index, at, std::move(kids));
        }
        kids.push_back(is_op("]") ? Ast::constant(Value(), peek().pos) : expression());
        expect_op("]");
        return Ast::of(Ast::Kind::Slice, at, std::move(kids));
    }

    // The items up to `close`, separated by commas, a trailing comma allowed; `item` parses
    // one item into kids.
    template <class Item>
    void items(std::string_view close, Item item) {
        while (!accept_op(close)) {
            item();
            if (!accept_op(",")) {
                expect_op(close);
                break;
            }
        }
    }

    Ast atom() {
        const Token& t = next();
        switch (t.kind) {
            case Tok::Int:
                return Ast::constant(Value(t.i), t.pos);
            case Tok::Float:
                return Ast::constant(Value(t.f), t.pos);
            case Tok::String:
                return Ast::constant(Value(t.str), t.pos);
            case Tok::Name:
                return name(t);
            case Tok::End:
                unexpected(t);
            case Tok::Op:
                break;
        }
        if (t.text == "(") {
            Ast e = expression();
            expect_op(")");
            return e;
        }
        if (t.text == "[") {
            Ast list = Ast::of(Ast::Kind::List, t.pos);
            items("]", [&] { list.kids.push_back(expression()); });
            return list;
        }
        if (t.text == "{") {
            Ast record = Ast::of(Ast::Kind::Record, t.pos);
            items("}", [&] {
                record.kids.push_back(expression());
                expect_op(":");
                record.kids.push_back(expression());
            });
            return record;
        }
        unexpected(t);
    }

    Ast name(const Token& t) {
        if (is_keyword(t.text)) unexpected(t);
        if (!is_op("(")) return resolve_name(t.text, t.pos);
        const Builtin& fn = resolve_function(t.text, t.pos);
        expect_op("(");
        Ast call = Ast::of(Ast::Kind::Call, t.pos);
        call.fn = &fn;
        items(")", [&] { call.kids.push_back(expression()); });
        check_arity(fn, call.kids.size(), t.pos);
        return call;
    }

    std::vector<Token> toks_;
    std::size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace

Ast parse(std::string_view source) {
    return Parser(source).parse();
}

}  // namespace chanflow::expr
