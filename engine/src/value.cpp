#include "chanflow/value.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include <oneapi/tbb/scalable_allocator.h>

#include "chanflow/bytes.hpp"

namespace chanflow {

const char* type_name(Type t) noexcept {
    switch (t) {
        case Type::Null:
            return "null";
        case Type::Bool:
            return "bool";
        case Type::Int:
            return "int";
        case Type::Float:
            return "float";
        case Type::String:
            return "str";
        case Type::Bytes:
            return "bytes";
        case Type::List:
            return "list";
        case Type::Record:
            return "record";
        case Type::Tensor:
            return "tensor";
    }
    return "?";
}

const char* dtype_name(DType t) noexcept {
    switch (t) {
        case DType::I32:
            return "i32";
        case DType::I64:
            return "i64";
        case DType::F32:
            return "f32";
        case DType::F64:
            return "f64";
    }
    return "?";
}

std::size_t dtype_size(DType t) noexcept {
    return t == DType::I32 || t == DType::F32 ? 4 : 8;
}

std::size_t Tensor::size() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
}

// Under AddressSanitizer or ThreadSanitizer payloads come from the ordinary heap, which they
// watch (oneTBB's allocator is not instrumented).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CHANFLOW_PLAIN_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CHANFLOW_PLAIN_HEAP 1
#endif
#endif

void* detail::HeapBase::operator new(std::size_t size) {
#ifdef CHANFLOW_PLAIN_HEAP
    return ::operator new(size);
#else
    if (void* p = scalable_malloc(size)) return p;
    throw std::bad_alloc();
#endif
}

void detail::HeapBase::operator delete(void* p) noexcept {
#ifdef CHANFLOW_PLAIN_HEAP
    ::operator delete(p);
#else
    scalable_free(p);
#endif
}

void Value::set_heap_string(std::string_view s) {
    void* memory = detail::HeapBase::operator new(sizeof(detail::HeapString) + s.size());
    auto* h = ::new (memory) detail::HeapString;
    h->size = s.size();
    std::memcpy(const_cast<char*>(h->data()), s.data(), s.size());
    u_.s = {Type::String, 0, {0}};
    u_.s.p = h;
}
namespace {
// The nesting of a container of these elements; throws past Value::kMaxNesting.
template <class Range, class Get>
std::uint8_t nesting_of(const Range& elements, Get value_of) {
    int deepest = 0;
    for (const auto& e : elements) deepest = std::max(deepest, value_of(e).nesting());
    if (deepest >= Value::kMaxNesting)
        throw ValueError("a list or record nested deeper than " +
                         std::to_string(Value::kMaxNesting) + " levels");
    return static_cast<std::uint8_t>(deepest + 1);
}
}  // namespace

Value::Value(List l) {
    const std::uint8_t nesting = nesting_of(l, [](const Value& v) -> const Value& { return v; });
    u_.s = {Type::List, 0, {0}};
    u_.s.p = new detail::Heap<List>(std::move(l));
    u_.s.p->nesting = nesting;
}
Value::Value(Record r) {
    const std::uint8_t nesting =
        nesting_of(r, [](const Field& f) -> const Value& { return f.second; });
    u_.s = {Type::Record, 0, {0}};
    u_.s.p = new detail::Heap<Record>(std::move(r));
    u_.s.p->nesting = nesting;
}
Value::Value(Tensor t) {
    if (t.shape.size() > kMaxDimensions)
        throw ValueError("a tensor of more than " + std::to_string(kMaxDimensions) + " dimensions");
    u_.s = {Type::Tensor, 0, {0}};
    u_.s.p = new detail::Heap<Tensor>(std::move(t));
}

Value Value::bytes(std::vector<unsigned char> b) {
    Value v;
    v.u_.s.p = new detail::Heap<std::vector<unsigned char>>(std::move(b));
    v.u_.s.type = Type::Bytes;
    return v;
}

