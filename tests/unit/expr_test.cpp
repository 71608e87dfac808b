// Expression language tests (docs/expressions.md): Python 3 semantics of every operator and
// function, the exact run-time and syntax error messages, and the numeric fast paths, which must
// give the same answers as the generic evaluator (a table generated with Python 3 checks both).
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "chanflow/expr.hpp"

using namespace chanflow;

namespace {

Value eval(std::string_view src, const Value& x = Value()) {
    return Expr::compile(src)(x);
}

/// A value's type and JSON form: "int 3", "float 3.0", "str \"a\"", "list [1, 2]".
std::string show(const Value& v) {
    std::string s = std::string(type_name(v.type())) + ' ';
    append_json(s, v);
    return s;
}

std::string ev(std::string_view src, const Value& x = Value()) {
    return show(eval(src, x));
}

/// The message of the ExprError that evaluating src throws, or "(no error)".
std::string error_of(std::string_view src, const Value& x = Value()) {
    try {
        eval(src, x);
    } catch (const ExprError& e) {
        return e.what();
    }
    return "(no error)";
}

struct SyntaxFailure {
    std::size_t offset;
    std::string message;
};

SyntaxFailure syntax_error(std::string_view src) {
    try {
        Expr::compile(src);
    } catch (const ExprSyntaxError& e) {
        return {e.offset(), e.what()};
    }
    return {std::string::npos, "(no error)"};
}

Value rec(std::initializer_list<Field> fields) {
    return Value(Record(fields));
}

}  // namespace

TEST_CASE("expr: int arithmetic stays int, / gives float") {
    CHECK(ev("x * 2 + 1", 20) == "int 41");
    CHECK(ev("7 + 2") == "int 9");
    CHECK(ev("7 - 9") == "int -2");
    CHECK(ev("7 * -3") == "int -21");
    CHECK(ev("7 // 2") == "int 3");
    CHECK(ev("7 % 4") == "int 3");
    CHECK(ev("2 ** 10") == "int 1024");
    CHECK(ev("6 / 3") == "float 2.0");
    CHECK(ev("1 / 4") == "float 0.25");
    CHECK(ev("x / 2", 7) == "float 3.5");
    CHECK(ev("1 + 2.0") == "float 3.0");
    CHECK(ev("2 * 0.5") == "float 1.0");
    CHECK(ev("(1 + 2) * 3") == "int 9");
    CHECK(ev("1 + 2 * 3") == "int 7");
    CHECK(ev("10 - 4 - 3") == "int 3");  // left-associative
    CHECK(ev("2 * 3 % 4") == "int 2");   // same precedence, left to right
    CHECK(ev("x - 1", 0.5) == "float -0.5");
    CHECK(ev("1e308 * 10") == "float Infinity");  // float overflow to inf is not an error
}

TEST_CASE("expr: // and % floor toward minus infinity, with Python's signs") {
    CHECK(ev("7 // 2") == "int 3");
    CHECK(ev("-7 // 2") == "int -4");
    CHECK(ev("7 // -2") == "int -4");
    CHECK(ev("-7 // -2") == "int 3");
    CHECK(ev("7 % 3") == "int 1");
    CHECK(ev("-7 % 3") == "int 2");
    CHECK(ev("7 % -3") == "int -2");
    CHECK(ev("-7 % -3") == "int -1");
    CHECK(ev("x % -1", Value(std::numeric_limits<std::int64_t>::min())) == "int 0");
    CHECK(ev("7.5 // 2") == "float 3.0");
    CHECK(ev("-7.5 // 2") == "float -4.0");
    CHECK(ev("7.5 % -2") == "float -0.5");
    CHECK(ev("-7.5 % 2") == "float 0.5");
    CHECK(ev("-0.0 % 3") == "float 0.0");
    CHECK(ev("0.0 % -3") == "float -0.0");
    CHECK(ev("-7 % 1e300") == "float 1e+300");
}

TEST_CASE("expr: ** binds tighter than unary minus and is right-associative") {
    CHECK(ev("-2 ** 2") == "int -4");
    CHECK(ev("(-2) ** 2") == "int 4");
    CHECK(ev("2 ** 3 ** 2") == "int 512");
    CHECK(ev("2 ** -1") == "float 0.5");
    CHECK(ev("x ** -2", 2) == "float 0.25");
    CHECK(ev("0 ** 0") == "int 1");
    CHECK(ev("(-2) ** 63") == "int -9223372036854775808");
    CHECK(ev("10 ** 18") == "int 1000000000000000000");
    CHECK(ev("4 ** 0.5") == "float 2.0");
    CHECK(ev("2.0 ** 3") == "float 8.0");
    CHECK(ev("-x ** 2", 3) == "int -9");
}

TEST_CASE("expr: int overflow is an error") {
    const Value max = Value(std::numeric_limits<std::int64_t>::max());
    const Value min = Value(std::numeric_limits<std::int64_t>::min());
    CHECK(error_of("x + 1", max) ==
          "integer overflow: 9223372036854775807 + 1 in 'x + 1' (x = 9223372036854775807)");
    CHECK(error_of("x - 1", min) ==
          "integer overflow: -9223372036854775808 - 1 in 'x - 1' (x = -9223372036854775808)");
    CHECK(error_of("x * 2 + 1", max) ==
          "integer overflow: 9223372036854775807 * 2 in "
          "'x * 2 + 1' (x = 9223372036854775807)");
    CHECK(error_of("10 ** x", 19) == "integer overflow: 10 ** 19 in '10 ** x' (x = 19)");
    CHECK(error_of("-x", min) ==
          "integer overflow: -(-9223372036854775808) in '-x' (x = -9223372036854775808)");
    CHECK(error_of("x // -1", min) ==
          "integer overflow: -9223372036854775808 // -1 in "
          "'x // -1' (x = -9223372036854775808)");
    CHECK(error_of("abs(x)", min) ==
          "integer overflow: abs(-9223372036854775808) in 'abs(x)' "
          "(x = -9223372036854775808)");
    // The largest and smallest ints themselves are fine.
    CHECK(ev("x - 1 + 1", max) == "int 9223372036854775807");
    CHECK(ev("-9223372036854775807 - 1") == "int -9223372036854775808");
}

TEST_CASE("expr: bool behaves as int in arithmetic and comparisons") {
    CHECK(ev("True + 1") == "int 2");
    CHECK(ev("true * 3") == "int 3");
    CHECK(ev("-True") == "int -1");
    CHECK(ev("+False") == "int 0");
    CHECK(ev("x + x", true) == "int 2");
    CHECK(ev("True / 2") == "float 0.5");
    CHECK(ev("True == 1") == "bool true");
    CHECK(ev("True == 1.0") == "bool true");
    CHECK(ev("False < True") == "bool true");
    CHECK(ev("[1, 2] * True") == "list [1, 2]");
}

