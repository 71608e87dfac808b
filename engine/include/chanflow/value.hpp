// chanflow/value.hpp — the message type that flows through channels.
//
// A Value is 16 bytes: a type tag plus either an inline scalar (null, bool, int, float)
// or a pointer to an immutable, reference-counted heap payload (string, bytes, list,
// record, tensor). Copying a Value is a refcount increment; payloads are never mutated
// once shared, so a message can be read by several processes at once.
//
//   chanflow::Value v = chanflow::Value::list({1, 2.5, "three"});
//   assert(v.as_list()[0].as_int() == 1);
//   std::string s = chanflow::to_printed(v);   // [1, 2.5, "three"] (docs/values.md)
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace chanflow {

enum class Type : std::uint8_t { Null, Bool, Int, Float, String, Bytes, List, Record, Tensor };

/// The name of a type as used in messages ("int", "list", ...).
const char* type_name(Type t) noexcept;

enum class DType : std::uint8_t { I32, I64, F32, F64 };

class Value;
namespace detail {
enum class OrderMark : std::uint8_t;
Value order_mark(OrderMark m) noexcept;
OrderMark order_mark_of(const Value& v) noexcept;
}  // namespace detail
using List = std::vector<Value>;
using Field = std::pair<std::string, Value>;
using Record = std::vector<Field>;  // ordered, string-keyed

/// An allocator that leaves the elements a vector grows by uninitialised (numpy.empty, not
/// numpy.zeros): whoever makes a tensor writes all of its bytes, and an arriving tensor is
/// written by the transport straight into them, so zeroing them first would be a wasted pass
/// over memory. Use assign(n, 0) where zeros are wanted.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitializedAllocator<U>;
    };
    UninitializedAllocator() = default;
    template <class U>
    UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;  // default-initialised: for bytes, nothing written
    }
    template <class U, class... A>
    void construct(U* p, A&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<A>(args)...);
    }
};
/// A tensor's bytes: resize() leaves new bytes uninitialised. To fill many at once, resize()
/// then memcpy into data(): with an allocator other than std::allocator, copy and assign
/// from a range construct element by element.
using TensorBytes = std::vector<unsigned char, UninitializedAllocator<unsigned char>>;

/// A dense n-dimensional array; data holds shape-product elements of dtype, row-major.
struct Tensor {
    DType dtype = DType::F64;
    std::vector<std::int64_t> shape;
    TensorBytes data;
    std::size_t size() const noexcept;  // number of elements
    /// Element i in row-major order, as a number: i32 and i64 as ints, f32 and f64 as floats.
    Value element(std::size_t i) const;
};

/// "i32", "i64", "f32" or "f64".
const char* dtype_name(DType t) noexcept;
/// The bytes of one element: 4 or 8.
std::size_t dtype_size(DType t) noexcept;

/// Thrown by accessors when a Value holds another type than asked for.
class TypeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Thrown when a value cannot be made: a list or record nested deeper than
/// Value::kMaxNesting, a tensor of more than Value::kMaxDimensions.
class ValueError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
struct HeapBase {
    std::atomic<std::uint32_t> refs{1};
    std::uint8_t nesting = 0;  // a list or record: 1 + the deepest nesting of its elements

    // A payload is often made on one worker and freed on another (a line read by one
    // process, split by the next): payloads come from oneTBB's scalable allocator, whose
    // per-thread pools take such frees back without contention.
    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;
};
/// A string payload: one allocation holds the header and then the bytes.
struct HeapString : HeapBase {
    std::size_t size = 0;
    const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
};
template <class T>
struct Heap : HeapBase {
    T payload;
    template <class... A>
    explicit Heap(A&&... a) : payload(std::forward<A>(a)...) {}
};
}  // namespace detail

class Value {
public:
    /// Strings of up to this many bytes live inside the Value, without a heap payload.
    static constexpr std::size_t kInlineString = 14;
    /// Lists and records nest at most this deep ([[1]] is 2 deep): the same rule on every
    /// backend, checked where a value is made (ValueError), so that nothing that walks a
    /// value (printing, hashing, sending, freeing) recurses deeper.
    static constexpr int kMaxNesting = 64;
    /// A tensor has at most this many dimensions.
    static constexpr std::size_t kMaxDimensions = 32;