void Value::release() noexcept {
    if (u_.s.p->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    switch (u_.s.type) {
        case Type::String:
            static_cast<detail::HeapString*>(u_.s.p)->~HeapString();
            detail::HeapBase::operator delete(u_.s.p);
            break;
        case Type::Bytes:
            delete static_cast<detail::Heap<std::vector<unsigned char>>*>(u_.s.p);
            break;
        case Type::List:
            delete static_cast<detail::Heap<List>*>(u_.s.p);
            break;
        case Type::Record:
            delete static_cast<detail::Heap<Record>*>(u_.s.p);
            break;
        case Type::Tensor:
            delete static_cast<detail::Heap<Tensor>*>(u_.s.p);
            break;
        default:
            break;
    }
}

void Value::throw_type(Type wanted) const {
    throw TypeError(std::string("expected ") + type_name(wanted) + ", got " + type_name(u_.s.type));
}

double Value::as_number() const {
    if (u_.s.type == Type::Int) return static_cast<double>(u_.s.i);
    if (u_.s.type == Type::Float) return u_.s.f;
    throw TypeError(std::string("expected a number, got ") + type_name(u_.s.type));
}

const Value* Value::field(std::string_view name) const noexcept {
    if (u_.s.type != Type::Record) return nullptr;
    for (const auto& [k, v] : heap<Record>())
        if (k == name) return &v;
    return nullptr;
}

namespace {
// Python treats bool as an int (True == 1 == 1.0).
bool numeric(const Value& v) noexcept {
    return v.is_number() || v.is_bool();
}
}  // namespace

bool operator==(const Value& a, const Value& b) noexcept {
    if (numeric(a) && numeric(b)) {
        if (!a.is_float() && !b.is_float()) return a.u_.s.i == b.u_.s.i;
        if (a.is_float() && b.is_float()) return a.u_.s.f == b.u_.s.f;
        // int vs float: compare exactly, as Python does.
        const std::int64_t i = a.is_float() ? b.u_.s.i : a.u_.s.i;
        const double f = a.is_float() ? a.u_.s.f : b.u_.s.f;
        if (!std::isfinite(f) || f != std::floor(f)) return false;
        if (f < -9223372036854775808.0 || f >= 9223372036854775808.0) return false;
        return static_cast<std::int64_t>(f) == i;
    }
    if (a.u_.s.type != b.u_.s.type) return false;
    switch (a.u_.s.type) {
        case Type::Null:
            return true;
        case Type::String:
            return a.as_string() == b.as_string();
        case Type::Bytes:
            return a.as_bytes() == b.as_bytes();
        case Type::List:
            return a.as_list() == b.as_list();
        case Type::Record: {
            // Like Python's dict: the same keys with equal values, in any order.
            const Record& x = a.as_record();
            if (x.size() != b.as_record().size()) return false;
            for (const auto& [k, v] : x) {
                const Value* other = b.field(k);
                if (!other || !(v == *other)) return false;
            }
            return true;
        }
        case Type::Tensor: {
            const auto& x = a.as_tensor();
            const auto& y = b.as_tensor();
            return x.dtype == y.dtype && x.shape == y.shape && x.data == y.data;
        }
        default:
            return false;
    }
}

// ---- printing ---------------------------------------------------------------------------

void append_float_repr(std::string& out, double f) {
    if (std::isnan(f)) {
        out += "nan";
        return;
    }
    if (std::isinf(f)) {
        out += f < 0 ? "-inf" : "inf";
        return;
    }
    // Shortest round-trip digits, then laid out the way Python's repr does: fixed notation
    // for decimal exponents in [-4, 16), scientific with a two-digit exponent otherwise.
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
    bool neg = false;
    if (!sci.empty() && sci[0] == '-') {
        neg = true;
        sci.remove_prefix(1);
    }
    const auto epos = sci.find('e');
    std::string digits;
    for (char c : sci.substr(0, epos))
        if (c != '.') digits += c;
    const char* ep = sci.data() + epos + 1;
    const bool exp_neg = *ep == '-';
    if (*ep == '+' || *ep == '-') ++ep;
    int exp10 = 0;
    std::from_chars(ep, sci.data() + sci.size(), exp10);
    if (exp_neg) exp10 = -exp10;
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    if (neg) out += '-';
    const int n = static_cast<int>(digits.size());
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            out += "0.";
            out.append(static_cast<std::size_t>(-exp10 - 1), '0');
            out += digits;
        } else if (exp10 + 1 >= n) {
            out += digits;
            out.append(static_cast<std::size_t>(exp10 + 1 - n), '0');
            out += ".0";
        } else {
            out.append(digits, 0, static_cast<std::size_t>(exp10 + 1));
            out += '.';
            out.append(digits, static_cast<std::size_t>(exp10 + 1));
        }
        return;
    }
    out += digits[0];
    if (n > 1) {
        out += '.';
        out.append(digits, 1);
    }
    out += 'e';
    out += exp10 < 0 ? '-' : '+';
    const int e = exp10 < 0 ? -exp10 : exp10;
    if (e < 10) out += '0';
    out += std::to_string(e);
}