TEST_CASE("expr: round is half to even") {
    CHECK(ev("round(2.5)") == "int 2");
    CHECK(ev("round(3.5)") == "int 4");
    CHECK(ev("round(-0.5)") == "int 0");
    CHECK(ev("round(0.5)") == "int 0");
    CHECK(ev("round(1.5)") == "int 2");
    CHECK(ev("round(-1.5)") == "int -2");
    CHECK(ev("round(-2.5)") == "int -2");
    CHECK(ev("round(2.4999)") == "int 2");
    CHECK(ev("round(7)") == "int 7");
    CHECK(ev("round(x)", 2.5) == "int 2");
    // With digits: a float stays a float, rounded in decimal as Python does.
    CHECK(ev("round(2.675, 2)") == "float 2.67");  // 2.675 is really 2.67499999...
    CHECK(ev("round(0.125, 2)") == "float 0.12");
    CHECK(ev("round(0.375, 2)") == "float 0.38");
    CHECK(ev("round(1.23456, 3)") == "float 1.235");
    CHECK(ev("round(2.5, 0)") == "float 2.0");
    CHECK(ev("round(1250.0, -2)") == "float 1200.0");
    CHECK(ev("round(1350.0, -2)") == "float 1400.0");
    CHECK(ev("round(1250.01, -2)") == "float 1300.0");
    CHECK(ev("round(-0.4, 0)") == "float -0.0");
    CHECK(ev("round(x, 1)", 0.05) == "float 0.1");  // 0.05 is really 0.05000000000000000277
    // An int with digits stays an int, as in Python.
    CHECK(ev("round(1250, -2)") == "int 1200");
    CHECK(ev("round(1350, -2)") == "int 1400");
    CHECK(ev("round(15, -1)") == "int 20");
    CHECK(ev("round(25, -1)") == "int 20");
    CHECK(ev("round(-25, -1)") == "int -20");
    CHECK(ev("round(42, 2)") == "int 42");
    CHECK(ev("round(x, -19)", 5000000000000000000) == "int 0");
}

TEST_CASE("expr: comparisons, chaining, in and is") {
    CHECK(ev("1 < 2") == "bool true");
    CHECK(ev("2 <= 2") == "bool true");
    CHECK(ev("2 > 3") == "bool false");
    CHECK(ev("3 >= 3.0") == "bool true");
    CHECK(ev("1 == 1.0") == "bool true");
    CHECK(ev("1 != 1.0") == "bool false");
    CHECK(ev("1 == \"1\"") == "bool false");  // == between types is false, not an error
    CHECK(ev("null == null") == "bool true");
    CHECK(ev("9007199254740993 > 9007199254740992.0") == "bool true");  // exact, as Python
    CHECK(ev("x < 1", std::nan("")) == "bool false");
    CHECK(ev("x == x", std::nan("")) == "bool false");
    CHECK(ev("x != x", std::nan("")) == "bool true");
    CHECK(ev("1 < x < 5", 3) == "bool true");
    CHECK(ev("1 < x < 5", 5) == "bool false");
    CHECK(ev("1 < x > 2", 3) == "bool true");
    CHECK(ev("0 <= x < 10 != x", 3) == "bool true");
    CHECK(ev("1 < x < 5", 0.5) == "bool false");
    CHECK(ev("\"abc\" < \"abd\"") == "bool true");
    CHECK(ev("\"ab\" < \"abc\"") == "bool true");
    CHECK(ev("\"b\" > \"abc\"") == "bool true");
    CHECK(ev("[1, 2] < [1, 3]") == "bool true");
    CHECK(ev("[1, 2] < [1, 2, 0]") == "bool true");
    CHECK(ev("[2] > [1, 5]") == "bool true");
    CHECK(ev("[1, [2, 3]] == [1.0, [2, 3.0]]") == "bool true");
    CHECK(ev("{\"a\": 1, \"b\": 2} == {\"b\": 2, \"a\": 1}") == "bool true");  // as Python dicts
    CHECK(ev("2 in [1, 2, 3]") == "bool true");
    CHECK(ev("2.0 in [1, 2, 3]") == "bool true");
    CHECK(ev("4 not in [1, 2, 3]") == "bool true");
    CHECK(ev("\"bc\" in \"abcd\"") == "bool true");
    CHECK(ev("\"a\" in x", rec({{"a", 1}})) == "bool true");
    CHECK(ev("\"b\" in x", rec({{"a", 1}})) == "bool false");
    CHECK(ev("x is None", Value()) == "bool true");
    CHECK(ev("x is not None", 0) == "bool true");
    CHECK(ev("x is True", 1) == "bool false");  // 1 == True, but 1 is not True
    CHECK(ev("x is True", true) == "bool true");
    CHECK(ev("1 in [1] in [[1]]") == "bool true");  // (1 in [1]) and ([1] in [[1]])
    CHECK(ev("1 in [1] in [[2]]") == "bool false");
    CHECK(ev("1 < 2 in [2]") == "bool true");
}

TEST_CASE("expr: and, or and not return what Python returns") {
    CHECK(ev("0 or \"a\"") == "str \"a\"");
    CHECK(ev("\"\" and 1") == "str \"\"");
    CHECK(ev("1 and []") == "list []");
    CHECK(ev("null or 0") == "int 0");
    CHECK(ev("x and 5", 0.0) == "float 0.0");
    CHECK(ev("x or 5", 2.5) == "float 2.5");
    CHECK(ev("x > 0 and x < 10", 5) == "bool true");
    CHECK(ev("x and \"yes\" or \"no\"", 0) == "str \"no\"");
    CHECK(ev("not x", Value::list({})) == "bool true");
    CHECK(ev("not 1 == 2") == "bool true");  // not binds looser than ==
    CHECK(ev("not not x", 3) == "bool true");
    // Short-circuit: the right side is not evaluated.
    CHECK(ev("x != 0 and 10 // x > 1", 0) == "bool false");
    CHECK(ev("x == 0 or 10 // x > 1", 0) == "bool true");
}

TEST_CASE("expr: conditional expression") {
    CHECK(ev("\"big\" if x > 10 else \"small\"", 11) == "str \"big\"");
    CHECK(ev("\"big\" if x > 10 else \"small\"", 1) == "str \"small\"");
    CHECK(ev("1 if x < 0 else 2 if x == 0 else 3", 0) == "int 2");  // right-associative
    CHECK(ev("1 if x < 0 else 2 if x == 0 else 3", 5) == "int 3");
    CHECK(ev("x if x > 0 else -x", -4) == "int 4");
    CHECK(ev("1 if x else 10 // x", 1) == "int 1");  // only the chosen branch runs
    CHECK(ev("[] if True else 1") == "list []");
}

TEST_CASE("expr: strings") {
    const Value s = Value("héllo");
    CHECK(ev("x[0]", s) == "str \"h\"");
    CHECK(ev("x[1]", s) == "str \"é\"");  // code points, as Python
    CHECK(ev("x[-1]", s) == "str \"o\"");
    CHECK(ev("x[-5]", s) == "str \"h\"");
    CHECK(ev("len(x)", s) == "int 5");
    CHECK(ev("x[1:3]", s) == "str \"él\"");
    CHECK(ev("x[:2]", s) == "str \"hé\"");
    CHECK(ev("x[-2:]", s) == "str \"lo\"");
    CHECK(ev("x[3:1]", s) == "str \"\"");
    CHECK(ev("x[-100:100]", s) == "str \"héllo\"");
    CHECK(ev("\"ab\" + \"cd\"") == "str \"abcd\"");
    CHECK(ev("\"ab\" * 3") == "str \"ababab\"");
    CHECK(ev("2 * \"ab\"") == "str \"abab\"");
    CHECK(ev("\"ab\" * 0") == "str \"\"");
    CHECK(ev("\"ab\" * -1") == "str \"\"");
    CHECK(ev("x + \"!\"", "hi") == "str \"hi!\"");
    CHECK(ev("x * 2 + 1", 3) == "int 7");
    CHECK(ev("x * 2", "ab") == "str \"abab\"");  // the numeric fast path declines strings
}

