// codec.hpp — the engine's binary form of Values, for channels that cross an address space
// (the processes and MPI backends). Little-endian; each value is a tag byte and a payload:
//
//   null, boundary mark, end mark, false, true     the tag alone
//   int, float                                     8 bytes
//   string, bytes                                  u32 length, then the bytes
//   list                                           u32 count, then the values
//   record                                         u32 count, then (u32 length, key, value)
//   tensor                                         dtype u8, rank u8, rank x i64 dims, u64
//                                                  length, then the elements' bytes
//
// The order marks of an ordered fan-out cross as tags of their own. The decoder treats its
// input as untrusted: every length is checked against what is left before anything is
// allocated, nesting is bounded, and a tensor's bytes must match its shape; a bad input is a
// CodecError saying what and where, never a read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "chanflow/value.hpp"

namespace chanflow::detail {

class CodecError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using Bytes = std::vector<unsigned char>;

/// Appends v's encoding to out. Throws CodecError for a string, list or record too large for
/// the format (4 GiB, 2^32 items).
void encode(const Value& v, Bytes& out);

/// A tensor's encoding up to its elements (what encode writes before them), for a transport
/// that sends the elements on their own.
void encode_tensor_header(const Tensor& t, Bytes& out);

/// Decodes values one after the other from a buffer.
class Decoder {
public:
    static constexpr int kMaxDepth = Value::kMaxNesting;  // as values are made

    Decoder(const unsigned char* data, std::size_t size) noexcept
        : begin_(data), p_(data), end_(data + size) {}
    /// The next value; throws CodecError when the input is truncated or malformed.
    Value next();
    bool done() const noexcept { return p_ == end_; }
    std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - begin_); }
    /// Reads what encode_tensor_header wrote: the tensor without its elements, and in
    /// `length` how many bytes they take (checked against the shape).
    Tensor tensor_header(std::uint64_t& length);

private:
    Value value(int depth);
    [[noreturn]] void fail(const std::string& what) const;
    void need(std::size_t n) const;
    std::uint8_t u8();
    std::uint32_t u32();
    std::uint64_t u64();

    const unsigned char* begin_;
    const unsigned char* p_;
    const unsigned char* end_;
};

}  // namespace chanflow::detail
