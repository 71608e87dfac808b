// Small text helpers shared by the integration tests.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace chanflow::test {

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// The lines of text, sorted, each ending in a newline: for outputs whose order is open.
inline std::string sorted_lines(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& l : lines) out += l + "\n";
    return out;
}

/// In run statistics' JSON (run --stats=FILE): the number after "key": in the object that
/// starts with "name": "NAME"; -1 when there is none.
inline long long stats_field(const std::string& json, const std::string& name,
                             const std::string& key) {
    const auto at = json.find("{\"name\": \"" + name + "\"");
    if (at == std::string::npos) return -1;
    const std::string object = json.substr(at, json.find('}', at) - at);
    std::smatch m;
    if (!std::regex_search(object, m, std::regex("\"" + key + "\": ([0-9]+)"))) return -1;
    return std::stoll(m[1].str());
}

}  // namespace chanflow::test
