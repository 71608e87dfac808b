// graph_builder.cpp — graphs built in code, diagnostics, and load_plan.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "chanflow/graph.hpp"
#include "graph_internal.hpp"

namespace chanflow {
namespace {

std::string join_diagnostics(const std::vector<Diagnostic>& diags) {
    std::string out;
    for (const auto& d : diags) {
        if (!out.empty()) out += '\n';
        out += d.str();
    }
    return out;
}

}  // namespace

std::string Diagnostic::str() const {
    std::string out = pos.file;
    if (pos.line > 0) {
        if (!out.empty()) out += ':';
        out += std::to_string(pos.line);
        if (pos.column > 0) out += ':' + std::to_string(pos.column);
    }
    if (!out.empty()) out += ": ";
    return printable(out + "error: " + message);
}

std::string printable(std::string_view text) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    auto escape = [&out](unsigned char c) {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            escape(c);
        } else if (c == 0xc2 && i + 1 < text.size() &&
                   static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
            escape(c);  // U+0080..U+009F in UTF-8: the C1 controls
            escape(static_cast<unsigned char>(text[++i]));
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

GraphError::GraphError(std::vector<Diagnostic> diags)
    : std::runtime_error(join_diagnostics(diags)), diags_(std::move(diags)) {}

Plan load_plan(const std::string& path, const Overrides& overrides, const CheckOptions& options) {
    auto loaded = detail::read_graph_file(path, overrides);
    std::vector<Diagnostic> diags = std::move(loaded.diags);
    if (diags.empty()) return check_graph(loaded.spec, options);
    if (!loaded.fatal) {
        // Report the checker's findings together with the loader's, without the ones that
        // would only echo what the loader dropped.
        detail::check_graph_into(loaded.spec, diags,
                                 detail::CheckContext{&loaded.damaged, loaded.partial, options});
    }
    detail::sort_diagnostics(diags);
    throw GraphError(std::move(diags));
}

// ---- Graph ---------------------------------------------------------------------------------

Graph::Graph(std::string name) {
    spec_.name = std::move(name);
}

Graph::ProcessRef Graph::process(std::string name, std::string node_type) {
    ProcessSpec p;
    p.name = std::move(name);
    p.node = std::move(node_type);
    spec_.processes.push_back(std::move(p));
    return ProcessRef(*this, spec_.processes.size() - 1);
}

Graph& Graph::channel(std::string name, std::size_t capacity) {
    auto it = std::find_if(spec_.channels.begin(), spec_.channels.end(),
                           [&](const ChannelSpec& c) { return c.name == name; });
    if (it == spec_.channels.end()) {
        spec_.channels.push_back({});
        it = spec_.channels.end() - 1;
        it->name = std::move(name);
    }
    it->capacity = SpecValue{Value(static_cast<long long>(capacity)), {}, false};
    return *this;
}

Plan Graph::plan() const {
    return check_graph(spec_);
}

ProcessSpec& Graph::ProcessRef::spec() {
    return graph_->spec_.processes[index_];
}

Graph::ProcessRef& Graph::ProcessRef::with(std::string param, Value v) {
    auto& with = spec().with;
    auto it =
        std::find_if(with.begin(), with.end(), [&](const auto& w) { return w.first == param; });
    SpecValue value{std::move(v), {}, false};
    if (it != with.end())
        it->second = std::move(value);
    else
        with.emplace_back(std::move(param), std::move(value));
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::in(std::string port, std::string channel, Deliver deliver) {
    BindingSpec b;
    b.port = std::move(port);
    b.channels.emplace_back(std::move(channel), SourcePos{});
    if (deliver != Deliver::Any) b.deliver = std::pair{deliver, SourcePos{}};
    spec().inputs.push_back(std::move(b));
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::in(std::string port, std::vector<std::string> channels) {
    BindingSpec b;
    b.port = std::move(port);
    b.list = true;
    for (auto& c : channels) b.channels.emplace_back(std::move(c), SourcePos{});
    spec().inputs.push_back(std::move(b));
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::out(std::string port, std::string channel) {
    BindingSpec b;
    b.port = std::move(port);
    b.channels.emplace_back(std::move(channel), SourcePos{});
    spec().outputs.push_back(std::move(b));
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::out(std::string port, std::vector<std::string> channels) {
    BindingSpec b;
    b.port = std::move(port);
    b.list = true;
    for (auto& c : channels) b.channels.emplace_back(std::move(c), SourcePos{});
    spec().outputs.push_back(std::move(b));
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::replicas(int n) {
    spec().replicas = SpecValue{Value(n), {}, false};
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::ordered(bool on) {
    spec().ordered = on;
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::rank(int k) {
    if (k < 0) throw std::invalid_argument("rank must be >= 0");
    spec().rank = k;
    return *this;
}

Graph::ProcessRef& Graph::ProcessRef::gpu(GpuMode mode) {
    spec().gpu = true;
    spec().gpu_mode = mode;
    return *this;
}

}  // namespace chanflow
