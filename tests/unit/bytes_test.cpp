// The short-string helpers on the hot paths of hashing, counting and building Values: each
// length class (0, 1-3, 4-7, 8-16, longer) takes its own branch.
#include <doctest/doctest.h>

#include <string>

#include "chanflow/bytes.hpp"
#include "chanflow/value.hpp"

using chanflow::Value;

TEST_CASE("bytes: load_le_partial reads exactly n bytes, little-endian") {
    const unsigned char bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (std::size_t n = 0; n <= 8; ++n) {
        CAPTURE(n);
        std::uint64_t want = 0;
        for (std::size_t k = 0; k < n; ++k) want |= std::uint64_t{bytes[k]} << (8 * k);
        CHECK(chanflow::load_le_partial(bytes, n) == want);
    }
}

TEST_CASE("bytes: equal_bytes sees a difference at any place, at any length") {
    for (std::size_t n = 0; n <= 40; ++n) {
        std::string a(n, 'a');
        for (std::size_t k = 0; k < n; ++k) a[k] = static_cast<char>('a' + k % 26);
        std::string b = a;
        CAPTURE(n);
        CHECK(chanflow::equal_bytes(a.data(), b.data(), n));
        for (std::size_t k = 0; k < n; ++k) {
            CAPTURE(k);
            b[k] = static_cast<char>(b[k] ^ 0x20);
            CHECK_FALSE(chanflow::equal_bytes(a.data(), b.data(), n));
            b[k] = a[k];
        }
    }
}

TEST_CASE("bytes: a string Value keeps every byte, inline or on the heap") {
    for (std::size_t n = 0; n <= 2 * Value::kInlineString; ++n) {
        std::string s(n, '\0');
        for (std::size_t k = 0; k < n; ++k) s[k] = static_cast<char>(1 + k * 7 % 250);
        CAPTURE(n);
        const Value v(s);
        CHECK(v.as_string() == s);
        CHECK(v == Value(std::string(s)));
        if (n > 0) CHECK_FALSE(v == Value(s.substr(1)));
    }
}
