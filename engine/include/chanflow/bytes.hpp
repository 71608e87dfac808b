// chanflow/bytes.hpp — a few bytes as a little-endian number, and equality of short byte
// strings, without a library call: for node writers who hash or compare short strings on a
// hot path (the engine's hash delivery and the word-counting nodes use them).
//
//   std::uint64_t h = 0;
//   for (; n >= 8; p += 8, n -= 8) h = mix(h, chanflow::load_le64(p));
//   if (n) h = mix(h, chanflow::load_le_partial(p, n));
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace chanflow {

inline std::uint64_t load_le64(const unsigned char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    return w;
}

inline std::uint32_t load_le32(const unsigned char* p) noexcept {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap32(w);
    return w;
}

/// The first n bytes at p (n < 8) as a little-endian number, with fixed-size loads only:
/// two overlapping 4-byte loads for 4..7 bytes, three single bytes for 1..3.
inline std::uint64_t load_le_partial(const unsigned char* p, std::size_t n) noexcept {
    if (n >= 4) {
        const std::uint64_t lo = load_le32(p);
        const std::uint64_t hi = load_le32(p + n - 4);
        return lo | hi << (8 * (n - 4));
    }
    if (n == 0) return 0;
    return std::uint64_t{p[0]} | std::uint64_t{p[n / 2]} << (8 * (n / 2)) |
           std::uint64_t{p[n - 1]} << (8 * (n - 1));
}

// Equality of two n-byte strings; up to 16 bytes in a few overlapping loads, where a call to
// memcmp would cost more than the comparison.
inline bool equal_bytes(const char* a, const char* b, std::size_t n) noexcept {
    const auto* x = reinterpret_cast<const unsigned char*>(a);
    const auto* y = reinterpret_cast<const unsigned char*>(b);
    if (n > 16) return std::memcmp(a, b, n) == 0;
    if (n >= 8)
        return ((load_le64(x) ^ load_le64(y)) | (load_le64(x + n - 8) ^ load_le64(y + n - 8))) == 0;
    if (n >= 4)
        return ((load_le32(x) ^ load_le32(y)) | (load_le32(x + n - 4) ^ load_le32(y + n - 4))) == 0;
    return load_le_partial(x, n) == load_le_partial(y, n);
}

}  // namespace chanflow
