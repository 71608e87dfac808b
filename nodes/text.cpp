// Text nodes: lines of a file, words of a line, lines into a file.
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "chanflow/node.hpp"

namespace chanflow {
namespace {

Task lines_body(ProcessContext& ctx) {
    const std::string path(ctx.param("path").as_string());
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
    auto& out = ctx.out();
    // Progress in bytes, where the size is known (not for a pipe).
    std::error_code size_error;
    const std::uintmax_t size = std::filesystem::file_size(path, size_error);
    if (!size_error && size > 0) ctx.progress_total(size, ProgressUnit::Bytes);
    std::uint64_t read = 0;
    // Lines go out in batches of up to 64 (one channel lock per batch).
    constexpr std::size_t kBatch = 64;
    std::vector<Value> batch;
    batch.reserve(kBatch);
    for (std::string line; std::getline(file, line);) {
        read += line.size() + 1;
        std::string_view text = line;  // one allocation per line at most: the Value's
        if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
        batch.emplace_back(text);
        if (batch.size() == kBatch) {
            co_await out.write_all(batch);
            ctx.progress_done(read);
        }
    }
    if (file.bad()) throw std::runtime_error("reading '" + path + "' failed");
    co_await out.write_all(batch);
    if (!size_error) ctx.progress_done(size);  // the last line may lack its newline
}

CHANFLOW_NODE({.name = "text.lines",
               .doc = "Emits each line of a text file, without its newline.",
               .params = {param("path", ParamType::String,
                                "the file (relative to the working "
                                "directory)")},
               .ports = {out_port("out", "the lines")},
               .body = lines_body});

// What text.words needs to know of a byte, from one table instead of <cctype> calls.
enum CharClass : unsigned char { kWord = 0, kSpace = 1, kPunct = 2 };
constexpr auto kCharClass = [] {
    std::array<unsigned char, 256> t{};
    for (unsigned char c : std::string_view(" \t\n\v\f\r")) t[c] = kSpace;
    for (unsigned char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) t[c] = kPunct;
    return t;
}();

Task words_body(ProcessContext& ctx) {
    const bool lower = ctx.param("lower").as_bool();
    auto& in = ctx.in();
    auto& out = ctx.out();
    auto cls = [](char c) { return kCharClass[static_cast<unsigned char>(c)]; };
    // Words go out in batches (one channel lock per batch, not per word): a batch is sent
    // when it is large, or when the next line is not at hand, before the read can block.
    constexpr std::size_t kBatch = 1024;
    auto to_lower = [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    char buffer[Value::kInlineString];
    std::vector<Value> words;
    words.reserve(kBatch);
    while (auto x = co_await in.read()) {
        const std::string_view s = x->as_string();
        const std::size_t n = s.size();
        std::size_t i = 0;
        while (i < n) {
            while (i < n && cls(s[i]) == kSpace) ++i;
            std::size_t j = i;
            while (j < n && cls(s[j]) != kSpace) ++j;
            std::size_t b = i, e = j;
            while (b < e && cls(s[b]) == kPunct) ++b;
            while (e > b && cls(s[e - 1]) == kPunct) --e;
            if (b < e) {
                const std::string_view word = s.substr(b, e - b);
                if (!lower) {
                    words.emplace_back(word);
                } else if (word.size() <= sizeof buffer) {  // the common case: no allocation
                    for (std::size_t k = 0; k < word.size(); ++k) buffer[k] = to_lower(word[k]);
                    words.emplace_back(std::string_view(buffer, word.size()));
                } else {
                    std::string copy(word);
                    for (char& c : copy) c = to_lower(c);
                    words.emplace_back(std::move(copy));
                }
            }
            i = j;
        }
        if (words.size() >= kBatch || !in.has_more()) co_await out.write_all(words);
    }
    // has_more() may have seen a line that another reader of a shared input took since.
    co_await out.write_all(words);
}

CHANFLOW_NODE({.name = "text.words",
               .doc = "Splits each input string on whitespace, strips ASCII punctuation at both "
                      "ends, drops empty words and emits each word.",
               .params = {param("lower", ParamType::Bool, "lower-case ASCII letters", true)},
               .ports = {in_port("in", "strings"), out_port("out", "words")},
               .body = words_body});

Task file_write_body(ProcessContext& ctx) {
    const std::string path(ctx.param("path").as_string());
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    if (!file) throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
    auto& in = ctx.in();
    std::string line;
    while (auto x = co_await in.read()) {
        line.clear();
        append_printed(line, *x);
        line += '\n';
        file.write(line.data(), static_cast<std::streamsize>(line.size()));
    }
    file.flush();
    if (!file) throw std::runtime_error("writing '" + path + "' failed");
}

CHANFLOW_NODE({.name = "file.write",
               .doc = "Writes exactly what print would, to a file it truncates first.",
               .params = {param("path", ParamType::String, "the file to write")},
               .ports = {in_port("in", "the values to write")},
               .body = file_write_body});

}  // namespace
}  // namespace chanflow
