// The binary codec of Values: every type round-trips, order marks included; the decoder
// refuses truncated and malformed input with an error, never a crash.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "chanflow/value.hpp"
#include "codec.hpp"

using namespace chanflow;
using chanflow::detail::Bytes;
using chanflow::detail::CodecError;
using chanflow::detail::Decoder;

namespace {

Bytes encoded(const Value& v) {
    Bytes b;
    detail::encode(v, b);
    return b;
}

Value round_trip(const Value& v) {
    const Bytes b = encoded(v);
    Decoder d(b.data(), b.size());
    Value out = d.next();
    CHECK(d.done());
    return out;
}

Value tensor(DType dtype, std::vector<std::int64_t> shape) {
    Tensor t;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.data.resize(t.size() * (dtype == DType::I32 || dtype == DType::F32 ? 4 : 8));
    for (std::size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<unsigned char>(i * 7);
    return Value(std::move(t));
}

std::vector<Value> samples() {
    return {Value(),
            Value(true),
            Value(false),
            Value(0),
            Value(-1),
            Value(std::int64_t{9223372036854775807}),
            Value(0.1),
            Value(-0.0),
            Value(1e308),
            Value(""),
            Value("short"),
            Value("exactly 14 b.."),
            Value(std::string(1000, 'x') + "\xc3\xa9"),
            Value::bytes({0, 1, 255}),
            Value(List{}),
            Value(List{1, "two", List{3.0, Value()}}),
            Value(Record{{"key", "the"}, {"n", 3}, {"", List{}}}),
            tensor(DType::I32, {2, 3}),
            tensor(DType::F64, {4}),
            tensor(DType::F32, {0, 5}),
            tensor(DType::I64, {})};
}

void expect_error(const Bytes& b, const std::string& what) {
    Decoder d(b.data(), b.size());
    try {
        d.next();
        FAIL("decoded without an error");
    } catch (const CodecError& e) {
        CHECK_MESSAGE(std::string(e.what()).find(what) != std::string::npos, std::string(e.what()));
    }
}

}  // namespace

TEST_CASE("codec: every type of value round-trips") {
    for (const Value& v : samples()) {
        CAPTURE(to_printed(v));
        const Value back = round_trip(v);
        CHECK(back.type() == v.type());
        CHECK(back == v);
        CHECK(to_printed(back) == to_printed(v));
    }
    CHECK(std::signbit(round_trip(Value(-0.0)).as_float()));
    CHECK(round_trip(Value(1)).is_int());  // not a float, though 1 == 1.0
    const Value t = round_trip(tensor(DType::I32, {2, 3}));
    CHECK(t.as_tensor().shape == std::vector<std::int64_t>{2, 3});
    CHECK(t.as_tensor().dtype == DType::I32);
}

TEST_CASE("codec: order marks cross as marks, not as nulls") {
    using detail::OrderMark;
    CHECK(detail::order_mark_of(round_trip(detail::order_mark(OrderMark::Boundary))) ==
          OrderMark::Boundary);
    CHECK(detail::order_mark_of(round_trip(detail::order_mark(OrderMark::End))) == OrderMark::End);
    CHECK(detail::order_mark_of(round_trip(Value())) == OrderMark::None);
}

TEST_CASE("codec: values follow one another in a buffer") {
    Bytes b;
    for (const Value& v : samples()) detail::encode(v, b);
    Decoder d(b.data(), b.size());
    for (const Value& v : samples()) CHECK(d.next() == v);
    CHECK(d.done());
}

TEST_CASE("codec: every truncation of a valid encoding is an error") {
    for (const Value& v : samples()) {
        const Bytes full = encoded(v);
        for (std::size_t n = 0; n < full.size(); ++n) {
            CAPTURE(to_printed(v));
            CAPTURE(n);
            expect_error(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)),
                         "truncated value");
        }
    }
}

TEST_CASE("codec: malformed input is refused with what and where") {
    expect_error({0x42}, "unknown value tag at byte 0");
    expect_error({9, 2, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0x42}, "unknown value tag at byte 14");
    // A huge count with nothing behind it allocates nothing.
    expect_error({9, 0xff, 0xff, 0xff, 0xff}, "truncated value");
    expect_error({10, 0xff, 0xff, 0xff, 0x0f, 0}, "truncated value");
    expect_error({7, 0xff, 0xff, 0xff, 0xff, 'a'}, "truncated value");
    // Nesting is bounded.
    Bytes deep;
    for (int i = 0; i <= Decoder::kMaxDepth; ++i) deep.insert(deep.end(), {9, 1, 0, 0, 0});
    deep.push_back(0);
    expect_error(deep, "a list or record nested deeper than 64 levels");
    // A tensor's bytes must match its shape and dtype.
    Bytes t = encoded(tensor(DType::F64, {2, 2}));
    t[1] = 9;  // dtype
    expect_error(t, "unknown tensor dtype");
    t = encoded(tensor(DType::F64, {2, 2}));
    t[2] = 1;  // rank 1: the second dim is read as the length
    expect_error(t, "tensor data that does not match its shape");
    // Two dims of 2**62 each (little-endian u64), then 8 bytes of data.
    const Bytes huge = {11, 3, 2, 0, 0,    0, 0, 0, 0, 0, 0x40, 0, 0, 0,
                        0,  0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0,    0, 0, 0};
    expect_error(huge, "a tensor shape out of range");
}

TEST_CASE("codec: random bytes never crash the decoder") {
    std::uint64_t state = 12345;
    auto next = [&] {
        state += 0x9e3779b97f4a7c15ULL;
        std::uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    int decoded = 0, refused = 0;
    for (int round = 0; round < 20000; ++round) {
        Bytes b(next() % 48);
        for (auto& c : b) c = static_cast<unsigned char>(next() % 13);  // mostly valid tags
        Decoder d(b.data(), b.size());
        try {
            while (!d.done()) d.next();
            ++decoded;
        } catch (const CodecError&) {
            ++refused;
        }
    }
    CHECK(decoded > 0);
    CHECK(refused > 0);
}