TEST_CASE("expr: literals") {
    CHECK(ev("42") == "int 42");
    CHECK(ev("1_000_000") == "int 1000000");
    CHECK(ev("9223372036854775807") == "int 9223372036854775807");
    CHECK(ev("2.5") == "float 2.5");
    CHECK(ev("1e5") == "float 100000.0");
    CHECK(ev("1E-3") == "float 0.001");
    CHECK(ev(".5") == "float 0.5");
    CHECK(ev("1.") == "float 1.0");
    CHECK(ev("1.e3") == "float 1000.0");
    CHECK(ev("1e999") == "float Infinity");
    CHECK(ev("1e-999") == "float 0.0");
    CHECK(ev("0.5e-400") == "float 0.0");
    CHECK(ev("\"double\"") == "str \"double\"");
    CHECK(ev("'single'") == "str \"single\"");
    CHECK(ev("'it\\'s'") == "str \"it's\"");
    CHECK(ev("\"say \\\"hi\\\"\"") == "str \"say \\\"hi\\\"\"");
    CHECK(ev("\"a\\tb\\nc\\\\\"") == "str \"a\\tb\\nc\\\\\"");
    CHECK(ev("\"\\x41\\u00e9\\U0001F600\\101\"") == "str \"Aé😀A\"");
    CHECK(ev("\"\\d\"") == "str \"\\\\d\"");  // an unknown escape keeps its backslash
    CHECK(ev("true") == "bool true");
    CHECK(ev("False") == "bool false");
    CHECK(ev("null") == "null null");
    CHECK(ev("None") == "null null");
    CHECK(ev("[1, 'a', [2.5], {}]") == "list [1, \"a\", [2.5], {}]");
    CHECK(ev("[1, 2,]") == "list [1, 2]");
    CHECK(ev("{\"k\": x, 'n': [x, 1], }", 7) == "record {\"k\": 7, \"n\": [7, 1]}");
    CHECK(ev("{\"a\": 1, \"b\": 2, \"a\": 3}") == "record {\"a\": 3, \"b\": 2}");
    CHECK(ev("{\"a\" + str(x): x * 2}", 1) == "record {\"a1\": 2}");
    CHECK(ev("  x\n  +\t1  ", 1) == "int 2");  // any whitespace, as in a YAML block
}

TEST_CASE("expr: lists and records") {
    const Value l = Value::list({10, 20, 30});
    CHECK(ev("x[0]", l) == "int 10");
    CHECK(ev("x[-1]", l) == "int 30");
    CHECK(ev("x[True]", l) == "int 20");
    CHECK(ev("x[1:]", l) == "list [20, 30]");
    CHECK(ev("x + [40]", l) == "list [10, 20, 30, 40]");
    CHECK(ev("[0] * 3") == "list [0, 0, 0]");
    CHECK(ev("len(x)", l) == "int 3");
    const Value r = rec({{"name", "ann"},
                         {"age", 41},
                         {"tags", Value::list({"a", "b"})},
                         {"pos", rec({{"x", 1.5}})}});
    CHECK(ev("x.name", r) == "str \"ann\"");
    CHECK(ev("x[\"age\"] + 1", r) == "int 42");
    CHECK(ev("x.age * 2 + 1", r) == "int 83");
    CHECK(ev("x.age >= 18", r) == "bool true");
    CHECK(ev("x.tags[-1]", r) == "str \"b\"");
    CHECK(ev("x.pos.x * 2", r) == "float 3.0");
    CHECK(ev("x.if", rec({{"if", 1}})) == "int 1");  // any name after the dot
    CHECK(ev("len(x)", r) == "int 4");
    CHECK(ev("{\"n\": x.name, \"next\": x.age + 1}", r) == "record {\"n\": \"ann\", \"next\": 42}");
    CHECK(ev("[x, x * 2]", 3) == "list [3, 6]");
}

TEST_CASE("expr: bytes and tensors") {
    const Value b = Value::bytes({0x01, 0xff});
    CHECK(ev("x[1]", b) == "int 255");
    CHECK(ev("x[-2]", b) == "int 1");
    CHECK(ev("len(x)", b) == "int 2");
    CHECK(ev("x + x", b) == "bytes \"01ff01ff\"");
    CHECK(ev("x[1:]", b) == "bytes \"ff\"");
    Tensor t;
    t.dtype = DType::I32;
    t.shape = {2, 3};
    for (std::int32_t i = 0; i < 6; ++i) {
        const auto* p = reinterpret_cast<const unsigned char*>(&i);
        t.data.insert(t.data.end(), p, p + 4);
    }
    const Value tv = Value(t);
    CHECK(ev("len(x)", tv) == "int 2");
    CHECK(ev("x[1][2]", tv) == "int 5");
    CHECK(ev("x[-1][0] * 2", tv) == "int 6");
    CHECK(to_printed(eval("x[1]", tv)) == "[3, 4, 5]");
    CHECK(error_of("x[2]", tv) == "index 2 out of range in 'x[2]' (x = [[0, 1, 2], [3, 4, 5]])");
}