    Value() noexcept { u_.s = {Type::Null, 0, {0}}; }
    Value(std::nullptr_t) noexcept : Value() {}
    Value(bool b) noexcept { u_.s = {Type::Bool, 0, {b ? 1 : 0}}; }
    Value(int i) noexcept { u_.s = {Type::Int, 0, {i}}; }
    Value(long i) noexcept { u_.s = {Type::Int, 0, {i}}; }
    Value(long long i) noexcept { u_.s = {Type::Int, 0, {static_cast<std::int64_t>(i)}}; }
    Value(double f) noexcept {
        u_.s = {Type::Float, 0, {0}};
        u_.s.f = f;
    }
    Value(const char* s) : Value(std::string_view(s)) {}
    Value(std::string_view s) {
        if (s.size() <= kInlineString) {
            u_.in = {Type::String, static_cast<std::uint8_t>(s.size() + 1), {}};
            copy_short(u_.in.chars, s.data(), s.size());
        } else {
            set_heap_string(s);
        }
    }
    Value(const std::string& s) : Value(std::string_view(s)) {}
    Value(List l);
    Value(Record r);
    Value(Tensor t);
    static Value bytes(std::vector<unsigned char> b);
    static Value list(std::initializer_list<Value> items) { return Value(List(items)); }

    Value(const Value& o) noexcept : u_(o.u_) {
        if (is_heap()) u_.s.p->refs.fetch_add(1, std::memory_order_relaxed);
    }
    Value(Value&& o) noexcept : u_(o.u_) { o.clear(); }
    Value& operator=(const Value& o) noexcept {
        Value tmp(o);
        swap(tmp);
        return *this;
    }
    Value& operator=(Value&& o) noexcept {
        if (this != &o) {
            if (is_heap()) release();
            u_ = o.u_;
            o.clear();
        }
        return *this;
    }
    ~Value() {
        if (is_heap()) release();
    }
    void swap(Value& o) noexcept { std::swap(u_, o.u_); }

    Type type() const noexcept { return u_.s.type; }
    bool is_null() const noexcept { return u_.s.type == Type::Null; }
    bool is_bool() const noexcept { return u_.s.type == Type::Bool; }
    bool is_int() const noexcept { return u_.s.type == Type::Int; }
    bool is_float() const noexcept { return u_.s.type == Type::Float; }
    bool is_number() const noexcept { return is_int() || is_float(); }
    bool is_string() const noexcept { return u_.s.type == Type::String; }
    bool is_bytes() const noexcept { return u_.s.type == Type::Bytes; }
    bool is_list() const noexcept { return u_.s.type == Type::List; }
    bool is_record() const noexcept { return u_.s.type == Type::Record; }
    bool is_tensor() const noexcept { return u_.s.type == Type::Tensor; }

    bool as_bool() const { return check(Type::Bool), u_.s.i != 0; }
    std::int64_t as_int() const { return check(Type::Int), u_.s.i; }
    double as_float() const { return check(Type::Float), u_.s.f; }
    /// An int or a float as a double.
    double as_number() const;
    /// The bytes of a string; valid while this Value lives (short strings live inside it).
    std::string_view as_string() const {
        check(Type::String);
        if (u_.s.small) return {u_.in.chars, static_cast<std::size_t>(u_.s.small - 1)};
        const auto* h = static_cast<const detail::HeapString*>(u_.s.p);
        return {h->data(), h->size};
    }
    const std::vector<unsigned char>& as_bytes() const {
        return check(Type::Bytes), heap<std::vector<unsigned char>>();
    }
    const List& as_list() const { return check(Type::List), heap<List>(); }
    const Record& as_record() const { return check(Type::Record), heap<Record>(); }
    const Tensor& as_tensor() const { return check(Type::Tensor), heap<Tensor>(); }

    /// The field of a record, or nullptr when absent (or when this is not a record).
    const Value* field(std::string_view name) const noexcept;

