#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "chanflow/value.hpp"

using chanflow::List;
using chanflow::Record;
using chanflow::to_printed;
using chanflow::Value;

TEST_CASE("value: 16 bytes, scalars inline, payloads shared on copy") {
    CHECK(sizeof(Value) == 16);
    // Long strings are shared on copy; short ones (up to 14 bytes) live inside the Value.
    Value s("a string longer than fourteen bytes");
    Value t = s;
    CHECK(s.as_string().data() == t.as_string().data());
    Value moved = std::move(t);
    CHECK(t.is_null());
    CHECK(moved.as_string() == "a string longer than fourteen bytes");
    CHECK_THROWS_AS(s.as_int(), chanflow::TypeError);

    Value small("fourteen bytes");
    CHECK(small.as_string() == "fourteen bytes");
    Value small_copy = small;
    CHECK(small_copy.as_string().data() != small.as_string().data());
    CHECK(small_copy == small);
    CHECK(Value("") == Value(std::string()));
    CHECK(Value("").as_string().empty());
    CHECK(Value("fifteen bytes!!") == Value(std::string("fifteen bytes!!")));
    CHECK(chanflow::stable_hash(Value("short")) ==
          chanflow::stable_hash(Value(std::string("short"))));
    Value moved_small = std::move(small);
    CHECK(small.is_null());
    CHECK(moved_small.as_string() == "fourteen bytes");
    small = moved_small;  // assignment over a moved-from value
    CHECK(small.as_string() == "fourteen bytes");
    // Embedded zero bytes are kept.
    CHECK(Value(std::string_view("a\0b", 3)).as_string().size() == 3);
}

TEST_CASE("value: floats print as Python's repr") {
    const std::pair<double, const char*> cases[] = {
        {1.0, "1.0"},
        {0.1, "0.1"},
        {100000.0, "100000.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {1e-5, "1e-05"},
        {0.0001, "0.0001"},
        {-0.0, "-0.0"},
        {2.5, "2.5"},
        {1.5e300, "1.5e+300"},
        {123456789.125, "123456789.125"},
        {1.0 / 3, "0.3333333333333333"},
        {5e-324, "5e-324"},
        {-1.25e-7, "-1.25e-07"},
        {std::numeric_limits<double>::infinity(), "inf"},
        {-std::numeric_limits<double>::infinity(), "-inf"}};
    for (const auto& c : cases) {
        const std::string want = c.second;  // a structured binding cannot be captured (clang)
        CAPTURE(want);
        CHECK(to_printed(Value(c.first)) == want);
    }
    CHECK(to_printed(Value(std::nan(""))) == "nan");
}

TEST_CASE("value: printed form of every type (docs/values.md)") {
    CHECK(to_printed(Value()) == "null");
    CHECK(to_printed(Value(true)) == "true");
    CHECK(to_printed(Value(-42)) == "-42");
    CHECK(to_printed(Value("raw \"text\"")) == "raw \"text\"");
    CHECK(to_printed(Value::bytes({0x00, 0xab, 0x10})) == "00ab10");
    CHECK(to_printed(Value(List{1, "the", 2.0, Value()})) == "[1, \"the\", 2.0, null]");
    CHECK(to_printed(Value(Record{{"a", 1}, {"b", Value(List{1.5, 2.0})}})) ==
          "{\"a\": 1, \"b\": [1.5, 2.0]}");
    CHECK(to_printed(Value(List{"é\n\x01"})) == "[\"é\\n\\u0001\"]");
    CHECK(to_printed(Value(List{std::nan(""), std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity()})) ==
          "[NaN, Infinity, -Infinity]");
    chanflow::Tensor t;
    t.dtype = chanflow::DType::I32;
    t.shape = {2, 2};
    const std::int32_t data[] = {1, 2, 3, 4};
    t.data.assign(reinterpret_cast<const unsigned char*>(data),
                  reinterpret_cast<const unsigned char*>(data) + sizeof data);
    CHECK(to_printed(Value(t)) == "[[1, 2], [3, 4]]");
}

TEST_CASE("value: equality follows Python") {
    CHECK(Value(1) == Value(1.0));
    CHECK(Value(true) == Value(1));
    CHECK(Value(true) == Value(1.0));
    CHECK(Value(false) == Value(0));
    CHECK(Value(0.5) != Value(0));
    CHECK(Value(std::nan("")) != Value(std::nan("")));
    CHECK(Value("1") != Value(1));
    CHECK(Value(List{1, 2}) == Value(List{1.0, 2}));
    CHECK(Value(Record{{"a", 1}, {"b", 2}}) == Value(Record{{"b", 2}, {"a", 1}}));
    CHECK(Value(Record{{"a", 1}}) != Value(Record{{"a", 1}, {"b", 2}}));
    CHECK(Value() == Value());
}

TEST_CASE("value: the stable hash is fixed and agrees with equality") {
    using chanflow::stable_hash;
    CHECK(stable_hash(Value(1)) == stable_hash(Value(1.0)));
    CHECK(stable_hash(Value(true)) == stable_hash(Value(1)));
    CHECK(stable_hash(Value(Record{{"a", 1}, {"b", 2}})) ==
          stable_hash(Value(Record{{"b", 2}, {"a", 1}})));
    CHECK(stable_hash(Value("a")) != stable_hash(Value("b")));
    // Fixed across runs and builds: partitions must match on every backend.
    CHECK(stable_hash(Value("the")) == 9987983959451100891ULL);
    CHECK(stable_hash(Value(1)) % 3 == 2);
}

TEST_CASE("value: lists and records nest at most kMaxNesting deep, tensors 32 dimensions") {
    Value v(1);
    CHECK(v.nesting() == 0);
    for (int depth = 1; depth <= Value::kMaxNesting; ++depth) {
        v = Value(List{v, Value("a string longer than fourteen bytes")});
        REQUIRE(v.nesting() == depth);
    }
    CHECK_THROWS_WITH_AS(Value(List{v}), "a list or record nested deeper than 64 levels",
                         chanflow::ValueError);
    CHECK_THROWS_AS(Value(Record{{"k", v}}), chanflow::ValueError);
    // The deepest element counts, wherever it is.
    CHECK(Value(List{Value(1), Value(Record{{"a", Value(List{})}}), Value("s")}).nesting() == 3);
    CHECK(Value(List{}).nesting() == 1);
    CHECK(Value(Record{}).nesting() == 1);
    CHECK(Value("a string longer than fourteen bytes").nesting() == 0);

    chanflow::Tensor t;
    t.dtype = chanflow::DType::I32;
    t.shape.assign(Value::kMaxDimensions, 1);
    t.data.resize(4);
    CHECK(Value(t).is_tensor());
    t.shape.push_back(1);
    CHECK_THROWS_WITH_AS(Value{t}, "a tensor of more than 32 dimensions", chanflow::ValueError);
}