TEST_CASE("expr: every function") {
    CHECK(ev("abs(-3)") == "int 3");
    CHECK(ev("abs(-2.5)") == "float 2.5");
    CHECK(ev("abs(True)") == "int 1");
    CHECK(ev("min(3, 1, 2)") == "int 1");
    CHECK(ev("max(3, 1, 2)") == "int 3");
    CHECK(ev("max([1, 5, 2])") == "int 5");
    CHECK(ev("min([\"b\", \"a\"])") == "str \"a\"");
    CHECK(ev("max(1, 1.0)") == "int 1");  // the first of equals, as Python
    CHECK(ev("min(x, 0)", -2.5) == "float -2.5");
    CHECK(ev("sqrt(16)") == "float 4.0");
    CHECK(ev("sqrt(2.25)") == "float 1.5");
    CHECK(eval("exp(1)").as_float() == doctest::Approx(2.718281828459045));
    CHECK(ev("exp(0)") == "float 1.0");
    CHECK(eval("log(10)").as_float() == doctest::Approx(2.302585092994046));
    CHECK(ev("log(1)") == "float 0.0");
    CHECK(eval("log(8, 2)").as_float() == doctest::Approx(3.0));
    CHECK(eval("sin(1)").as_float() == doctest::Approx(0.8414709848078965));
    CHECK(ev("sin(0)") == "float 0.0");
    CHECK(eval("cos(1)").as_float() == doctest::Approx(0.5403023058681398));
    CHECK(ev("cos(0)") == "float 1.0");
    CHECK(ev("floor(2.7)") == "int 2");
    CHECK(ev("floor(-2.5)") == "int -3");
    CHECK(ev("floor(5)") == "int 5");
    CHECK(ev("ceil(2.1)") == "int 3");
    CHECK(ev("ceil(-2.5)") == "int -2");
    CHECK(ev("int(3.9)") == "int 3");
    CHECK(ev("int(-3.9)") == "int -3");
    CHECK(ev("int(\"42\")") == "int 42");
    CHECK(ev("int(\" -1_000 \")") == "int -1000");
    CHECK(ev("int(\"-9223372036854775808\")") == "int -9223372036854775808");
    CHECK(ev("int(True)") == "int 1");
    CHECK(ev("float(\"1.5\")") == "float 1.5");
    CHECK(ev("float(\" -2e3 \")") == "float -2000.0");
    CHECK(ev("float(\"inf\")") == "float Infinity");
    CHECK(ev("float(\"-nan\")") == "float NaN");
    CHECK(ev("float(\"1e999\")") == "float Infinity");
    CHECK(ev("float(\"-1e999\")") == "float -Infinity");
    CHECK(ev("float(\"1e-400\")") == "float 0.0");
    CHECK(ev("float(\"1e-320\")") == "float 1e-320");  // subnormal, not zero
    CHECK(ev("float(3)") == "float 3.0");
    CHECK(ev("str(x)", 42) == "str \"42\"");
    CHECK(ev("str(x)", 0.1) == "str \"0.1\"");
    CHECK(ev("str(x)", 1e16) == "str \"1e+16\"");
    CHECK(ev("str(x)", true) == "str \"true\"");
    CHECK(ev("str(x)", Value()) == "str \"null\"");
    CHECK(ev("str(x)", "raw") == "str \"raw\"");
    CHECK(ev("str(x)", Value::list({"the", 42})) == "str \"[\\\"the\\\", 42]\"");
    CHECK(ev("len(\"\")") == "int 0");
    CHECK(ev("len({\"a\": 1})") == "int 1");
    CHECK(ev("lower(\"AbC É\")") == "str \"abc É\"");  // ASCII letters only
    CHECK(ev("upper(\"aBc\")") == "str \"ABC\"");
    CHECK(ev("strip(\" \\t a b \\n\")") == "str \"a b\"");
    CHECK(ev("strip(\"xxaxx\", \"x\")") == "str \"a\"");
    CHECK(ev("split(\"  a b\\tc  \")") == "list [\"a\", \"b\", \"c\"]");
    CHECK(ev("split(\"\")") == "list []");
    CHECK(ev("split(\"a,b,,c\", \",\")") == "list [\"a\", \"b\", \"\", \"c\"]");
    CHECK(ev("split(\"a::b\", \"::\")") == "list [\"a\", \"b\"]");
    CHECK(ev("split(\"\", \",\")") == "list [\"\"]");
    CHECK(eval("hash(x)", "k").as_int() == static_cast<std::int64_t>(stable_hash(Value("k"))));
    CHECK(ev("hash(1) == hash(1.0)") == "bool true");
    CHECK(ev("hash(x) % 4 >= 0", "key") == "bool true");
    CHECK(ev("bool(0)") == "bool false");
    CHECK(ev("bool(\"a\")") == "bool true");
    CHECK(ev("sum([1, 2, 3])") == "int 6");
    CHECK(ev("sum([1, 2.5], 10)") == "float 13.5");
}

TEST_CASE("expr: truthiness follows Python") {
    CHECK_FALSE(truthy(Value()));
    CHECK_FALSE(truthy(Value(false)));
    CHECK_FALSE(truthy(Value(0)));
    CHECK_FALSE(truthy(Value(0.0)));
    CHECK_FALSE(truthy(Value(-0.0)));
    CHECK_FALSE(truthy(Value("")));
    CHECK_FALSE(truthy(Value::bytes({})));
    CHECK_FALSE(truthy(Value(List{})));
    CHECK_FALSE(truthy(Value(Record{})));
    CHECK(truthy(Value(true)));
    CHECK(truthy(Value(-1)));
    CHECK(truthy(Value(0.1)));
    CHECK(truthy(Value(std::nan(""))));
    CHECK(truthy(Value("0")));
    CHECK(truthy(Value::bytes({0})));
    CHECK(truthy(Value::list({Value()})));
    CHECK(truthy(rec({{"a", Value()}})));
}

TEST_CASE("expr: less_than orders as Python does") {
    CHECK(less_than(Value(1), Value(2)));
    CHECK(less_than(Value(1), Value(1.5)));
    CHECK_FALSE(less_than(Value(2.0), Value(2)));
    CHECK(less_than(Value(false), Value(1)));
    CHECK(less_than(Value("a"), Value("b")));
    CHECK(less_than(Value::list({1, 2}), Value::list({1, 2, 0})));
    CHECK_FALSE(less_than(Value(std::nan("")), Value(1)));
    CHECK_THROWS_WITH_AS(less_than(Value("a"), Value(1)), "cannot order str and int", ExprError);
    CHECK_THROWS_AS(less_than(Value(), Value()), ExprError);
    CHECK_THROWS_AS(less_than(rec({}), rec({})), ExprError);
}