    /// How deep lists and records nest in this value: 0 for a scalar, string, bytes or
    /// tensor, 1 for a list of those, and so on (at most kMaxNesting).
    int nesting() const noexcept {
        return type() == Type::List || type() == Type::Record ? u_.s.p->nesting : 0;
    }

    /// Structural equality with Python's numeric rules (1 == 1.0, nan != nan).
    friend bool operator==(const Value& a, const Value& b) noexcept;
    friend bool operator!=(const Value& a, const Value& b) noexcept { return !(a == b); }

private:
    friend Value detail::order_mark(detail::OrderMark m) noexcept;
    friend detail::OrderMark detail::order_mark_of(const Value& v) noexcept;
    static constexpr std::int64_t kOrderMark = 0x6f72646572656400;  // a null's i is 0 otherwise

    // Two layouts share the type tag (and `small`, their common initial sequence): a scalar
    // or heap pointer, or a short string's bytes in place. Copying the union copies all 16
    // bytes whichever layout is active.
    struct Scalar {
        Type type;
        std::uint8_t small;  // String: 0 = on the heap, else the inline length + 1
        union {
            std::int64_t i;
            double f;
            detail::HeapBase* p;
        };
    };
    struct InlineString {
        Type type;
        std::uint8_t small;
        char chars[kInlineString];
    };
    union Rep {
        Scalar s;
        InlineString in;
    };

    bool is_heap() const noexcept { return u_.s.type >= Type::String && u_.s.small == 0; }
    // Up to 16 bytes in at most four moves: a call to memcpy would cost more than the copy.
    static void copy_short(char* to, const char* from, std::size_t n) noexcept {
        if (n >= 8) {
            std::uint64_t a, b;
            std::memcpy(&a, from, 8);
            std::memcpy(&b, from + n - 8, 8);
            std::memcpy(to, &a, 8);
            std::memcpy(to + n - 8, &b, 8);
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, from, 4);
            std::memcpy(&b, from + n - 4, 4);
            std::memcpy(to, &a, 4);
            std::memcpy(to + n - 4, &b, 4);
        } else if (n > 0) {
            to[0] = from[0];
            to[n / 2] = from[n / 2];
            to[n - 1] = from[n - 1];
        }
    }
    void set_heap_string(std::string_view s);
    void clear() noexcept { u_.s = {Type::Null, 0, {0}}; }  // i = 0: not an order mark
    void check(Type t) const {
        if (u_.s.type != t) throw_type(t);
    }
    [[noreturn]] void throw_type(Type wanted) const;
    void release() noexcept;
    template <class T>
    const T& heap() const noexcept {
        return static_cast<detail::Heap<T>*>(u_.s.p)->payload;
    }

    Rep u_;
};

static_assert(sizeof(Value) == 16, "Value is meant to stay 16 bytes");

/// The printed form (docs/values.md): strings raw at top level, containers as JSON.
std::string to_printed(const Value& v);
/// Appends the printed form to out (no allocation for scalars beyond out's growth).
void append_printed(std::string& out, const Value& v);
/// The JSON form used inside containers (strings quoted and escaped, NaN/Infinity).
void append_json(std::string& out, const Value& v);
/// A float as Python's repr(float) writes it: 1.0, 0.1, 1e+16, 1e-05, nan, inf.
void append_float_repr(std::string& out, double f);

/// The fixed hash of `deliver: hash` (docs/graph-format.md): the same on every backend and run.
std::uint64_t stable_hash(const Value& v) noexcept;

namespace detail {
/// The marks of `ordered: true` fan-out (see ordered_fanout.cpp), nulls that no graph can
/// make: a replica writes Boundary between the outputs of one input and the next, and End
/// when its input has ended.
enum class OrderMark : std::uint8_t { None, Boundary, End };
inline Value order_mark(OrderMark m) noexcept {
    Value v;
    v.u_.s.i = Value::kOrderMark + static_cast<std::int64_t>(m);
    return v;
}
inline OrderMark order_mark_of(const Value& v) noexcept {
    if (v.u_.s.type != Type::Null || v.u_.s.i == 0) return OrderMark::None;
    return static_cast<OrderMark>(v.u_.s.i - Value::kOrderMark);
}
}  // namespace detail

}  // namespace chanflow