namespace {

void append_int(std::string& out, std::int64_t i) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof buf, i);
    out.append(buf, res.ptr);
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    static const char* hex = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

void append_hex(std::string& out, const std::vector<unsigned char>& b) {
    static const char* hex = "0123456789abcdef";
    for (unsigned char c : b) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
}

void append_json_float(std::string& out, double f) {
    if (std::isnan(f))
        out += "NaN";
    else if (std::isinf(f))
        out += f < 0 ? "-Infinity" : "Infinity";
    else
        append_float_repr(out, f);
}

template <class T>
T load(const unsigned char* p) {
    T t;
    std::memcpy(&t, p, sizeof t);
    return t;
}

void append_tensor(std::string& out, const Tensor& t, std::size_t dim, std::size_t& index) {
    if (dim == t.shape.size()) {
        const unsigned char* p = t.data.data();
        switch (t.dtype) {
            case DType::I32:
                append_int(out, load<std::int32_t>(p + index * 4));
                break;
            case DType::I64:
                append_int(out, load<std::int64_t>(p + index * 8));
                break;
            case DType::F32:
                append_json_float(out, load<float>(p + index * 4));
                break;
            case DType::F64:
                append_json_float(out, load<double>(p + index * 8));
                break;
        }
        ++index;
        return;
    }
    out += '[';
    for (std::int64_t i = 0; i < t.shape[dim]; ++i) {
        if (i) out += ", ";
        append_tensor(out, t, dim + 1, index);
    }
    out += ']';
}

}  // namespace

Value Tensor::element(std::size_t i) const {
    const unsigned char* p = data.data() + i * dtype_size(dtype);
    switch (dtype) {
        case DType::I32:
            return Value(static_cast<std::int64_t>(load<std::int32_t>(p)));
        case DType::I64:
            return Value(load<std::int64_t>(p));
        case DType::F32:
            return Value(static_cast<double>(load<float>(p)));
        case DType::F64:
            return Value(load<double>(p));
    }
    return Value();
}

void append_json(std::string& out, const Value& v) {
    switch (v.type()) {
        case Type::String:
            append_json_string(out, v.as_string());
            return;
        case Type::Float:
            append_json_float(out, v.as_float());
            return;
        case Type::Bytes:
            out += '"';
            append_hex(out, v.as_bytes());
            out += '"';
            return;
        case Type::List: {
            out += '[';
            bool first = true;
            for (const auto& e : v.as_list()) {
                if (!first) out += ", ";
                first = false;
                append_json(out, e);
            }
            out += ']';
            return;
        }
        case Type::Record: {
            out += '{';
            bool first = true;
            for (const auto& [k, e] : v.as_record()) {
                if (!first) out += ", ";
                first = false;
                append_json_string(out, k);
                out += ": ";
                append_json(out, e);
            }
            out += '}';
            return;
        }
        default:
            append_printed(out, v);
    }
}