TEST_CASE("expr: run-time error messages name the expression and x") {
    CHECK(error_of("x / 0", 5) == "division by zero in 'x / 0' (x = 5)");
    CHECK(error_of("x // 0", 5) == "division by zero in 'x // 0' (x = 5)");
    CHECK(error_of("x % 0", 5) == "modulo by zero in 'x % 0' (x = 5)");
    CHECK(error_of("x / 0.0", 5) == "division by zero in 'x / 0.0' (x = 5)");
    CHECK(error_of("1 / 0") == "division by zero in '1 / 0' (x = null)");
    CHECK(error_of("sqrt(x)", -1) == "math domain error: sqrt(-1) in 'sqrt(x)' (x = -1)");
    CHECK(error_of("log(x)", 0) == "math domain error: log(0) in 'log(x)' (x = 0)");
    CHECK(error_of("log(x, 1)", 8) == "division by zero: log(8, 1) in 'log(x, 1)' (x = 8)");
    CHECK(error_of("exp(x)", 1000) == "math range error: exp(1000) in 'exp(x)' (x = 1000)");
    CHECK(error_of("sin(x)", INFINITY) ==
          "math domain error: sin(Infinity) in 'sin(x)' (x = Infinity)");
    CHECK(error_of("x.foo", rec({{"a", 1}})) == "no field 'foo' in 'x.foo' (x = {\"a\": 1})");
    CHECK(error_of("x[\"foo\"]", rec({{"a", 1}})) ==
          "no field 'foo' in 'x[\"foo\"]' (x = {\"a\": 1})");
    CHECK(error_of("x.foo", 5) == "int has no field 'foo' in 'x.foo' (x = 5)");
    CHECK(error_of("x[5]", Value::list({1, 2})) == "index 5 out of range in 'x[5]' (x = [1, 2])");
    CHECK(error_of("x[-3]", Value::list({1, 2})) ==
          "index -3 out of range in 'x[-3]' (x = [1, 2])");
    CHECK(error_of("x[3]", "abc") == "index 3 out of range in 'x[3]' (x = \"abc\")");
    CHECK(error_of("x[0]", 5) == "cannot index int in 'x[0]' (x = 5)");
    CHECK(error_of("x[\"a\"]", Value::list({1})) ==
          "list indices must be int, not str in 'x[\"a\"]' (x = [1])");
    CHECK(error_of("x[0]", rec({{"a", 1}})) ==
          "record keys must be str, not int in 'x[0]' (x = {\"a\": 1})");
    CHECK(error_of("x < 1", "a") == "cannot order str and int in 'x < 1' (x = \"a\")");
    CHECK(error_of("x > null", 1) == "cannot order int and null in 'x > null' (x = 1)");
    CHECK(error_of("[1, x] < [1, 2]", "a") ==
          "cannot order str and int in '[1, x] < [1, 2]' (x = \"a\")");
    CHECK(error_of("x + 1", "a") ==
          "unsupported operand types for +: str and int in 'x + 1' (x = \"a\")");
    CHECK(error_of("x - x", Value::list({})) ==
          "unsupported operand types for -: list and list in 'x - x' (x = [])");
    CHECK(error_of("-x", "a") == "bad operand type for unary -: str in '-x' (x = \"a\")");
    CHECK(error_of("sqrt(x)", "a") ==
          "sqrt() argument must be a number, not str in 'sqrt(x)' (x = \"a\")");
    CHECK(error_of("lower(x)", 1) == "lower() argument must be str, not int in 'lower(x)' (x = 1)");
    CHECK(error_of("len(x)", 5) == "object of type int has no len() in 'len(x)' (x = 5)");
    CHECK(error_of("int(x)", "4.2") ==
          "invalid literal for int(): \"4.2\" in 'int(x)' (x = \"4.2\")");
    CHECK(error_of("int(x)", "99999999999999999999") ==
          "integer overflow: int(\"99999999999999999999\") in 'int(x)' "
          "(x = \"99999999999999999999\")");
    CHECK(error_of("float(x)", "abc") ==
          "could not convert string to float: \"abc\" in 'float(x)' (x = \"abc\")");
    CHECK(error_of("int(x)", Value()) ==
          "int() argument must be a str or a number, not null in 'int(x)' (x = null)");
    CHECK(error_of("int(x)", std::nan("")) ==
          "cannot convert float NaN to integer in 'int(x)' (x = NaN)");
    CHECK(error_of("floor(x)", INFINITY) ==
          "cannot convert float infinity to integer in 'floor(x)' (x = Infinity)");
    CHECK(error_of("round(x)", 1e300) ==
          "integer overflow: round(1e+300) in 'round(x)' (x = 1e+300)");
    CHECK(error_of("round(x, 0.5)", 1) ==
          "round() ndigits must be int, not float in 'round(x, 0.5)' (x = 1)");
    CHECK(error_of("x ** -1", 0) ==
          "0.0 cannot be raised to a negative power in 'x ** -1' (x = 0)");
    CHECK(error_of("x ** 0.5", -1) ==
          "negative number cannot be raised to a fractional power in 'x ** 0.5' (x = -1)");
    CHECK(error_of("x ** 400", 10.0) == "float overflow: 10.0 ** 400 in 'x ** 400' (x = 10.0)");
    CHECK(error_of("min(x)", Value(List{})) == "min() arg is an empty list in 'min(x)' (x = [])");
    CHECK(error_of("max(x)", 5) == "max() argument must be a list, not int in 'max(x)' (x = 5)");
    CHECK(error_of("split(x, \"\")", "a b") ==
          "split() separator is empty in 'split(x, \"\")' (x = \"a b\")");
    CHECK(error_of("1 in x", 5) == "cannot test membership in int in '1 in x' (x = 5)");
    CHECK(error_of("1 in x", "abc") ==
          "'in <str>' needs a str on the left, not int in '1 in x' (x = \"abc\")");
    CHECK(error_of("x * 1000000000000", "ab") ==
          "repeated sequence too large (one evaluation makes at most 256 MiB with * and +) in 'x * "
          "1000000000000' (x = \"ab\")");
    CHECK(error_of("{x: 1}", 2) == "record keys must be str, not int in '{x: 1}' (x = 2)");
    CHECK(error_of("x[1:2]", 3) == "cannot slice int in 'x[1:2]' (x = 3)");
    // A huge x is cut short in the message.
    List big(1000, Value(123456));
    const std::string msg = error_of("x.a", Value(big));
    CHECK(msg.rfind("list has no field 'a' in 'x.a' (x = [123456, 123456, ", 0) == 0);
    CHECK(msg.size() < 400);
    CHECK(msg.substr(msg.size() - 4) == "...)");
    // Errors are ExprErrors, so a node can catch them as such.
    CHECK_THROWS_AS(eval("x / 0", 1), ExprError);
}

TEST_CASE("expr: constant parts are folded, but their errors wait for evaluation") {
    Expr e = Expr::compile("x if x else 1 / 0");  // compiling does not fail
    CHECK(show(e(Value(3))) == "int 3");
    CHECK_THROWS_WITH_AS(e(Value(0)), "division by zero in 'x if x else 1 / 0' (x = 0)", ExprError);
    CHECK(ev("2 ** 10 * x + len(\"abc\")", 1) == "int 1027");
}

TEST_CASE("expr: syntax errors carry the offset of the offending character") {
    struct Case {
        const char* src;
        std::size_t offset;
        const char* message;
    };
    const Case cases[] = {
        {"x + * 2", 4, "unexpected '*'"},
        {"\"abc", 0, "unterminated string"},
        {"x + 'abc", 4, "unterminated string"},
        {"'a\nb'", 0, "unterminated string"},
        {"x +", 3, "unexpected end of expression"},
        {"", 0, "unexpected end of expression"},
        {"   ", 3, "unexpected end of expression"},
        {"sqr(x)", 0, "unknown function 'sqr' (did you mean 'sqrt'?)"},
        {"x + lenn(x)", 4, "unknown function 'lenn' (did you mean 'len'?)"},
        {"frobnicate(x)", 0, "unknown function 'frobnicate'"},
        {"x(1)", 0, "unknown function 'x'"},
        {"1 + y", 4, "unknown name 'y'"},
        {"ture", 0, "unknown name 'ture' (did you mean 'true'?)"},
        {"len", 0, "function 'len' must be called"},
        {"sqrt(1, 2)", 0, "function 'sqrt' takes 1 argument"},
        {"x + round()", 4, "function 'round' takes 1 or 2 arguments"},
        {"min()", 0, "function 'min' takes at least 1 argument"},
        {"(x + 1", 6, "unexpected end of expression (expected ')')"},
        {"[1, 2", 5, "unexpected end of expression (expected ']')"},
        {"{\"a\" 1}", 5, "unexpected '1' (expected ':')"},
        {"x if x", 6, "unexpected end of expression (expected 'else')"},
        {"x 2", 2, "unexpected '2'"},
        {"x + if", 4, "unexpected 'if'"},
        {"x.", 2, "unexpected end of expression"},
        {"x.1", 1, "unexpected '.1'"},
        {"()", 1, "unexpected ')'"},
        {"x = 1", 2, "unexpected '=' (did you mean '=='?)"},
        {"x ! 1", 2, "unexpected '!' (use 'not')"},
        {"x && 1", 2, "unexpected '&' (use 'and')"},
        {"x || 1", 2, "unexpected '|' (use 'or')"},
        {"x $ 1", 2, "unexpected '$'"},
        {"x + é", 4, "unexpected 'é'"},
        {"1 +\n  * 2", 6, "unexpected '*'"},
        {"99999999999999999999", 0, "integer literal too large"},
        {"'\\x4'", 1, "invalid \\x escape"},
        {"'\\U00110000'", 1, "invalid \\U escape"},
    };
    for (const Case& c : cases) {
        const std::string src = c.src;
        CAPTURE(src);
        const SyntaxFailure f = syntax_error(c.src);
        CHECK(f.offset == c.offset);
        CHECK(f.message == std::string(c.message));
    }
}

