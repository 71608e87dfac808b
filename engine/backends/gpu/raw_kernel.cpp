// raw_kernel.cpp — reading a gpu.kernel's arguments from its CUDA C, and matching them.
// Not a C++ parser: comments are blanked, the entry is found as `__global__ ... ENTRY (`, and
// each argument is read as qualifiers, a type, an optional `*` and a name.
#include "raw_kernel.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace chanflow::gpu {
namespace {

bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// The source with its comments turned to spaces (newlines kept), so that offsets stay where
// they were.
std::string blank_comments(const std::string& s) {
    std::string out = s;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out.compare(i, 2, "//") == 0) {
            while (i < out.size() && out[i] != '\n') out[i++] = ' ';
        } else if (out.compare(i, 2, "/*") == 0) {
            const std::size_t end = out.find("*/", i + 2);
            const std::size_t stop = end == std::string::npos ? out.size() : end + 2;
            for (; i < stop; ++i)
                if (out[i] != '\n') out[i] = ' ';
            --i;
        }
    }
    return out;
}

// Offsets of `word` standing as a whole identifier.
std::vector<std::size_t> find_word(const std::string& s, const std::string& word) {
    std::vector<std::size_t> at;
    for (std::size_t i = s.find(word); i != std::string::npos; i = s.find(word, i + 1)) {
        const bool starts = i == 0 || !ident_char(s[i - 1]);
        const bool ends = i + word.size() >= s.size() || !ident_char(s[i + word.size()]);
        if (starts && ends) at.push_back(i);
    }
    return at;
}

std::size_t skip_space(const std::string& s, std::size_t i) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return i;
}

// The entry's "(": the first use of ENTRY followed by "(" in a __global__ declaration (one
// that began after the last `;`, `{` or `}`). One pass over the source, however many times
// a hostile one repeats the name.
std::size_t open_paren(const std::string& clean, const std::string& entry) {
    const std::vector<std::size_t> globals = find_word(clean, "__global__");
    std::size_t declaration = 0, scanned = 0, g = 0;
    std::size_t last_global = std::string::npos;
    for (std::size_t at : find_word(clean, entry)) {
        for (; scanned < at; ++scanned)
            if (clean[scanned] == ';' || clean[scanned] == '{' || clean[scanned] == '}')
                declaration = scanned + 1;
        while (g < globals.size() && globals[g] < at) last_global = globals[g++];
        const std::size_t paren = skip_space(clean, at + entry.size());
        if (paren >= clean.size() || clean[paren] != '(') continue;
        if (last_global == std::string::npos || last_global < declaration) continue;
        return paren;
    }
    return std::string::npos;
}

KernelArg read_argument(const std::string& text, std::size_t offset) {
    KernelArg arg;
    arg.offset = offset + (skip_space(text, 0) < text.size() ? skip_space(text, 0) : 0);
    std::vector<std::string> words;
    int stars = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (ident_char(text[i])) {
            std::size_t j = i;
            while (j < text.size() && ident_char(text[j])) ++j;
            words.push_back(text.substr(i, j - i));
            i = j;
        } else if (text[i] == '*') {
            ++stars;
            ++i;
        } else if (std::isspace(static_cast<unsigned char>(text[i]))) {
            ++i;
        } else {
            throw KernelSourceError(
                std::string("cannot read this kernel argument (at '") + text[i] + "')", offset + i);
        }
    }
    if (words.size() < 2 || stars > 1)
        throw KernelSourceError(
            "cannot read this kernel argument: a type, at most one '*' "
            "and a name are expected",
            arg.offset);
    arg.name = words.back();
    words.pop_back();
    arg.pointer = stars == 1;
    std::string type;
    for (const auto& w : words) {
        if (w == "const") {
            arg.is_const = true;
        } else if (w != "__restrict__" && w != "restrict" && w != "volatile") {
            type += (type.empty() ? "" : " ") + w;
        }
    }
    arg.type = type;
    return arg;
}

std::string names_of(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? "none" : s;
}

}  // namespace

std::optional<DType> KernelArg::dtype() const {
    if (type == "float") return DType::F32;
    if (type == "double") return DType::F64;
    if (type == "int" || type == "int32_t") return DType::I32;
    if (type == "long long" || type == "long long int" || type == "int64_t" || type == "long")
        return DType::I64;
    return std::nullopt;
}

std::size_t entry_offset(const std::string& source, const std::string& entry) {
    const std::string clean = blank_comments(source);
    const std::size_t paren = open_paren(clean, entry);
    if (paren == std::string::npos) return 0;
    std::size_t at = paren;
    while (at > 0 && !ident_char(clean[at - 1])) --at;
    return at - std::min(at, entry.size());
}

