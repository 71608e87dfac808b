// How text.words and text.count_words cut a string into words (docs/nodes.md): split on ASCII
// whitespace, strip ASCII punctuation at both ends, drop empty words, optionally lower-case
// A-Z. One definition, so that the two nodes always agree on what a word is.
//
// The string is first copied (lower-cased where asked) into a scratch buffer padded with
// spaces; word boundaries are then found 16 bytes at a time (SSE2 where the target has it,
// a byte table otherwise): a word costs a few instructions instead of a few per byte.
#pragma once

#include <array>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace chanflow::words {

enum CharClass : unsigned char { kWord = 0, kSpace = 1, kPunct = 2 };

// What the splitter needs to know of a byte, from one table instead of <cctype> calls.
inline constexpr auto kCharClass = [] {
    std::array<unsigned char, 256> t{};
    for (unsigned char c : std::string_view(" \t\n\v\f\r")) t[c] = kSpace;
    for (unsigned char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) t[c] = kPunct;
    return t;
}();

inline CharClass class_of(char c) noexcept {
    return static_cast<CharClass>(kCharClass[static_cast<unsigned char>(c)]);
}

namespace detail {

inline constexpr std::size_t kBlock = 16;

// s into out, A-Z lower-cased if asked, followed by kBlock spaces (so that a block loaded
// anywhere in s stays inside out, and a scan for a space ends at s's end at the latest).
inline void copy_padded(std::string_view s, bool lower, std::string& out) {
    out.resize(s.size() + kBlock);
    char* d = out.data();
    std::size_t i = 0;
    if (lower) {
#if defined(__SSE2__)
        const __m128i a = _mm_set1_epi8('A'), z_minus_a = _mm_set1_epi8('Z' - 'A');
        const __m128i bit = _mm_set1_epi8(0x20);
        for (; i + kBlock <= s.size(); i += kBlock) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
            const __m128i off = _mm_sub_epi8(v, a);  // A-Z: 0..25, unsigned
            const __m128i upper = _mm_cmpeq_epi8(_mm_min_epu8(off, z_minus_a), off);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                             _mm_or_si128(v, _mm_and_si128(upper, bit)));
        }
#endif
        for (; i < s.size(); ++i) {
            const char c = s[i];
            d[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        }
    } else {
        std::memcpy(d, s.data(), s.size());
    }
    std::memset(d + s.size(), ' ', kBlock);
}

#if defined(__SSE2__)
// Bit k set where byte p[k] is whitespace (space, or \t \n \v \f \r: 9..13).
inline unsigned space_mask(const char* p) noexcept {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i off = _mm_sub_epi8(v, _mm_set1_epi8(9));  // 9..13: 0..4, unsigned
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(off, _mm_set1_epi8(4)), off);
    const __m128i space = _mm_cmpeq_epi8(v, _mm_set1_epi8(' '));
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(control, space)));
}

// The first index from i on whose byte is (or is not) whitespace; the padding stops both.
inline std::size_t next_space(const char* p, std::size_t i) noexcept {
    for (;; i += kBlock)
        if (const unsigned m = space_mask(p + i))
            return i + static_cast<unsigned>(__builtin_ctz(m));
}
inline std::size_t next_non_space(const char* p, std::size_t i, std::size_t end) noexcept {
    for (; i < end; i += kBlock)
        if (const unsigned m = ~space_mask(p + i) & 0xffffu)
            return std::min(end, i + static_cast<unsigned>(__builtin_ctz(m)));
    return end;
}
#else
inline std::size_t next_space(const char* p, std::size_t i) noexcept {
    while (class_of(p[i]) != kSpace) ++i;
    return i;
}
inline std::size_t next_non_space(const char* p, std::size_t i, std::size_t end) noexcept {
    while (i < end && class_of(p[i]) == kSpace) ++i;
    return i;
}
#endif

}  // namespace detail

// Calls f(word) for each word of s, in order. The word lives in `scratch` until the next
// call of for_each_word with it: f copies what it keeps.
template <class F>
void for_each_word(std::string_view s, bool lower, std::string& scratch, F&& f) {
    detail::copy_padded(s, lower, scratch);
    const char* p = scratch.data();
    const std::size_t n = s.size();
    for (std::size_t i = detail::next_non_space(p, 0, n); i < n;) {
        const std::size_t j = detail::next_space(p, i);
        std::size_t b = i, e = j;
        while (b < e && class_of(p[b]) == kPunct) ++b;
        while (e > b && class_of(p[e - 1]) == kPunct) --e;
        if (b < e) f(std::string_view(p + b, e - b));
        i = detail::next_non_space(p, j, n);
    }
}

}  // namespace chanflow::words