TEST_CASE("expr: nesting is bounded") {
    CHECK(ev(std::string(100, '(') + "x" + std::string(100, ')'), 1) == "int 1");
    CHECK(ev(std::string(100, '-') + "x", 1) == "int 1");
    CHECK(syntax_error(std::string(1000, '(') + "x" + std::string(1000, ')')).message ==
          "expression nested too deeply");
    std::string sum = "x";
    for (int i = 0; i < 1000; ++i) sum += " + x";
    CHECK(syntax_error(sum).message == "expression nested too deeply");
    // ** is right-associative: each link recurses, so each counts.
    std::string power = "1";
    for (int i = 0; i < 10000; ++i) power += "**1";
    CHECK(syntax_error(power).message == "expression nested too deeply");
    CHECK(ev("2**2**2") == "int 16");
}

TEST_CASE("expr: the deepest expression of each shape the parser accepts compiles and runs") {
    // Every walk over the tree (building the evaluator, evaluating, freeing) recurses as deep
    // as the tree: at the parser's limit each of them must still be safe.
    struct Shape {
        std::string open, close;
        std::string value;  // of the expression at any depth, for x = 1
    };
    const Shape shapes[] = {{"(", ")", "int 1"},
                            {"-(-(", "))", "int 1"},
                            {"abs(", ")", "int 1"},
                            {"(x and ", ")", "int 1"},
                            {"(0 if x == 0 else ", ")", "int 1"},
                            {"{'k': ", "}['k']", "int 1"},
                            {"[", "][0]", "int 1"},
                            {"(x + ", " - x)", "int 1"}};
    for (const Shape& s : shapes) {
        CAPTURE(s.open);
        std::string accepted;
        for (int depth = 1;; ++depth) {
            std::string src = "x";
            for (int i = 0; i < depth; ++i) src = s.open + src + s.close;
            try {
                Expr::compile(src);
            } catch (const ExprSyntaxError& e) {
                CHECK(std::string(e.what()) == "expression nested too deeply");
                break;
            }
            accepted = std::move(src);
        }
        REQUIRE_FALSE(accepted.empty());
        CHECK(ev(accepted, 1) == s.value);
    }
}

TEST_CASE("expr: values nested too deep, huge sequences and huge exponents fail cleanly") {
    // A list nested past Value::kMaxNesting fails where it is made, naming the expression.
    std::string deep = "x";
    for (int i = 0; i < 70; ++i) deep = "[" + deep + "]";
    CHECK(error_of(deep, 1).rfind("a list or record nested deeper than 64 levels in '[[[", 0) == 0);
    // Sizes are capped in bytes: a list element takes 16.
    CHECK(error_of("[x] * 2**25", 1) ==
          "repeated sequence too large (one evaluation makes at most 256 MiB with * and +) in "
          "'[x] * 2**25' (x = 1)");
    // ... in all, however often the expression repeats itself.
    CHECK(error_of("[x * 2**27, x * 2**27, x * 2**27]", "a")
              .rfind("repeated sequence too large (one evaluation makes at most 256 MiB", 0) == 0);
    CHECK(ev("len(x * 2**27)", "a") == "int 134217728");  // each evaluation starts afresh
    CHECK(ev("len(x * 2**27)", "a") == "int 134217728");
    CHECK(ev("len([x] * 2**20)", 1) == "int 1048576");
    CHECK(ev("len(x * 2**20)", "ab") == "int 2097152");
    CHECK(error_of("x + x", Value(std::string((std::size_t{1} << 27) + 1, 'a')))
              .rfind("joined sequence too large (one evaluation makes at most 256 MiB", 0) == 0);
    // Exponents past any double overflow to inf (or underflow to 0.0), as Python's.
    CHECK(ev("911e9223372036854775807") == "float Infinity");
    CHECK(ev("-911e9223372036854775807") == "float -Infinity");
    CHECK(ev("911e-9223372036854775808") == "float 0.0");
    CHECK(ev("float('911e9223372036854775807')") == "float Infinity");
    CHECK(ev("float('1e99999999999999999999999')") == "float Infinity");
    // round() to a negative number of digits near the ends of the int range.
    CHECK(error_of("round(x, -5)", Value(std::numeric_limits<std::int64_t>::min())) ==
          "integer overflow: round(-9223372036854775808, -5) in 'round(x, -5)' "
          "(x = -9223372036854775808)");
    CHECK(ev("round(x, -5)", Value(std::numeric_limits<std::int64_t>::min() + 50000)) ==
          "int -9223372036854700000");
    CHECK(error_of("round(x, -3)", Value(std::numeric_limits<std::int64_t>::max())) ==
          "integer overflow: round(9223372036854775807, -3) in 'round(x, -3)' "
          "(x = 9223372036854775807)");
}

TEST_CASE("expr: variadic functions take any number of arguments") {
    std::string args = "1";
    for (int i = 2; i <= 300; ++i) args += ", " + std::to_string(i);
    CHECK(ev("max(" + args + ")") == "int 300");
    CHECK(ev("min(" + args + ", x)", -1) == "int -1");
    CHECK(syntax_error("max()").message == "function 'max' takes at least 1 argument");
}

TEST_CASE("expr: an Expr is a cheap, shareable, thread-safe value") {
    Expr empty;
    CHECK_FALSE(empty);
    CHECK(empty.source().empty());
    CHECK_THROWS_WITH_AS(empty(Value(1)), "evaluating an empty expression", ExprError);

    const Expr e = Expr::compile("x.n * 2 + 1 if x.n % 2 == 0 else str(x.n)");
    const Expr copy = e;  // shares the compiled program
    CHECK(copy);
    CHECK(copy.source() == "x.n * 2 + 1 if x.n % 2 == 0 else str(x.n)");
    std::vector<std::thread> threads;
    std::vector<int> bad(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (std::int64_t i = 0; i < 20000; ++i) {
                const Value r = copy(rec({{"n", i}}));
                const bool ok = i % 2 == 0 ? r.is_int() && r.as_int() == 2 * i + 1
                                           : r.is_string() && r.as_string() == std::to_string(i);
                bad[static_cast<std::size_t>(t)] += !ok;
            }
        });
    for (auto& th : threads) th.join();
    CHECK(bad == std::vector<int>(4, 0));
}