void append_printed(std::string& out, const Value& v) {
    switch (v.type()) {
        case Type::Null:
            out += "null";
            return;
        case Type::Bool:
            out += v.as_bool() ? "true" : "false";
            return;
        case Type::Int:
            append_int(out, v.as_int());
            return;
        case Type::Float:
            append_float_repr(out, v.as_float());
            return;
        case Type::String:
            out += v.as_string();
            return;
        case Type::Bytes:
            append_hex(out, v.as_bytes());
            return;
        case Type::Tensor: {
            std::size_t index = 0;
            append_tensor(out, v.as_tensor(), 0, index);
            return;
        }
        default:
            append_json(out, v);
    }
}

std::string to_printed(const Value& v) {
    std::string s;
    append_printed(s, v);
    return s;
}

// ---- hashing ----------------------------------------------------------------------------
// A canonical encoding folded eight bytes at a time from a fixed start (docs/values.md);
// numbers that compare equal (1 and 1.0, true and 1) hash equal, as Python requires of
// dict keys.

namespace {
constexpr std::uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr std::uint64_t kMul = 0x9e3779b97f4a7c15ULL;

// Eight bytes at a time (read little-endian, so the hash is the same on any machine), each
// word folded in with a multiply and a shift; the tail word carries the tail's length.
constexpr void fold(std::uint64_t& h, std::uint64_t w) noexcept {
    h = (h ^ w) * kMul;
    h ^= h >> 29;
}

inline void mix(std::uint64_t& h, const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    for (; n >= 8; p += 8, n -= 8) fold(h, load_le64(p));
    fold(h, load_le_partial(p, n) | (static_cast<std::uint64_t>(n) << 59));
}

// The state after a one-byte type tag, as mix(h, &tag, 1) leaves it from the start value.
constexpr std::uint64_t after_tag(unsigned char tag) noexcept {
    std::uint64_t h = kFnvOffset;
    fold(h, std::uint64_t{tag} | std::uint64_t{1} << 59);
    return h;
}

void mix_value(std::uint64_t& h, const Value& v) noexcept {
    auto tag = [&](unsigned char t) { mix(h, &t, 1); };
    switch (v.type()) {
        case Type::Null:
            tag(0);
            return;
        case Type::Bool:
        case Type::Int: {
            tag(2);
            const std::int64_t i = v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int();
            mix(h, &i, sizeof i);
            return;
        }
        case Type::Float: {
            const double f = v.as_float();
            if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18) {
                tag(2);
                const auto i = static_cast<std::int64_t>(f);
                mix(h, &i, sizeof i);
            } else {
                tag(3);
                mix(h, &f, sizeof f);
            }
            return;
        }
        case Type::String:
            tag(4);
            mix(h, v.as_string().data(), v.as_string().size());
            return;
        case Type::Bytes:
            tag(5);
            mix(h, v.as_bytes().data(), v.as_bytes().size());
            return;
        case Type::List:
            tag(6);
            for (const auto& e : v.as_list()) mix_value(h, e);
            tag(7);
            return;
        case Type::Record: {
            // Order-independent, as record equality is: a sum of per-field hashes.
            std::uint64_t sum = 0;
            for (const auto& [k, e] : v.as_record()) {
                std::uint64_t f = kFnvOffset;
                mix(f, k.data(), k.size());
                mix_value(f, e);
                sum += f;
            }
            tag(8);
            mix(h, &sum, sizeof sum);
            return;
        }
        case Type::Tensor: {
            const auto& t = v.as_tensor();
            tag(10);
            mix(h, t.data.data(), t.data.size());
            return;
        }
    }
}
}  // namespace

std::uint64_t stable_hash(const Value& v) noexcept {
    std::uint64_t h;
    if (v.is_string()) {  // the common key (words), without the general walk
        h = after_tag(4);
        const std::string_view s = v.as_string();
        mix(h, s.data(), s.size());
    } else {
        h = kFnvOffset;
        mix_value(h, v);
    }
    // A final avalanche, so that the low bits (hash mod R picks a reader) depend on all.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

}  // namespace chanflow
