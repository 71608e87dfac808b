// The word splitter shared by text.words and text.count_words, and the string counting
// table of count_by_key and text.count_words, against plain reference implementations.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "../../nodes/string_counts.hpp"
#include "../../nodes/words.hpp"

namespace {

// text.words (docs/nodes.md), one byte at a time.
std::vector<std::string> reference_words(const std::string& s, bool lower) {
    auto space = [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    auto punct = [](unsigned char c) {
        return c < 128 &&
               std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").find(static_cast<char>(c)) !=
                   std::string_view::npos;
    };
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && space(static_cast<unsigned char>(s[i]))) ++i;
        std::size_t j = i;
        while (j < s.size() && !space(static_cast<unsigned char>(s[j]))) ++j;
        std::size_t b = i, e = j;
        while (b < e && punct(static_cast<unsigned char>(s[b]))) ++b;
        while (e > b && punct(static_cast<unsigned char>(s[e - 1]))) --e;
        if (b < e) {
            std::string w = s.substr(b, e - b);
            if (lower)
                for (char& c : w)
                    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            out.push_back(std::move(w));
        }
        i = j;
    }
    return out;
}

std::vector<std::string> split(const std::string& s, bool lower) {
    std::vector<std::string> out;
    std::string scratch;
    chanflow::words::for_each_word(s, lower, scratch,
                                   [&](std::string_view w) { out.emplace_back(w); });
    return out;
}

}  // namespace

TEST_CASE("words: the splitter cuts as docs/nodes.md says") {
    using V = std::vector<std::string>;
    CHECK(split("", true).empty());
    CHECK(split(" \t\r\n\v\f ", true).empty());
    CHECK(split("-- ... !?", true).empty());
    CHECK(split("The cat, the HAT.", true) == V{"the", "cat", "the", "hat"});
    CHECK(split("The cat, the HAT.", false) == V{"The", "cat", "the", "HAT"});
    CHECK(split("\"quoted\" (x) don't e-mail", true) == V{"quoted", "x", "don't", "e-mail"});
    CHECK(split("\xc3\x84rger \xc3\xa9t\xc3\xa9", true) == V{"\xc3\x84rger", "\xc3\xa9t\xc3\xa9"});
    // Words across the 16-byte blocks, and one longer than a block.
    CHECK(split("aaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb c", true) ==
          V{"aaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "c"});
    CHECK(split(std::string(40, ' ') + "Z" + std::string(40, ' '), true) == V{"z"});
    // NUL and other control bytes are word bytes, not spaces.
    CHECK(split(std::string("a\0b c", 5), true) == V{std::string("a\0b", 3), "c"});
}

TEST_CASE("words: the splitter agrees with a byte-at-a-time reference on random text") {
    std::mt19937 rng(42);
    const std::string alphabet = "aZ9 .\t\n,-'\"\x80\xff\r\v\f!~@ ";
    for (int round = 0; round < 2000; ++round) {
        std::string s(rng() % 70, ' ');
        for (char& c : s)
            c = rng() % 8 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
        INFO("text: " << s);
        CHECK(split(s, true) == reference_words(s, true));
        CHECK(split(s, false) == reference_words(s, false));
    }
}

TEST_CASE("words: the string counting table counts, grows, and starts afresh") {
    chanflow::detail::StringCounts counts;
    std::map<std::string, std::int64_t> reference;
    std::mt19937 rng(7);
    for (int i = 0; i < 50000; ++i) {
        std::string key(rng() % 20, 'x');
        for (char& c : key) c = static_cast<char>('a' + rng() % 3);
        ++counts[key];
        ++reference[key];
    }
    CHECK(counts.size() == reference.size());
    std::map<std::string, std::int64_t> seen;
    counts.for_each([&](std::string_view k, std::int64_t n) { seen[std::string(k)] = n; });
    CHECK(seen == reference);
    counts.clear();
    CHECK(counts.size() == 0);
    counts["again"] += 2;
    seen.clear();
    counts.for_each([&](std::string_view k, std::int64_t n) { seen[std::string(k)] = n; });
    CHECK(seen == std::map<std::string, std::int64_t>{{"again", 2}});
}