namespace {

/// src with every variable x replaced by repl (x inside names such as max is left alone).
std::string replace_x(std::string_view src, std::string_view repl) {
    auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    std::string out;
    for (std::size_t i = 0; i < src.size(); ++i) {
        const bool alone = src[i] == 'x' && (i == 0 || !ident(src[i - 1])) &&
                           (i + 1 == src.size() || !ident(src[i + 1]));
        if (alone)
            out += repl;
        else
            out += src[i];
    }
    return out;
}

/// A result in the compact form of the table below: i3, f2.5, fNaN, b1, or E for an error.
std::string compact(std::string_view src, const Value& x) {
    Value v;
    try {
        v = Expr::compile(src)(x);
    } catch (const ExprError&) {
        return "E";
    }
    std::string s;
    switch (v.type()) {
        case Type::Int:
            s = "i";
            break;
        case Type::Float:
            s = "f";
            break;
        case Type::Bool:
            return v.as_bool() ? "b1" : "b0";
        default:
            return "?" + show(v);
    }
    append_json(s, v);
    return s;
}

// Results of each expression for the x values below, computed by Python 3 (E: Python raised
// an error, or the int does not fit 64 bits). Generated; exp/log/sin/cos are left out as their
// last bits depend on the C library.
const char* const kPythonXs[] = {"0",
                                 "1",
                                 "-1",
                                 "2",
                                 "7",
                                 "-7",
                                 "2.5",
                                 "-2.5",
                                 "0.0",
                                 "-0.0",
                                 "1e300",
                                 "float(\"nan\")",
                                 "float(\"inf\")",
                                 "-float(\"inf\")",
                                 "True",
                                 "False"};
const std::pair<const char*, const char*> kPython[] = {
    {"x + 3", "i3 i4 i2 i5 i10 i-4 f5.5 f0.5 f3.0 f3.0 f1e+300 fNaN fInfinity f-Infinity i4 i3"},
    {"x - 3",
     "i-3 i-2 i-4 i-1 i4 i-10 f-0.5 f-5.5 f-3.0 f-3.0 f1e+300 fNaN fInfinity f-Infinity i-2 "
     "i-3"},
    {"x - 0", "i0 i1 i-1 i2 i7 i-7 f2.5 f-2.5 f0.0 f-0.0 f1e+300 fNaN fInfinity f-Infinity i1 i0"},
    {"3 - x", "i3 i2 i4 i1 i-4 i10 f0.5 f5.5 f3.0 f3.0 f-1e+300 fNaN f-Infinity fInfinity i2 i3"},
    {"0 - x",
     "i0 i-1 i1 i-2 i-7 i7 f-2.5 f2.5 f0.0 f0.0 f-1e+300 fNaN f-Infinity fInfinity i-1 i0"},
    {"-0.0 - x",
     "f-0.0 f-1.0 f1.0 f-2.0 f-7.0 f7.0 f-2.5 f2.5 f-0.0 f0.0 f-1e+300 fNaN f-Infinity "
     "fInfinity f-1.0 f-0.0"},
    {"x * 3",
     "i0 i3 i-3 i6 i21 i-21 f7.5 f-7.5 f0.0 f-0.0 f3e+300 fNaN fInfinity f-Infinity i3 i0"},
    {"3 * x",
     "i0 i3 i-3 i6 i21 i-21 f7.5 f-7.5 f0.0 f-0.0 f3e+300 fNaN fInfinity f-Infinity i3 i0"},
    {"x / 3",
     "f0.0 f0.3333333333333333 f-0.3333333333333333 f0.6666666666666666 f2.3333333333333335 "
     "f-2.3333333333333335 f0.8333333333333334 f-0.8333333333333334 f0.0 f-0.0 "
     "f3.3333333333333335e+299 fNaN fInfinity f-Infinity f0.3333333333333333 f0.0"},
    {"x / 0", "E E E E E E E E E E E E E E E E"},
    {"x // 3",
     "i0 i0 i-1 i0 i2 i-3 f0.0 f-1.0 f0.0 f-0.0 f3.3333333333333335e+299 fNaN fNaN fNaN i0 "
     "i0"},
    {"x // -3",
     "i0 i-1 i0 i-1 i-3 i2 f-1.0 f0.0 f-0.0 f0.0 f-3.3333333333333335e+299 fNaN fNaN fNaN "
     "i-1 i0"},
    {"-7 // x", "E i-7 i7 i-4 i-1 i1 f-3.0 f2.0 E E f-1.0 fNaN f-1.0 f0.0 i-7 E"},
    {"x % 3", "i0 i1 i2 i2 i1 i2 f2.5 f0.5 f0.0 f0.0 f0.0 fNaN fNaN fNaN i1 i0"},
    {"x % -3", "i0 i-2 i-1 i-1 i-2 i-1 f-0.5 f-2.5 f-0.0 f-0.0 f-0.0 fNaN fNaN fNaN i-2 i0"},
    {"7 % x", "E i0 i0 i1 i0 i0 f2.0 f-0.5 E E f7.0 fNaN f7.0 f-Infinity i0 E"},
    {"-7 % x", "E i0 i0 i1 i0 i0 f0.5 f-2.0 E E f1e+300 fNaN fInfinity f-7.0 i0 E"},
    {"x ** 2", "i0 i1 i1 i4 i49 i49 f6.25 f6.25 f0.0 f0.0 E fNaN fInfinity fInfinity i1 i0"},
    {"x ** -1",
     "E f1.0 f-1.0 f0.5 f0.14285714285714285 f-0.14285714285714285 f0.4 f-0.4 E E f1e-300 "
     "fNaN f0.0 f-0.0 f1.0 E"},
    {"2 ** x",
     "i1 i2 f0.5 i4 i128 f0.0078125 f5.656854249492381 f0.1767766952966369 f1.0 f1.0 E fNaN "
     "fInfinity f0.0 i2 i1"},
    {"x ** 0.5",
     "f0.0 f1.0 E f1.4142135623730951 f2.6457513110645907 E f1.5811388300841898 E f0.0 f0.0 "
     "f1e+150 fNaN fInfinity fInfinity f1.0 f0.0"},
    {"-x", "i0 i-1 i1 i-2 i-7 i7 f-2.5 f2.5 f-0.0 f0.0 f-1e+300 fNaN f-Infinity fInfinity i-1 i0"},
    {"+x", "i0 i1 i-1 i2 i7 i-7 f2.5 f-2.5 f0.0 f-0.0 f1e+300 fNaN fInfinity f-Infinity i1 i0"},
    {"not x", "b1 b0 b0 b0 b0 b0 b0 b0 b1 b1 b0 b0 b0 b0 b0 b1"},
    {"-x ** 2",
     "i0 i-1 i-1 i-4 i-49 i-49 f-6.25 f-6.25 f-0.0 f-0.0 E fNaN f-Infinity f-Infinity i-1 "
     "i0"},
    {"x * 2 + 1",
     "i1 i3 i-1 i5 i15 i-13 f6.0 f-4.0 f1.0 f1.0 f2e+300 fNaN fInfinity f-Infinity i3 i1"},
    {"x * 2 - 1",
     "i-1 i1 i-3 i3 i13 i-15 f4.0 f-6.0 f-1.0 f-1.0 f2e+300 fNaN fInfinity f-Infinity i1 "
     "i-1"},
    {"10 - x * 2",
     "i10 i8 i12 i6 i-4 i24 f5.0 f15.0 f10.0 f10.0 f-2e+300 fNaN f-Infinity fInfinity i8 "
     "i10"},
    {"(x + 1) * 2",
     "i2 i4 i0 i6 i16 i-12 f7.0 f-3.0 f2.0 f2.0 f2e+300 fNaN fInfinity f-Infinity i4 i2"},
    {"x // 2 * 2", "i0 i0 i-2 i2 i6 i-8 f2.0 f-4.0 f0.0 f-0.0 f1e+300 fNaN fNaN fNaN i0 i0"},
    {"x % 2 == 0", "b1 b0 b0 b1 b0 b0 b0 b0 b1 b1 b1 b0 b0 b0 b0 b1"},
    {"x % 3 != 1", "b1 b0 b1 b1 b0 b1 b1 b1 b1 b1 b1 b1 b1 b1 b0 b1"},
    {"x < 2", "b1 b1 b1 b0 b0 b1 b0 b1 b1 b1 b0 b0 b0 b1 b1 b1"},
    {"x <= 2", "b1 b1 b1 b1 b0 b1 b0 b1 b1 b1 b0 b0 b0 b1 b1 b1"},
    {"x > 2", "b0 b0 b0 b0 b1 b0 b1 b0 b0 b0 b1 b0 b1 b0 b0 b0"},
    {"x >= 2", "b0 b0 b0 b1 b1 b0 b1 b0 b0 b0 b1 b0 b1 b0 b0 b0"},
    {"x == 2", "b0 b0 b0 b1 b0 b0 b0 b0 b0 b0 b0 b0 b0 b0 b0 b0"},
    {"x != 2", "b1 b1 b1 b0 b1 b1 b1 b1 b1 b1 b1 b1 b1 b1 b1 b1"},
    {"2 < x", "b0 b0 b0 b0 b1 b0 b1 b0 b0 b0 b1 b0 b1 b0 b0 b0"},
    {"1 < x < 5", "b0 b0 b0 b1 b0 b0 b1 b0 b0 b0 b0 b0 b0 b0 b0 b0"},
    {"x < 1 < 5", "b1 b0 b1 b0 b0 b1 b0 b1 b1 b1 b0 b0 b0 b1 b0 b1"},
    {"x == 2.5", "b0 b0 b0 b0 b0 b0 b1 b0 b0 b0 b0 b0 b0 b0 b0 b0"},
    {"x > 2.5", "b0 b0 b0 b0 b1 b0 b0 b0 b0 b0 b1 b0 b1 b0 b0 b0"},
    {"x and 5", "i0 i5 i5 i5 i5 i5 i5 i5 f0.0 f-0.0 i5 i5 i5 i5 i5 b0"},
    {"x or 5", "i5 i1 i-1 i2 i7 i-7 f2.5 f-2.5 i5 i5 f1e+300 fNaN fInfinity f-Infinity b1 i5"},
    {"x and x + 1",
     "i0 i2 i0 i3 i8 i-6 f3.5 f-1.5 f0.0 f-0.0 f1e+300 fNaN fInfinity f-Infinity i2 b0"},
    {"x > 0 and x < 10", "b0 b1 b0 b1 b1 b0 b1 b0 b0 b0 b0 b0 b0 b0 b1 b0"},
    {"x < 0 or x > 3", "b0 b0 b1 b0 b1 b1 b0 b1 b0 b0 b1 b0 b1 b1 b0 b0"},
    {"1 if x else 2", "i2 i1 i1 i1 i1 i1 i1 i1 i2 i2 i1 i1 i1 i1 i1 i2"},
    {"x if x > 0 else -x",
     "i0 i1 i1 i2 i7 i7 f2.5 f2.5 f-0.0 f0.0 f1e+300 fNaN fInfinity fInfinity b1 i0"},
    {"abs(x)", "i0 i1 i1 i2 i7 i7 f2.5 f2.5 f0.0 f0.0 f1e+300 fNaN fInfinity fInfinity i1 i0"},
    {"abs(x - 3)", "i3 i2 i4 i1 i4 i10 f0.5 f5.5 f3.0 f3.0 f1e+300 fNaN fInfinity fInfinity i2 i3"},
    {"floor(x)", "i0 i1 i-1 i2 i7 i-7 i2 i-3 i0 i0 E E E E i1 i0"},
    {"ceil(x)", "i0 i1 i-1 i2 i7 i-7 i3 i-2 i0 i0 E E E E i1 i0"},
    {"round(x)", "i0 i1 i-1 i2 i7 i-7 i2 i-2 i0 i0 E E E E i1 i0"},
    {"round(x * 1.5)", "i0 i2 i-2 i3 i10 i-10 i4 i-4 i0 i0 E E E E i2 i0"},
    {"int(x)", "i0 i1 i-1 i2 i7 i-7 i2 i-2 i0 i0 E E E E i1 i0"},
    {"float(x)",
     "f0.0 f1.0 f-1.0 f2.0 f7.0 f-7.0 f2.5 f-2.5 f0.0 f-0.0 f1e+300 fNaN fInfinity "
     "f-Infinity f1.0 f0.0"},
    {"sqrt(x)",
     "f0.0 f1.0 E f1.4142135623730951 f2.6457513110645907 E f1.5811388300841898 E f0.0 "
     "f-0.0 f1e+150 fNaN fInfinity E f1.0 f0.0"},
    {"floor(x / 2)", "i0 i0 i-1 i1 i3 i-4 i1 i-2 i0 i0 E E E E i0 i0"},
    {"x * 2.5 + 1",
     "f1.0 f3.5 f-1.5 f6.0 f18.5 f-16.5 f7.25 f-5.25 f1.0 f1.0 f2.5e+300 fNaN fInfinity "
     "f-Infinity f3.5 f1.0"},
    {"x - 0.5",
     "f-0.5 f0.5 f-1.5 f1.5 f6.5 f-7.5 f2.0 f-3.0 f-0.5 f-0.5 f1e+300 fNaN fInfinity "
     "f-Infinity f0.5 f-0.5"},
    {"0.5 - x",
     "f0.5 f-0.5 f1.5 f-1.5 f-6.5 f7.5 f-2.0 f3.0 f0.5 f0.5 f-1e+300 fNaN f-Infinity "
     "fInfinity f-0.5 f0.5"},
    {"1.5 * x",
     "f0.0 f1.5 f-1.5 f3.0 f10.5 f-10.5 f3.75 f-3.75 f0.0 f-0.0 f1.5e+300 fNaN fInfinity "
     "f-Infinity f1.5 f0.0"},
    {"max(x, 2)", "i2 i2 i2 i2 i7 i2 f2.5 i2 i2 i2 f1e+300 fNaN fInfinity i2 i2 i2"},
    {"min(x, 2)", "i0 i1 i-1 i2 i2 i-7 i2 f-2.5 f0.0 f-0.0 i2 fNaN i2 f-Infinity b1 b0"},
};

}  // namespace

TEST_CASE("expr: numeric fast paths and the generic evaluator agree with Python") {
    std::vector<Value> xs;
    for (const char* s : kPythonXs) xs.push_back(eval(s));
    for (const auto& [src, expected_row] : kPython) {
        std::vector<std::string> expected;
        std::string_view row = expected_row;
        while (!row.empty()) {
            const std::size_t sp = row.find(' ');
            expected.emplace_back(row.substr(0, sp));
            row = sp == std::string_view::npos ? std::string_view() : row.substr(sp + 1);
        }
        REQUIRE(expected.size() == xs.size());
        // x itself takes the numeric fast paths, x.v the numeric path through a field, and
        // x[0] defeats them, so that the generic evaluator answers.
        const std::string via_field = replace_x(src, "x.v");
        const std::string generic = replace_x(src, "x[0]");
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const std::string expr = src, x = kPythonXs[i];
            CAPTURE(expr);
            CAPTURE(x);
            CHECK(compact(src, xs[i]) == expected[i]);
            CHECK(compact(via_field, rec({{"v", xs[i]}})) == expected[i]);
            CHECK(compact(generic, Value::list({xs[i]})) == expected[i]);
        }
    }
}
