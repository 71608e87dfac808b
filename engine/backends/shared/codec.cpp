// codec.cpp — the binary form of Values (codec.hpp).
#include "codec.hpp"

#include <cstring>
#include <limits>
#include <string>

#include "chanflow/bytes.hpp"

namespace chanflow::detail {
namespace {

enum Tag : std::uint8_t {
    kNull = 0,
    kBoundary = 1,
    kEnd = 2,
    kFalse = 3,
    kTrue = 4,
    kInt = 5,
    kFloat = 6,
    kString = 7,
    kBytes = 8,
    kList = 9,
    kRecord = 10,
    kTensor = 11,
};

constexpr std::size_t kMaxRank = Value::kMaxDimensions;

void put_u64(Bytes& out, std::uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    const std::size_t at = out.size();
    out.resize(at + 8);
    std::memcpy(out.data() + at, b, 8);
}

void put_u32(Bytes& out, std::size_t v) {
    if (v > std::numeric_limits<std::uint32_t>::max())
        throw CodecError("a value too large to send (more than 2^32 bytes or items)");
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    out.insert(out.end(), b, b + 4);
}

void put_bytes(Bytes& out, const void* data, std::size_t n) {
    put_u32(out, n);
    const auto* p = static_cast<const unsigned char*>(data);
    out.insert(out.end(), p, p + n);
}

std::size_t element_size(DType d) {
    return d == DType::I32 || d == DType::F32 ? 4 : 8;
}

}  // namespace

void encode(const Value& v, Bytes& out) {
    switch (v.type()) {
        case Type::Null:
            switch (order_mark_of(v)) {
                case OrderMark::Boundary:
                    out.push_back(kBoundary);
                    return;
                case OrderMark::End:
                    out.push_back(kEnd);
                    return;
                default:
                    out.push_back(kNull);
                    return;
            }
        case Type::Bool:
            out.push_back(v.as_bool() ? kTrue : kFalse);
            return;
        case Type::Int:
            out.push_back(kInt);
            put_u64(out, static_cast<std::uint64_t>(v.as_int()));
            return;
        case Type::Float: {
            out.push_back(kFloat);
            std::uint64_t bits;
            const double f = v.as_float();
            std::memcpy(&bits, &f, 8);
            put_u64(out, bits);
            return;
        }
        case Type::String: {
            out.push_back(kString);
            const std::string_view s = v.as_string();
            put_bytes(out, s.data(), s.size());
            return;
        }
        case Type::Bytes:
            out.push_back(kBytes);
            put_bytes(out, v.as_bytes().data(), v.as_bytes().size());
            return;
        case Type::List:
            out.push_back(kList);
            put_u32(out, v.as_list().size());
            for (const Value& e : v.as_list()) encode(e, out);
            return;
        case Type::Record:
            out.push_back(kRecord);
            put_u32(out, v.as_record().size());
            for (const auto& [k, e] : v.as_record()) {
                put_bytes(out, k.data(), k.size());
                encode(e, out);
            }
            return;
        case Type::Tensor: {
            const Tensor& t = v.as_tensor();
            encode_tensor_header(t, out);
            out.insert(out.end(), t.data.begin(), t.data.end());
            return;
        }
    }
}

void encode_tensor_header(const Tensor& t, Bytes& out) {
    if (t.shape.size() > kMaxRank)
        throw CodecError("a tensor of more than " + std::to_string(kMaxRank) + " dimensions");
    out.push_back(kTensor);
    out.push_back(static_cast<unsigned char>(t.dtype));
    out.push_back(static_cast<unsigned char>(t.shape.size()));
    for (std::int64_t d : t.shape) put_u64(out, static_cast<std::uint64_t>(d));
    put_u64(out, t.data.size());
}

void Decoder::fail(const std::string& what) const {
    throw CodecError(what + " at byte " + std::to_string(offset()));
}

void Decoder::need(std::size_t n) const {
    if (static_cast<std::size_t>(end_ - p_) < n) fail("truncated value");
}

std::uint8_t Decoder::u8() {
    need(1);
    return *p_++;
}

std::uint32_t Decoder::u32() {
    need(4);
    const std::uint32_t v = load_le32(p_);
    p_ += 4;
    return v;
}

std::uint64_t Decoder::u64() {
    need(8);
    const std::uint64_t v = load_le64(p_);
    p_ += 8;
    return v;
}

Value Decoder::next() {
    return value(0);
}

Value Decoder::value(int depth) {
    const unsigned char* start = p_;
    switch (u8()) {
        case kNull:
            return Value();
        case kBoundary:
            return order_mark(OrderMark::Boundary);
        case kEnd:
            return order_mark(OrderMark::End);
        case kFalse:
            return Value(false);
        case kTrue:
            return Value(true);
        case kInt:
            return Value(static_cast<std::int64_t>(u64()));
        case kFloat: {
            const std::uint64_t bits = u64();
            double f;
            std::memcpy(&f, &bits, 8);
            return Value(f);
        }
        case kString: {
            const std::uint32_t n = u32();
            need(n);
            Value v(std::string_view(reinterpret_cast<const char*>(p_), n));
            p_ += n;
            return v;
        }
        case kBytes: {
            const std::uint32_t n = u32();
            need(n);
            std::vector<unsigned char> b(p_, p_ + n);
            p_ += n;
            return Value::bytes(std::move(b));
        }
        case kList: {
            if (depth >= kMaxDepth)
                fail("a list or record nested deeper than " + std::to_string(kMaxDepth) +
                     " levels");
            const std::uint32_t n = u32();
            need(n);  // each element takes a byte at least: no allocation beyond the input
            List items;
            items.reserve(n);
            for (std::uint32_t i = 0; i < n; ++i) items.push_back(value(depth + 1));
            return Value(std::move(items));
        }
        case kRecord: {
            if (depth >= kMaxDepth)
                fail("a list or record nested deeper than " + std::to_string(kMaxDepth) +
                     " levels");
            const std::uint32_t n = u32();
            need(std::size_t{5} * n);  // a key length and a value tag each, at least
            Record fields;
            fields.reserve(n);
            for (std::uint32_t i = 0; i < n; ++i) {
                const std::uint32_t len = u32();
                need(len);
                std::string key(reinterpret_cast<const char*>(p_), len);
                p_ += len;
                fields.emplace_back(std::move(key), value(depth + 1));
            }
            return Value(std::move(fields));
        }
        case kTensor: {
            p_ = start;
            std::uint64_t length = 0;
            Tensor t = tensor_header(length);
            need(length);
            // Uninitialised (TensorBytes), then copied at once: assign() would construct the
            // bytes one by one, the allocator not being std::allocator.
            t.data.resize(length);
            if (length > 0) std::memcpy(t.data.data(), p_, length);
            p_ += length;
            return Value(std::move(t));
        }
        default:
            p_ = start;
            fail("unknown value tag");
    }
}

Tensor Decoder::tensor_header(std::uint64_t& length) {
    if (u8() != kTensor) fail("not a tensor");
    Tensor t;
    const std::uint8_t dtype = u8();
    if (dtype > static_cast<std::uint8_t>(DType::F64)) fail("unknown tensor dtype");
    t.dtype = static_cast<DType>(dtype);
    const std::uint8_t rank = u8();
    if (rank > kMaxRank) fail("a tensor of more than " + std::to_string(kMaxRank) + " dimensions");
    std::uint64_t elements = 1;
    for (std::uint8_t i = 0; i < rank; ++i) {
        const std::uint64_t d = u64();
        if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
            __builtin_mul_overflow(elements, d, &elements))
            fail("a tensor shape out of range");
        t.shape.push_back(static_cast<std::int64_t>(d));
    }
    length = u64();
    std::uint64_t expected;
    if (__builtin_mul_overflow(elements, element_size(t.dtype), &expected) || length != expected)
        fail("tensor data that does not match its shape");
    return t;
}

}  // namespace chanflow::detail