std::vector<KernelArg> kernel_arguments(const std::string& source, const std::string& entry) {
    const std::string clean = blank_comments(source);
    // A graph file does not reach into this machine's files through the compiler.
    for (std::size_t at = 0; at < clean.size(); at = clean.find('\n', at) + 1) {
        const std::size_t hash = skip_space(clean, at);
        if (hash < clean.size() && clean[hash] == '#' &&
            clean.compare(skip_space(clean, hash + 1), 7, "include") == 0)
            throw KernelSourceError("a kernel's source may not #include files", hash);
        if (clean.find('\n', at) == std::string::npos) break;
    }
    const std::size_t paren = open_paren(clean, entry);
    if (paren == std::string::npos)
        throw KernelSourceError(
            "no kernel 'extern \"C\" __global__ void " + entry + "(...)' in the source", 0);
    const std::size_t at = paren - std::min(paren, entry.size());
    if (clean.rfind("extern \"C\"", at) == std::string::npos)
        throw KernelSourceError("kernel '" + entry + "' must be declared extern \"C\"", at);
    const std::size_t close = clean.find(')', paren);
    if (close == std::string::npos)
        throw KernelSourceError("the arguments of kernel '" + entry + "' do not end", paren);
    std::vector<KernelArg> args;
    std::size_t start = paren + 1;
    const std::string list = clean.substr(start, close - start);
    if (list.find_first_not_of(" \t\r\n") == std::string::npos ||
        list.find_first_not_of(" \t\r\n") == list.find("void"))
        return args;
    for (std::size_t i = start; i <= close; ++i) {
        if (i == close || clean[i] == ',') {
            args.push_back(read_argument(clean.substr(start, i - start), start));
            start = i + 1;
        }
    }
    return args;
}

std::string host_trampoline(const std::vector<KernelArg>& args, const std::string& entry) {
    std::string call;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const KernelArg& a = args[i];
        const std::string type = (a.is_const ? "const " : "") + a.type + (a.pointer ? "*" : "");
        call += (i ? ", " : "") + std::string("*(") + type + "*)args[" + std::to_string(i) + "]";
    }
    return "\nextern \"C\" void cf_raw_launch(void** args, unsigned grid, unsigned block) {\n"
           "    (void)args;\n"
           "    gridDim.x = grid;\n    blockDim.x = block;\n"
           "    for (unsigned b = 0; b < grid; ++b)\n"
           "        for (unsigned t = 0; t < block; ++t) {\n"
           "            blockIdx.x = b;\n            threadIdx.x = t;\n"
           "            " +
           entry + "(" + call +
           ");\n"
           "        }\n}\n";
}

void match_arguments(const std::vector<KernelArg>& args, const KernelBinding& binding,
                     const std::string& entry, std::size_t entry_offset) {
    const auto has = [](const std::vector<std::string>& v, const std::string& n) {
        return std::find(v.begin(), v.end(), n) != v.end();
    };
    std::vector<std::string> param_names;
    for (const auto& [name, value] : binding.params) param_names.push_back(name);
    std::set<std::string> seen;
    for (const KernelArg& a : args) {
        const std::string what = "argument '" + a.name + "' of kernel '" + entry + "'";
        if (!seen.insert(a.name).second)
            throw KernelSourceError(what + " is named twice", a.offset);
        if (has(binding.inputs, a.name)) {
            if (!a.pointer || !a.is_const || !a.dtype())
                throw KernelSourceError(what + " is input port '" + a.name +
                                            "': it must be a const pointer to float, double, "
                                            "int or long long",
                                        a.offset);
        } else if (has(binding.outputs, a.name)) {
            if (!a.pointer || a.is_const || !a.dtype())
                throw KernelSourceError(what + " is output port '" + a.name +
                                            "': it must be a pointer (not const) to float, "
                                            "double, int or long long",
                                        a.offset);
        } else if (a.name == "n") {
            if (a.pointer || a.dtype() != DType::I64)
                throw KernelSourceError(what + " is the element count: it must be a long long",
                                        a.offset);
        } else if (has(param_names, a.name)) {
            const auto dtype = a.dtype();
            if (a.pointer || !dtype)
                throw KernelSourceError(what +
                                            " is a param: it must be a float, double, int "
                                            "or long long",
                                        a.offset);
            const Value* v = nullptr;
            for (const auto& [name, value] : binding.params)
                if (name == a.name) v = &value;
            const bool integral = *dtype == DType::I32 || *dtype == DType::I64;
            const bool fits = v->is_int() ? (*dtype != DType::I32 ||
                                             (v->as_int() >= INT32_MIN && v->as_int() <= INT32_MAX))
                                          : (v->is_float() && !integral);
            if (!fits)
                throw KernelSourceError(what + " has type " + a.type + ", but param '" + a.name +
                                            "' is " + to_printed(*v),
                                        a.offset);
        } else {
            throw KernelSourceError(what + " is neither a port (in: " + names_of(binding.inputs) +
                                        "; out: " + names_of(binding.outputs) + "), a param (" +
                                        names_of(param_names) + ") nor n",
                                    a.offset);
        }
    }
    const auto missing = [&](const std::string& kind, const std::vector<std::string>& names) {
        for (const auto& n : names)
            if (!seen.count(n))
                throw KernelSourceError(
                    kind + " '" + n + "' is not an argument of kernel '" + entry + "'",
                    entry_offset);
    };
    missing("input port", binding.inputs);
    missing("output port", binding.outputs);
    missing("param", param_names);
    if (binding.inputs.empty())
        throw KernelSourceError("kernel '" + entry +
                                    "' needs an input port: its first input "
                                    "gives n, the element count",
                                entry_offset);
}

}  // namespace chanflow::gpu
