// chanflow-textgen — writes a deterministic text for word-count benchmarks.
//
//   chanflow-textgen --mb 50 [--seed 1] [--vocabulary 10000] [-o FILE]
//
// It writes whole lines up to N MiB (at most one line short of it). The words come from a
// vocabulary of made-up words (syllables drawn by the seed), with Zipf-like frequencies: the word
// of rank k appears with probability proportional to 1/k. Lines hold 6 to 17 words; now and then a
// word is capitalised or followed by punctuation, so that a word count has to lower-case and strip.
// The same arguments give the same bytes on every machine: the generator is SplitMix64 and integer
// arithmetic only, nothing from <random>, whose distributions differ between standard libraries.
// The tool does not use the chanflow library.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) for small n (the modulo bias is far below what a benchmark notices).
    std::uint64_t below(std::uint64_t n) { return next() % n; }
};

std::vector<std::string> make_vocabulary(std::size_t size, SplitMix64& rng) {
    static constexpr std::string_view kOnsets[] = {
        "b", "c", "d",  "f",  "g",  "h",  "j",  "k",  "l",  "m",  "n",  "p",  "r",  "s",  "t", "v",
        "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "sl", "st", "th", "tr"};
    static constexpr std::string_view kVowels[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou"};
    static constexpr std::string_view kCodas[] = {"", "", "", "n", "r", "s", "t", "l", "nd", "st"};
    std::vector<std::string> words;
    std::unordered_set<std::string> seen;
    words.reserve(size);
    while (words.size() < size) {
        // Frequent words come first and are short, as in natural text.
        const std::uint64_t syllables = 1 + rng.below(words.size() < 100 ? 2 : 4);
        std::string w;
        for (std::uint64_t s = 0; s < syllables; ++s) {
            w += kOnsets[rng.below(std::size(kOnsets))];
            w += kVowels[rng.below(std::size(kVowels))];
        }
        w += kCodas[rng.below(std::size(kCodas))];
        if (seen.insert(w).second) words.push_back(std::move(w));
    }
    return words;
}

// Cumulative Zipf weights (1/k) scaled to 2^62, for sampling by binary search.
std::vector<std::uint64_t> zipf_table(std::size_t size) {
    double total = 0;
    for (std::size_t k = 1; k <= size; ++k) total += 1.0 / static_cast<double>(k);
    std::vector<std::uint64_t> cumulative(size);
    double acc = 0;
    for (std::size_t k = 1; k <= size; ++k) {
        acc += 1.0 / static_cast<double>(k);
        cumulative[k - 1] = static_cast<std::uint64_t>(acc / total * 4611686018427387904.0);
    }
    cumulative.back() = 4611686018427387904ULL;
    return cumulative;
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "chanflow-textgen: %s\n"
                 "usage: chanflow-textgen --mb N [--seed S] [--vocabulary V] [-o FILE]\n",
                 why);
    std::exit(2);
}

long long number_arg(const char* flag, const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    if (!*text || *end || v < 0) {
        std::string why = std::string(flag) + " wants a whole number >= 0, got '" + text + "'";
        usage(why.c_str());
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    long long mb = -1;
    std::uint64_t seed = 1;
    long long vocabulary = 10000;
    const char* path = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf("usage: chanflow-textgen --mb N [--seed S] [--vocabulary V] [-o FILE]\n");
            return 0;
        }
        if (i + 1 >= argc) usage(("missing value after " + std::string(a)).c_str());
        if (a == "--mb")
            mb = number_arg("--mb", argv[++i]);
        else if (a == "--seed")
            seed = static_cast<std::uint64_t>(number_arg("--seed", argv[++i]));
        else if (a == "--vocabulary")
            vocabulary = number_arg("--vocabulary", argv[++i]);
        else if (a == "-o")
            path = argv[++i];
        else
            usage(("unknown argument '" + std::string(a) + "'").c_str());
    }
    if (mb < 0) usage("--mb is required");
    if (vocabulary < 1 || vocabulary > 1000000) usage("--vocabulary must be 1..1000000");

    std::FILE* out = path ? std::fopen(path, "wb") : stdout;
    if (!out) {
        std::perror(path);
        return 1;
    }
    SplitMix64 rng{seed};
    const auto words = make_vocabulary(static_cast<std::size_t>(vocabulary), rng);
    const auto table = zipf_table(words.size());

    const std::uint64_t target = static_cast<std::uint64_t>(mb) << 20;
    std::uint64_t written = 0;
    std::string line;
    while (written < target) {
        line.clear();
        const std::uint64_t n = 6 + rng.below(12);
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::uint64_t u = rng.next() >> 2;
            const auto k = static_cast<std::size_t>(
                std::upper_bound(table.begin(), table.end(), u) - table.begin());
            const std::string& w = words[std::min(k, words.size() - 1)];
            if (i) line += ' ';
            const std::uint64_t style = rng.below(64);
            line += w;
            if (i == 0 || style == 0) line[line.size() - w.size()] -= 'a' - 'A';
            if (style == 1) line += ',';
            if (style == 2 && i + 1 < n) line += ';';
        }
        line += ".\n";
        if (written + line.size() > target) break;  // whole lines only, up to N MiB
        if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
            std::perror(path ? path : "stdout");
            return 1;
        }
        written += line.size();
    }
    if (std::fclose(out) != 0) {
        std::perror(path ? path : "stdout");
        return 1;
    }
    return 0;
}
