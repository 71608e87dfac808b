// check_kernels.cpp — a GPU process's kernels, compiled at check time, with every problem at
// its line of the graph file.
#include "check_kernels.hpp"

#include <algorithm>
#include <fstream>
#include <regex>
#include <string>

#include "chanflow/node.hpp"
#include "graph_internal.hpp"
#include "process_kernels.hpp"
#include "random_process.hpp"
#include "raw_kernel.hpp"

namespace chanflow::gpu {
namespace {

const SpecValue* written_value(const ProcessSpec& spec, const std::string& param) {
    for (const auto& [name, value] : spec.with)
        if (name == param) return &value;
    return nullptr;
}

// How far the lines of a block scalar starting at `line` of `file` are indented.
int block_indent(const std::string& file, int line) {
    std::ifstream in(file);
    std::string text;
    for (int i = 0; i < line && std::getline(in, text); ++i) {
    }
    if (!in) return 0;
    return static_cast<int>(
        text.find_first_not_of(' ') == std::string::npos ? 0 : text.find_first_not_of(' '));
}

// The first line of a string value's text in the file: the next one for a block (`|`).
int first_text_line(const SpecValue& v) {
    const bool block =
        !v.quoted && v.value.is_string() && v.value.as_string().find('\n') != std::string::npos;
    return v.pos.line + (block ? 1 : 0);
}

// Where offset `offset` of a string value stands in the file, for text on many lines too.
SourcePos position_of(const SpecValue& v, std::size_t offset) {
    const std::string_view text = v.value.as_string();
    offset = std::min(offset, text.size());
    const std::size_t newlines = static_cast<std::size_t>(
        std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
    if (newlines == 0 && first_text_line(v) == v.pos.line) return detail::position_in(v, offset);
    SourcePos pos = v.pos;
    pos.line = first_text_line(v) + static_cast<int>(newlines);
    const std::size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
    const std::size_t column =
        line_start == std::string_view::npos || offset == 0 ? offset : offset - line_start - 1;
    pos.column = block_indent(v.pos.file, first_text_line(v)) + 1 + static_cast<int>(column);
    return pos;
}

// NVRTC's "file(line): error: message" lines, at the graph file's lines (the source was
// compiled after `#line`); anything else as one message at the source.
void nvrtc_errors(const std::string& log, const SpecValue& source, const std::string& process,
                  std::vector<Diagnostic>& diags) {
    static const std::regex line_re(R"(^.*\((\d+)\): (error|catastrophic error): (.*)$)");
    const int indent = block_indent(source.pos.file, first_text_line(source));
    std::size_t found = 0;
    std::size_t start = 0;
    while (start < log.size()) {
        std::size_t end = log.find('\n', start);
        if (end == std::string::npos) end = log.size();
        const std::string line = log.substr(start, end - start);
        std::smatch m;
        if (std::regex_match(line, m, line_re)) {
            SourcePos pos = source.pos;
            pos.line = std::stoi(m[1]);
            pos.column = indent + 1;
            diags.push_back({pos, "CUDA C of process '" + process + "': " + m[3].str()});
            ++found;
        }
        start = end + 1;
    }
    if (found == 0)
        diags.push_back(
            {source.pos, "CUDA C of process '" + process + "' does not compile: " + log});
}

void check_raw_kernel(const ProcessSpec& spec, const PlanProcess& p, const KernelCache& cache,
                      int arch, std::vector<Diagnostic>& diags) {
    const SpecValue* source = written_value(spec, "source");
    const SpecValue* entry_value = written_value(spec, "entry");
    if (!source || !entry_value || !source->value.is_string() || !entry_value->value.is_string())
        return;  // the checker has said what is missing
    const std::string text(source->value.as_string());
    const std::string entry(entry_value->value.as_string());
    KernelBinding binding;
    for (const auto& port : p.inputs) binding.inputs.push_back(port.port);
    for (const auto& port : p.outputs) binding.outputs.push_back(port.port);
    if (const auto it = p.params.find("params"); it != p.params.end()) {
        if (!it->second.is_record()) {
            const SpecValue* params = written_value(spec, "params");
            diags.push_back(
                {params ? params->pos : spec.pos,
                 "params of gpu.kernel '" + spec.name + "' must map argument names to numbers"});
            return;
        }
        binding.params = it->second.as_record();
    }
    try {
        match_arguments(kernel_arguments(text, entry), binding, entry, entry_offset(text, entry));
    } catch (const KernelSourceError& e) {
        diags.push_back({position_of(*source, e.offset()), e.what()});
        return;
    }
    const std::string compiled =
        "#line " + std::to_string(first_text_line(*source)) + " \"" + spec.name + "\"\n" + text;
    const Compiled c = compile_cached(cache, compiled, spec.name + ".cu", arch);
    if (!c.ok) nvrtc_errors(c.log, *source, spec.name, diags);
}

}  // namespace

void check_process_kernels(const ProcessSpec& spec, const PlanProcess& p, const KernelCache& cache,
                           int arch, std::vector<Diagnostic>& diags) {
    if (p.type && p.type->name == "gpu.kernel")
        return check_raw_kernel(spec, p, cache, arch, diags);
    if (p.type && (p.type->name == "pi.sample" || p.type->name == "random.uniform")) {
        const Compiled c =
            compile_cached(cache, random_kernel_source(p.type->name), spec.name + ".cu", arch);
        if (!c.ok)
            diags.push_back({spec.pos, "process '" + spec.name +
                                           "': its kernel does not compile "
                                           "(please report this): " +
                                           c.log});
        return;
    }
    const ProcessKernels kernels = kernels_for(p);
    if (kernels.variants.empty()) return;
    const SpecValue* written = written_value(spec, kernels.param);
    const SourcePos at = written ? written->pos : spec.pos;
    if (!kernels.any()) {
        // None for ints nor floats: say why for ints, where it stands.
        const KernelVariant& v = kernels.variants.front();
        diags.push_back({written ? detail::position_in(*written, v.offset) : at,
                         "process '" + spec.name + "' cannot run on a GPU: " + v.unsupported});
        return;
    }
    const Compiled c = compile_cached(cache, kernels.source(), spec.name + ".cu", arch);
    if (!c.ok)
        diags.push_back({at, "process '" + spec.name +
                                 "': the CUDA C generated for it does not compile (please "
                                 "report this): " +
                                 c.log});
}

}  // namespace chanflow::gpu
