// Text nodes: lines of a file, words of a line (or their counts), lines into a file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "chanflow/node.hpp"
#include "string_counts.hpp"
#include "words.hpp"

namespace chanflow {
namespace {

// A line longer than this fails the process instead of filling memory (a file without a
// newline, such as /dev/zero).
constexpr std::size_t kMaxLine = std::size_t{256} << 20;

Task lines_body(ProcessContext& ctx) {
    const std::string path(ctx.param("path").as_string());
    struct File {
        int fd;
        ~File() {
            if (fd >= 0) ::close(fd);
        }
    } const file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    const int fd = file.fd;
    if (fd < 0) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
    auto& out = ctx.out();
    // Progress in bytes, where the size is known (not for a pipe).
    struct stat st {};
    const bool sized = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    if (sized) ctx.progress_total(static_cast<std::uint64_t>(st.st_size), ProgressUnit::Bytes);
    // The file is read in blocks and cut at newlines; a line that spans blocks is gathered
    // in `partial`. Lines go out in batches of up to 64 (one channel lock per batch).
    constexpr std::size_t kBatch = 64;
    std::vector<Value> batch;
    batch.reserve(kBatch);
    std::vector<char> block(std::size_t{1} << 20);
    std::string partial;
    std::uint64_t read_bytes = 0, lines = 0;
    auto emit = [&](std::string_view line) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        batch.emplace_back(line);
        ++lines;
    };
    for (;;) {
        const ssize_t n = ::read(fd, block.data(), block.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw std::runtime_error("reading '" + path + "' failed: " + std::strerror(errno));
        if (n == 0) break;
        read_bytes += static_cast<std::uint64_t>(n);
        std::string_view rest(block.data(), static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos;) {
            if (partial.empty()) {
                emit(rest.substr(0, nl));
            } else {
                partial.append(rest.substr(0, nl));
                emit(partial);
                partial.clear();
            }
            rest.remove_prefix(nl + 1);
            if (batch.size() == kBatch) co_await out.write_all(batch);
        }
        if (partial.size() + rest.size() > kMaxLine)
            throw std::runtime_error("line " + std::to_string(lines + 1) + " of '" + path +
                                     "' is longer than " + std::to_string(kMaxLine >> 20) +
                                     " MiB");
        partial.append(rest);
        ctx.progress_done(read_bytes);
    }
    if (!partial.empty()) emit(partial);  // the last line may lack its newline
    co_await out.write_all(batch);
    if (sized) ctx.progress_done(static_cast<std::uint64_t>(st.st_size));
}

CHANFLOW_NODE({.name = "text.lines",
               .doc = "Emits each line of a text file, without its newline.",
               .params = {param("path", ParamType::String,
                                "the file (relative to the working "
                                "directory)")},
               .ports = {out_port("out", "the lines")},
               .body = lines_body});

Task words_body(ProcessContext& ctx) {
    const bool lower = ctx.param("lower").as_bool();
    auto& in = ctx.in();
    auto& out = ctx.out();
    // Words go out in batches (one channel lock per batch, not per word): a batch is sent
    // when it is large, or when the next line is not at hand, before the read can block;
    // as an ordered replica, before every read (which marks where a line's words end).
    constexpr std::size_t kBatch = 1024;
    std::vector<Value> batch;
    batch.reserve(kBatch);
    std::string scratch;
    while (auto x = co_await in.read()) {
        words::for_each_word(x->as_string(), lower, scratch,
                             [&](std::string_view word) { batch.emplace_back(word); });
        if (batch.size() >= kBatch || in.marks_boundaries() || !in.has_more())
            co_await out.write_all(batch);
    }
    // has_more() may have seen a line that another reader of a shared input took since.
    co_await out.write_all(batch);
}

CHANFLOW_NODE({.name = "text.words",
               .doc = "Splits each input string on whitespace, strips ASCII punctuation at both "
                      "ends, drops empty words and emits each word.",
               .params = {param("lower", ParamType::Bool, "lower-case ASCII letters", true)},
               .ports = {in_port("in", "strings"), out_port("out", "words")},
               .body = words_body});

// Built outside the coroutine: GCC 12 miscompiles initializer lists inside co_await
// expressions.
Value word_count(std::string_view word, std::int64_t n) {
    List pair;
    pair.reserve(2);
    pair.emplace_back(word);
    pair.emplace_back(n);
    return Value(std::move(pair));
}

// The counts held so far as [word, n] pairs sorted by word (the same output on every
// backend, whatever the table's order); forgets them.
std::vector<Value> take_word_counts(detail::StringCounts& counts) {
    std::vector<std::pair<std::string_view, std::int64_t>> held;
    held.reserve(counts.size());
    counts.for_each([&](std::string_view w, std::int64_t n) { held.emplace_back(w, n); });
    std::sort(held.begin(), held.end());
    std::vector<Value> pairs;
    pairs.reserve(held.size());
    for (const auto& [w, n] : held) pairs.push_back(word_count(w, n));
    counts.clear();
    return pairs;
}

// text.words and count_by_key in one process: MapReduce's combiner. A word count's mappers
// then send each distinct word once per flush instead of every occurrence.
Task count_words_body(ProcessContext& ctx) {
    const bool lower = ctx.param("lower").as_bool();
    const std::int64_t max_words = ctx.param("max_words").as_int();
    auto& in = ctx.in();
    auto& out = ctx.out();
    detail::StringCounts counts;
    std::string scratch;
    while (auto x = co_await in.read()) {
        words::for_each_word(x->as_string(), lower, scratch,
                             [&](std::string_view word) { ++counts[word]; });
        if (counts.size() >= static_cast<std::size_t>(max_words)) {
            auto pairs = take_word_counts(counts);
            co_await out.write_all(pairs);
        }
    }
    auto pairs = take_word_counts(counts);
    co_await out.write_all(pairs);
}

CHANFLOW_NODE({.name = "text.count_words",
               .doc = "Splits its input strings into words as text.words does and counts them "
                      "(a map-side combiner); emits [word, n] pairs sorted by word at end, and "
                      "whenever it holds max_words distinct words (then starts afresh), so "
                      "count_by_key downstream adds the partial counts up.",
               .params = {param("lower", ParamType::Bool, "lower-case ASCII letters", true),
                          param("max_words", ParamType::Int,
                                "distinct words held before the counts go out", 100000)
                              .within(1)},
               .ports = {in_port("in", "strings"), out_port("out", "[word, n] pairs")},
               .body = count_words_body});

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
