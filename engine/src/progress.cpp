// The progress line of `chanflow run --progress` (chanflow/progress.hpp).
#include "chanflow/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace chanflow {
namespace {

std::string printf_string(const char* format, double a, const char* b = "") {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, a, b);
    return buf;
}

// 1 536 -> "1.5 KiB"; below 1 KiB the exact count of bytes.
std::string bytes_text(double n) {
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) return printf_string("%.0f B", n);
    int u = 0;
    for (n /= 1024; n >= 1024 && u < 3; ++u) n /= 1024;
    return printf_string("%.1f %s", n, units[u]);
}

// 12 345 678 -> "12.3M" (three digits); below 10 000 the exact count.
std::string count_text(double n) {
    if (n < 10000) return printf_string("%.0f", n);
    static const char* const units[] = {"k", "M", "G", "T"};
    int u = 0;
    for (n /= 1000; n >= 999.5 && u < 3; ++u) n /= 1000;
    return printf_string(n < 9.995 ? "%.2f%s" : n < 99.95 ? "%.1f%s" : "%.0f%s", n, units[u]);
}

std::string amount_text(double n, ProgressUnit unit) {
    return unit == ProgressUnit::Bytes ? bytes_text(n) : count_text(n);
}

// 4.25 -> "4.2s"; 75 -> "1:15"; an hour or more -> "1:02:03".
std::string time_text(double seconds) {
    seconds = std::max(0.0, seconds);
    if (seconds < 59.95) return printf_string("%.1fs", seconds);
    const auto s = static_cast<long>(std::round(seconds));
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

double fraction(const SourceProgress& s) {
    return s.total == 0 ? 1.0
                        : std::min(1.0, static_cast<double>(s.done) / static_cast<double>(s.total));
}

}  // namespace

std::string progress_line(const Progress& p, std::size_t width) {
    const double elapsed = std::max(p.elapsed, 1e-9);
    if (p.sources.empty()) {
        const auto n = static_cast<double>(p.messages);
        std::string line = count_text(n) + " messages  " + count_text(n / elapsed) + " msg/s  " +
                           time_text(p.elapsed);
        return line.substr(0, width);
    }
    // The run ends when its slowest source does: that one drives the bar.
    const SourceProgress& s =
        *std::min_element(p.sources.begin(), p.sources.end(),
                          [](const auto& a, const auto& b) { return fraction(a) < fraction(b); });
    const double f = fraction(s);
    const double rate = static_cast<double>(s.done) / elapsed;
    const char* per = s.unit == ProgressUnit::Bytes ? "/s" : " msg/s";
    std::string tail = printf_string(" %3.0f%%  ", std::floor(f * 100)) +
                       amount_text(static_cast<double>(s.done), s.unit) + " / " +
                       amount_text(static_cast<double>(s.total), s.unit) + "  " +
                       amount_text(rate, s.unit) + per + "  ";
    if (p.final)
        tail += "in " + time_text(p.elapsed);
    else if (s.done == 0)
        tail += "ETA --:--";
    else
        tail += "ETA " + time_text(static_cast<double>(s.total - std::min(s.done, s.total)) / rate);
    const std::string head = s.name + " ";
    constexpr std::size_t kMinBar = 10;
    if (head.size() + tail.size() + kMinBar + 2 > width) return (head + tail).substr(0, width);
    const std::size_t bar = std::min<std::size_t>(40, width - head.size() - tail.size() - 2);
    const auto filled = static_cast<std::size_t>(std::floor(f * static_cast<double>(bar)));
    return head + "[" + std::string(filled, '#') + std::string(bar - filled, '.') + "]" + tail;
}

}  // namespace chanflow
