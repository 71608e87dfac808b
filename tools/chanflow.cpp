// chanflow — the command-line client of the engine (README.md, docs/).
// stdout carries only what the graph prints; everything else goes to stderr.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chanflow/chanflow.hpp"
#include "chanflow/partitions.hpp"
#if CHANFLOW_HAVE_MPI
#include "chanflow/mpi.hpp"
#endif

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 2;

const char* const kUsage = R"(usage:
  chanflow run FILE [--set NAME=VALUE]... [--backend threads|processes|mpi] [--procs N]
               [--workers N] [--gpu require|prefer] [--stats[=FILE]] [--trace OUT.json]
               [--progress]
  chanflow check FILE [--set NAME=VALUE]... [--gpu require|prefer] [--gpu-arch SM]
                 [--no-plugins]
  chanflow dot FILE [--set NAME=VALUE]... [-o OUT.dot|OUT.svg|OUT.png] [--stats-from STATS.json]
               [--backend processes|mpi --procs N] [--no-plugins]
  chanflow nodes [NODE] [--plugin LIB]... [--graph FILE]
  chanflow --version | --help

commands:
  run     check the graph, then run it; prints what its print nodes print
  check   load and validate the graph only (exit 0 when valid, 2 when not)
  dot     draw the checked graph with GraphViz: DOT on stdout, or the format of -o's
          extension (.dot, .svg, .png)
  nodes   list the node types, or describe one with its parameters and ports; with
          --plugin LIB or --graph FILE (the plugins FILE names), plugins' node types too

options:
  --set NAME=VALUE   override a parameter of the graph (VALUE is a YAML scalar)
  --no-plugins       do not load the native libraries the file names under `plugins:`
                     (a graph file that names plugins is code: check or draw a stranger's
                     file with this; node types only its plugins define are then unknown)
  --backend NAME     where processes run: threads (default); processes (the graph split
                     across --procs OS processes, channels between them in shared memory);
                     mpi (under `mpirun -np N`: the graph split across the N ranks,
                     channels between them as MPI messages)
  --workers N        worker threads (default: one per core it may run on, as `taskset` or
                     mpirun's binding allow; with processes and mpi, per partition: those
                     cores shared among the partitions)
  --procs N          partitions for the processes backend (default: one per core); with
                     mpi the ranks (if given, it must match); dot draws each as a cluster
  --gpu MODE         what processes placed on a GPU (on: gpu) do where none can be used:
                     require (the default) refuses to run the graph (exit 2), prefer runs
                     them on the CPU with one notice; wins over the file's gpu:
  --gpu-arch SM      check compiles the GPU kernels for this architecture (75 to 121, as
                     in sm_90; default 90)
  --stats            after the run, a table on stderr: per process messages in and out,
                     busy, blocked and ready time; per channel writes, reads, peak buffer
  --stats=FILE       the same as JSON in FILE
  --trace OUT.json   a Chrome trace of the run (chrome://tracing, Perfetto): a track per
                     worker thread, a slice per process run, channel occupancy counters
  --progress         while it runs, a progress line on stderr when stderr is a terminal
                     (with mpi under mpirun, always: rank 0 draws every rank's):
                     done/total, rate and ETA of the sources that know their size
                     (text.lines, range, random.uniform), else messages per second
  -o FILE            where dot writes its picture
  --stats-from FILE  dot paints a run's statistics (from run --stats=FILE) on the picture

exit codes: 0 success, 1 the graph failed at run time, 2 invalid graph or command line,
            3 deadlock
)";

// What draws on stderr while a run is on (the progress line, warnings) takes turns.
std::mutex stderr_mu;

// `run --progress`: one line on the terminal, redrawn in place; the last one stays.
void draw_progress(const chanflow::Progress& p) {
    std::lock_guard lock(stderr_mu);
    winsize size{};
    const std::size_t width =
        ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 ? size.ws_col : 80;
    // Short of the last column, where some terminals wrap at once.
    const std::string line =
        "\r" + chanflow::progress_line(p, width - 1) + "\x1b[K" + (p.final ? "\n" : "");
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

// A warning while the progress line is drawn: on a line of its own, the progress line
// redrawn below it with the next sample.
void notice_over_progress(const std::string& notice) {
    std::lock_guard lock(stderr_mu);
    const std::string line = "\r\x1b[Kwarning: " + chanflow::printable(notice) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

int usage_error(const std::string& msg) {
    std::cerr << "chanflow: error: " << chanflow::printable(msg) << "\n(see 'chanflow --help')\n";
    return kExitInvalid;
}

// Standard descriptors that the parent left closed are taken by /dev/null, so that nothing
// the run opens (a pipe, a segment) can become one of them. A closed stdout is opened for
// reading only: printing then fails (exit 1) instead of vanishing.
void keep_standard_fds() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        const int opened = open("/dev/null", fd == 2 ? O_WRONLY : O_RDONLY);
        if (opened >= 0 && opened != fd) {
            dup2(opened, fd);
            close(opened);
        }
    }
}

// A file a command writes when it is done (--stats=FILE, --trace, dot -o), opened before
// anything runs: a path that cannot be written is a command-line error (exit 2), not a
// result lost at the end of a long run. Its old content goes when the new is written.
class OutputFile {
public:
    OutputFile() = default;
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;
    ~OutputFile() {
        if (fd_ >= 0) close(fd_);
    }

    /// "" when `path` can be written, else why not.
    std::string open(const std::string& path) {
        path_ = path;
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0666);
        return fd_ < 0 ? failure() : std::string();
    }
    bool is_open() const noexcept { return fd_ >= 0; }

    /// Replaces what the file holds with `bytes`; "" or why it failed.
    std::string write(std::string_view bytes) {
        struct stat st {};
        if (fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && ftruncate(fd_, 0) != 0) return failure();
        while (!bytes.empty()) {
            const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return failure();
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return {};
    }

private:
    std::string failure() const {
        return "cannot write '" + path_ + "': " + std::strerror(errno ? errno : EIO);
    }

    std::string path_;
    int fd_ = -1;
};

struct Args {
    std::string command;
    std::string file;
    std::string node;
    chanflow::Overrides overrides;
    std::string backend;
    unsigned workers = 0;
    int procs = 0;       // --procs; 0: one per core
    std::string output;  // dot -o
    bool stats = false;
    std::string stats_file;                // --stats=FILE
    std::string stats_from;                // dot --stats-from FILE
    std::string trace;                     // run --trace FILE
    bool progress = false;                 // run --progress
    bool plugins = true;                   // --no-plugins: false
    std::optional<chanflow::GpuMode> gpu;  // --gpu
    int gpu_arch = 0;                      // --gpu-arch
    std::vector<std::string> plugin_libs;  // nodes --plugin
    std::string plugins_of;                // nodes --graph: the plugins this file names
};

// Parses argv; returns an error message or "".
std::string parse_args(int argc, char** argv, Args& a) {
    std::vector<std::string_view> positional;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value_of = [&](std::string_view opt, std::string& out) -> std::string {
            if (arg.size() > opt.size() && arg[opt.size()] == '=') {
                out = std::string(arg.substr(opt.size() + 1));
                return {};
            }
            if (i + 1 >= argc) return "option " + std::string(opt) + " needs a value";
            out = argv[++i];
            return {};
        };
        auto is = [&](std::string_view opt) {
            return arg == opt || (arg.size() > opt.size() && arg.substr(0, opt.size()) == opt &&
                                  arg[opt.size()] == '=');
        };
        std::string value;
        if (is("--set")) {
            if (auto e = value_of("--set", value); !e.empty()) return e;
            const auto eq = value.find('=');
            if (eq == std::string::npos || eq == 0)
                return "--set takes NAME=VALUE, got '" + value + "'";
            a.overrides.emplace_back(value.substr(0, eq), value.substr(eq + 1));
        } else if (is("--backend")) {
            if (auto e = value_of("--backend", value); !e.empty()) return e;
            a.backend = value;
        } else if (is("--workers")) {
            if (auto e = value_of("--workers", value); !e.empty()) return e;
            unsigned n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || ptr != value.data() + value.size() || n == 0 || n > 1024)
                return "--workers takes a number from 1 to 1024, got '" + value + "'";
            a.workers = n;
        } else if (is("--procs")) {
            if (auto e = value_of("--procs", value); !e.empty()) return e;
            int n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 || n > 1024)
                return "--procs takes a number from 1 to 1024, got '" + value + "'";
            a.procs = n;
        } else if (arg == "--stats") {
            a.stats = true;
        } else if (arg.substr(0, 8) == "--stats=") {
            a.stats_file = std::string(arg.substr(8));
            if (a.stats_file.empty()) return "--stats= needs a file name";
        } else if (is("--trace")) {
            if (auto e = value_of("--trace", value); !e.empty()) return e;
            a.trace = value;
        } else if (arg == "--progress") {
            a.progress = true;
        } else if (is("--gpu")) {
            if (auto e = value_of("--gpu", value); !e.empty()) return e;
            a.gpu = chanflow::gpu_mode_named(value);
            if (!a.gpu) return "--gpu takes require or prefer, got '" + value + "'";
        } else if (is("--gpu-arch")) {
            if (auto e = value_of("--gpu-arch", value); !e.empty()) return e;
            int n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || ptr != value.data() + value.size() || n < 75 || n > 121)
                return "--gpu-arch takes an architecture from 75 to 121 (as in sm_90), got '" +
                       value + "'";
            a.gpu_arch = n;
        } else if (arg == "--no-plugins") {
            a.plugins = false;
        } else if (is("--plugin")) {
            std::string lib;
            if (auto e = value_of("--plugin", lib); !e.empty()) return e;
            a.plugin_libs.push_back(lib);
        } else if (is("--graph")) {
            if (auto e = value_of("--graph", value); !e.empty()) return e;
            a.plugins_of = value;
        } else if (is("--stats-from")) {
            if (auto e = value_of("--stats-from", value); !e.empty()) return e;
            a.stats_from = value;
        } else if (arg == "-o") {
            if (i + 1 >= argc) return "option -o needs a file";
            a.output = argv[++i];
        } else if (arg.size() > 1 && arg[0] == '-') {
            return "unknown option '" + std::string(arg) + "'";
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.empty()) return "no command given";
    a.command = positional[0];
    if (!a.output.empty() && a.command != "dot") return "-o belongs to 'dot'";
    if (!a.stats_from.empty() && a.command != "dot") return "--stats-from belongs to 'dot'";
    if (!a.trace.empty() && a.command != "run") return "--trace belongs to 'run'";
    if (a.progress && a.command != "run") return "--progress belongs to 'run'";
    if (a.gpu && a.command != "run" && a.command != "check")
        return "--gpu belongs to 'run' and 'check'";
    if (a.gpu_arch && a.command != "check") return "--gpu-arch belongs to 'check'";
    if ((!a.plugin_libs.empty() || !a.plugins_of.empty()) && a.command != "nodes")
        return "--plugin and --graph belong to 'nodes' (a graph file names its own plugins)";
    if (!a.plugins && a.command != "check" && a.command != "dot")
        return "--no-plugins belongs to 'check' and 'dot' (a run needs the plugins it names)";
    if ((a.stats || !a.stats_file.empty()) && a.command != "run") return "--stats belongs to 'run'";
    if (a.command == "run" || a.command == "check" || a.command == "dot") {
        if (positional.size() != 2) return "'" + a.command + "' takes one graph file";
        a.file = positional[1];
    } else if (a.command == "nodes") {
        if (positional.size() > 2) return "'nodes' takes at most one node type";
        if (positional.size() == 2) a.node = positional[1];
    } else {
        return "unknown command '" + a.command + "'";
    }
    return {};
}

std::string default_text(const chanflow::ParamSpec& p) {
    if (!p.default_value) return "required";
    const chanflow::Value& v = *p.default_value;
    if (v.is_null()) return "optional";
    std::string s = "default ";
    if (v.is_string())
        chanflow::append_json(s, v);
    else
        chanflow::append_printed(s, v);
    return s;
}

/// The node types of one library, or of the program itself (empty `from`).
struct NodeGroup {
    std::string from;
    std::vector<const chanflow::NodeType*> types;
};

/// Loads the plugins `nodes` was asked for, one group each (the names it added), after the
/// group of what the program had before; false (with the error shown) when one cannot be
/// loaded.
bool load_node_groups(const Args& args, std::vector<NodeGroup>& groups) {
    auto& registry = chanflow::NodeRegistry::global();
    auto known = [&] {
        std::set<std::string, std::less<>> names;
        for (const auto* t : registry.all()) names.insert(t->name);
        return names;
    };
    groups.push_back({"", registry.all()});
    std::vector<std::string> libs = args.plugin_libs;
    try {
        if (!args.plugins_of.empty()) {
            const chanflow::GraphSpec spec = chanflow::load_graph_spec(args.plugins_of);
            libs.insert(libs.end(), spec.plugins.begin(), spec.plugins.end());
        }
        for (const std::string& lib : libs) {
            const auto before = known();
            chanflow::load_plugin(lib);
            NodeGroup g{lib, {}};
            for (const auto* t : registry.all())
                if (!before.count(t->name)) g.types.push_back(t);
            groups.push_back(std::move(g));
        }
    } catch (const chanflow::GraphError& e) {
        for (const auto& d : e.diagnostics()) std::cerr << d.str() << '\n';
        return false;
    } catch (const std::exception& e) {
        std::cerr << "chanflow: error: " << chanflow::printable(e.what()) << '\n';
        return false;
    }
    return true;
}

int list_nodes(const Args& args) {
    auto& registry = chanflow::NodeRegistry::global();
    std::vector<NodeGroup> groups;
    if (!load_node_groups(args, groups)) return kExitInvalid;
    const std::string& name = args.node;
    if (name.empty()) {
        std::size_t width = 0;
        for (const auto* t : registry.all()) width = std::max(width, t->name.size());
        for (const NodeGroup& g : groups) {
            if (!g.from.empty())
                std::cout << "\nfrom " << chanflow::printable(g.from) << ":\n"
                          << (g.types.empty() ? "  (no node types)\n" : "");
            for (const auto* t : g.types) {
                std::string first = t->doc.substr(0, t->doc.find('\n'));
                std::cout << t->name << std::string(width + 2 - t->name.size(), ' ') << first
                          << '\n';
            }
        }
        return kExitOk;
    }
    const chanflow::NodeType* t = registry.find(name);
    if (!t) {
        std::vector<std::string> names;
        for (const auto* n : registry.all()) names.push_back(n->name);
        std::string msg = "unknown node type '" + name + "'";
        if (auto m = chanflow::closest_match(name, names); !m.empty())
            msg += " (did you mean '" + m + "'?)";
        std::cerr << "chanflow: error: " << msg << '\n';
        return kExitInvalid;
    }
    std::cout << t->name << " — " << t->doc << "\n\nparameters:\n";
    if (t->params.empty()) std::cout << "  (none)\n";
    for (const auto& p : t->params)
        std::cout << "  " << p.name << " ("
                  << (p.range_text().empty() ? chanflow::param_type_name(p.type) : p.range_text())
                  << ", " << default_text(p) << ")" << (p.doc.empty() ? "" : ": " + p.doc) << '\n';
    std::cout << "\nports:\n";
    if (t->open_ports)
        std::cout << "  named by the graph: any name under in: is an input, any under out: an "
                     "output, one channel each\n";
    for (const auto& p : t->ports)
        std::cout << "  " << p.name << " (" << (p.dir == chanflow::PortDir::In ? "in" : "out")
                  << (p.multi ? ", a list of channels" : "") << (p.required ? "" : ", optional")
                  << ")" << (p.doc.empty() ? "" : ": " + p.doc) << '\n';
    if (t->own_thread) std::cout << "\nruns on a thread of its own\n";
    return kExitOk;
}

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    return buf;
}

// The table of `run --stats`: processes (replicas summed, then each replica), channels.
void print_stats(const chanflow::RunStats& st, std::ostream& out) {
    struct Row {
        std::string name;
        std::uint64_t in = 0, out = 0;
        double busy = 0, read = 0, write = 0, ready = 0;
    };
    std::vector<Row> rows;
    std::vector<std::vector<Row>> replicas;
    for (const auto& p : st.processes) {
        if (rows.empty() || rows.back().name != p.group) {
            rows.push_back({p.group});
            replicas.emplace_back();
        }
        Row r{p.name,         p.messages_in,   p.messages_out, p.busy,
              p.blocked_read, p.blocked_write, p.ready};
        Row& g = rows.back();
        g.in += r.in;
        g.out += r.out;
        g.busy += r.busy;
        g.read += r.read;
        g.write += r.write;
        g.ready += r.ready;
        replicas.back().push_back(r);
    }
    std::size_t width = 7;
    for (const auto& p : st.processes) width = std::max(width, p.name.size() + 2);
    for (const auto& c : st.channels) width = std::max(width, c.name.size());
    auto pad = [](std::string s, std::size_t w) {
        if (s.size() < w) s.insert(0, w - s.size(), ' ');
        return s;
    };
    auto left = [](std::string s, std::size_t w) {
        if (s.size() < w) s.append(w - s.size(), ' ');
        return s;
    };
    out << "run statistics (" << seconds(st.wall) << " s)\n"
        << left("process", width) << pad("msgs in", 12) << pad("msgs out", 12) << pad("busy s", 10)
        << pad("blocked read s", 16) << pad("blocked write s", 17) << pad("ready s", 9) << '\n';
    auto line = [&](const Row& r, const std::string& name) {
        out << left(name, width) << pad(std::to_string(r.in), 12) << pad(std::to_string(r.out), 12)
            << pad(seconds(r.busy), 10) << pad(seconds(r.read), 16) << pad(seconds(r.write), 17)
            << pad(seconds(r.ready), 9) << '\n';
    };
    for (std::size_t i = 0; i < rows.size(); ++i) {
        line(rows[i], rows[i].name);
        if (replicas[i].size() > 1)
            for (const Row& r : replicas[i]) line(r, "  " + r.name);
    }
    // The work done on a GPU, for the processes that ran there.
    bool any_gpu = false;
    for (const auto& p : st.processes) any_gpu = any_gpu || p.gpu;
    if (any_gpu) {
        auto mb = [](std::uint64_t bytes) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(bytes) / 1e6);
            return std::string(buf);
        };
        out << '\n'
            << left("on a GPU", width) << pad("device s", 10) << pad("MB to GPU", 12)
            << pad("MB from GPU", 13) << '\n';
        for (const auto& p : st.processes)
            if (p.gpu)
                out << left(p.name, width) << pad(seconds(p.device), 10)
                    << pad(mb(p.bytes_to_device), 12) << pad(mb(p.bytes_from_device), 13) << '\n';
    }
    out << '\n'
        << left("channel", width) << pad("kind", 9) << pad("deliver", 13) << pad("capacity", 10)
        << pad("writes", 12) << pad("reads", 12) << pad("peak", 8) << '\n';
    for (const auto& c : st.channels)
        out << left(c.name, width) << pad(c.kind, 9) << pad(c.deliver, 13)
            << pad(std::to_string(c.capacity), 10) << pad(std::to_string(c.writes), 12)
            << pad(std::to_string(c.reads), 12) << pad(std::to_string(c.peak), 8) << '\n';
}

// The files `run` writes at its end (--stats=FILE, --trace FILE), opened before it starts.
struct RunOutputs {
    OutputFile stats, trace;
    /// "" when every file asked for can be written, else why not.
    std::string open(const Args& args) {
        if (!args.stats_file.empty())
            if (auto e = stats.open(args.stats_file); !e.empty()) return "--stats: " + e;
        if (!args.trace.empty())
            if (auto e = trace.open(args.trace); !e.empty()) return "--trace: " + e;
        return {};
    }
};

// A run whose output's reader went away ends as a Unix filter does: quietly, by SIGPIPE.
[[noreturn]] void end_by_sigpipe() {
    std::fflush(stderr);
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &pipe, nullptr);
    raise(SIGPIPE);
    std::_Exit(static_cast<int>(chanflow::RunStatus::Failed));
}

// After a run: the statistics (--stats, --stats=FILE), the trace, and what went wrong.
int report_run(const Args& args, const chanflow::RunResult& result, RunOutputs& outputs) {
    std::fflush(stdout);
    if (result.output_closed) end_by_sigpipe();
    int code = result.exit_code();
    auto write = [&code](OutputFile& file, const std::string& text) {
        if (!file.is_open()) return;
        if (auto e = file.write(text); !e.empty()) {
            std::cerr << "chanflow: error: " << chanflow::printable(e) << '\n';
            if (code == kExitOk) code = static_cast<int>(chanflow::RunStatus::Failed);
        }
    };
    if (args.stats) print_stats(result.stats, std::cerr);
    write(outputs.stats, chanflow::to_json(result.stats));
    write(outputs.trace, result.trace);
    if (result.status == chanflow::RunStatus::Failed)
        std::cerr << "error: " << chanflow::printable(result.message) << '\n';
    if (result.status == chanflow::RunStatus::Deadlock && !result.message.empty())
        std::cerr << chanflow::printable(result.message) << '\n';
    return code;
}

// `run --backend processes`: the partitions are forked from this process, which watches
// them and reports the run.
int run_processes(const Args& args, const chanflow::Plan& plan,
                  const chanflow::Placement& placement, RunOutputs& outputs) {
    chanflow::RunOptions options;
    options.workers = args.workers;
    options.trace = !args.trace.empty();
    if (args.progress && isatty(STDERR_FILENO)) {
        options.on_progress = draw_progress;
        options.on_notice = notice_over_progress;
    }
    chanflow::RunResult result;
    try {
        result = chanflow::run_processes(plan, placement, options);
    } catch (const std::exception& e) {
        std::cerr << "chanflow: error: " << chanflow::printable(e.what()) << '\n';
        return static_cast<int>(chanflow::RunStatus::Failed);
    }
    return report_run(args, result, outputs);
}

// Where no GPU can be used, `on: gpu` processes are refused or move to the CPU, before
// anything runs (docs/gpu.md). What to say on stderr goes to `say`; false when the graph
// must not run.
bool settle_gpu(chanflow::Plan& plan, std::string& say) {
    try {
        const std::string notice = chanflow::settle_gpu_placement(plan);
        if (!notice.empty()) say = "notice: " + chanflow::printable(notice) + '\n';
        return true;
    } catch (const chanflow::GraphError& e) {
        for (const auto& d : e.diagnostics()) say += d.str() + '\n';
        return false;
    }
}

#if CHANFLOW_HAVE_MPI
// `run --backend mpi`, on every rank mpirun started (or alone, as one rank): rank 0 reports.
int run_on_mpi(const Args& args, chanflow::Plan plan, int& argc, char**& argv) {
    std::optional<chanflow::MpiSession> mpi;
    try {
        mpi.emplace(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "chanflow: error: " << chanflow::printable(e.what()) << '\n';
        return static_cast<int>(chanflow::RunStatus::Failed);
    }
    const bool reporter = mpi->rank() == 0;
    if (args.procs > 0 && args.procs != mpi->size()) {
        if (!reporter) return kExitInvalid;
        return usage_error("--procs " + std::to_string(args.procs) + " does not match the " +
                           std::to_string(mpi->size()) +
                           " ranks of this run (with mpi, mpirun -np sets the ranks)");
    }
    // Rank 0 writes the files; if it cannot, no rank runs.
    RunOutputs outputs;
    const std::string unwritable = reporter ? outputs.open(args) : std::string();
    if (!mpi->every_rank(unwritable.empty()))
        return reporter ? usage_error(unwritable) : kExitInvalid;
    // Each rank settles for the GPUs of its own host. Rank 0 speaks for every rank that
    // decided as it did; a rank that decided otherwise speaks for itself.
    std::string said;
    const bool settled = settle_gpu(plan, said);
    const bool as_rank0 = mpi->every_rank(reporter ? said.empty() : true) == said.empty();
    if (reporter || !as_rank0) std::cerr << said;
    if (!mpi->every_rank(settled)) return kExitInvalid;
    chanflow::Placement placement;
    try {
        placement = chanflow::place(plan, mpi->size());
    } catch (const chanflow::GraphError& e) {
        if (reporter)
            for (const auto& d : e.diagnostics()) std::cerr << d.str() << '\n';
        return kExitInvalid;
    }
    chanflow::RunOptions options;
    options.workers = args.workers;
    options.trace = !args.trace.empty();
    // Under mpirun stderr is a pipe to mpirun, whose own may be a terminal: --progress draws.
    const bool under_mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
    if (reporter && args.progress && (under_mpirun || isatty(STDERR_FILENO))) {
        options.on_progress = draw_progress;
        options.on_notice = notice_over_progress;
    }
    chanflow::RunResult result;
    try {
        result = chanflow::run_mpi(*mpi, plan, placement, options);
    } catch (const std::exception& e) {
        if (reporter) std::cerr << "chanflow: error: " << chanflow::printable(e.what()) << '\n';
        return static_cast<int>(chanflow::RunStatus::Failed);
    }
    if (!reporter) {
        std::fflush(stdout);
        return result.exit_code();
    }
    return report_run(args, result, outputs);
}
#endif

// `chanflow dot`: the picture (DOT, SVG or PNG) to -o's file or to stdout.
int draw_command(const Args& args, const chanflow::Plan& plan,
                 const std::optional<chanflow::Placement>& placement) {
    if (!chanflow::can_draw())
        return usage_error("this chanflow was built without GraphViz: it cannot draw graphs");
    std::string format = "dot";
    OutputFile file;
    std::optional<chanflow::RunStats> stats;
    try {
        if (!args.output.empty()) {
            format = chanflow::picture_format(args.output);
            if (auto e = file.open(args.output); !e.empty()) return usage_error(e);
        }
        if (!args.stats_from.empty()) stats = chanflow::read_run_stats(args.stats_from);
    } catch (const std::exception& e) {
        return usage_error(e.what());
    }
    std::string picture;
    try {
        picture = chanflow::render(plan, format, stats ? &*stats : nullptr,
                                   placement ? &*placement : nullptr);
    } catch (const std::exception& e) {
        std::cerr << "chanflow: error: " << chanflow::printable(e.what()) << '\n';
        return static_cast<int>(chanflow::RunStatus::Failed);
    }
    if (!file.is_open()) {
        std::fwrite(picture.data(), 1, picture.size(), stdout);
        return kExitOk;
    }
    if (auto e = file.write(picture); !e.empty()) {
        std::cerr << "chanflow: error: " << chanflow::printable(e) << '\n';
        return static_cast<int>(chanflow::RunStatus::Failed);
    }
    return kExitOk;
}

// `chanflow check`: the counts of a valid graph, as written.
int check_command(const Args& args, const chanflow::Plan& plan) {
    auto count = [](std::size_t n, const char* one, const char* many) {
        return std::to_string(n) + " " + (n == 1 ? one : many);
    };
    // As written: replicas count one by one, what the engine adds does not count.
    const auto processes = std::count_if(plan.processes.begin(), plan.processes.end(),
                                         [](const auto& p) { return !p.hidden; });
    const auto channels = std::count_if(plan.channels.begin(), plan.channels.end(),
                                        [](const auto& c) { return !c.hidden; });
    std::cout << chanflow::printable(args.file) << ": ok ("
              << count(static_cast<std::size_t>(processes), "process", "processes") << ", "
              << count(static_cast<std::size_t>(channels), "channel", "channels") << ")\n";
    return kExitOk;
}

// `chanflow run` on the threads backend.
int run_threads(const Args& args, const chanflow::Plan& plan) {
    RunOutputs outputs;
    if (auto e = outputs.open(args); !e.empty()) return usage_error(e);
    chanflow::RunOptions options;
    options.workers = args.workers;
    options.trace = !args.trace.empty();
    if (args.progress && isatty(STDERR_FILENO)) options.on_progress = draw_progress;
    chanflow::RunResult result;
    try {
        result = chanflow::run(plan, options);
    } catch (const std::exception& e) {  // the engine could not start the run at all
        std::cerr << "chanflow: error: " << chanflow::printable(e.what()) << '\n';
        return static_cast<int>(chanflow::RunStatus::Failed);
    }
    return report_run(args, result, outputs);
}

int command(int argc, char** argv) {
    Args args;
    if (auto err = parse_args(argc, argv, args); !err.empty()) return usage_error(err);
    if (args.command == "nodes") return list_nodes(args);

    chanflow::Plan plan;
    try {
        chanflow::CheckOptions check;
        check.plugins = args.plugins;
        check.gpu = args.gpu;
        check.gpu_arch = args.gpu_arch;
        plan = chanflow::load_plan(args.file, args.overrides, check);
    } catch (const chanflow::GraphError& e) {
        for (const auto& d : e.diagnostics()) std::cerr << d.str() << '\n';
        return kExitInvalid;
    } catch (const std::exception& e) {
        std::cerr << "chanflow: error: " << chanflow::printable(args.file + ": " + e.what())
                  << '\n';
        return kExitInvalid;
    }
    const std::string backend = args.backend.empty() ? plan.backend : args.backend;
    if (backend != "threads" && backend != "processes" && backend != "mpi")
        return usage_error("unknown backend '" + backend +
                           "' (expected threads, processes or mpi)");
    if (backend == "threads" && args.procs > 0)
        return usage_error("--procs belongs to the processes and mpi backends");
    if (backend == "processes" && args.command == "run" && args.procs > chanflow::kMaxPartitions)
        return usage_error("--procs takes at most " + std::to_string(chanflow::kMaxPartitions) +
                           " partitions with the processes backend, got " +
                           std::to_string(args.procs));
    // Where each process runs: one partition on threads, else --procs of them (by default
    // one per core, as many as the processes backend runs).
    std::optional<chanflow::Placement> placement;
    const auto place = [&] {
        try {
            const int cores = static_cast<int>(chanflow::usable_cores());
            placement = chanflow::place(
                plan, args.procs > 0 ? args.procs : std::min(cores, chanflow::kMaxPartitions));
            return true;
        } catch (const chanflow::GraphError& e) {
            for (const auto& d : e.diagnostics()) std::cerr << d.str() << '\n';
            return false;
        }
    };
    // (With mpi, `run` places the plan on as many partitions as MPI has ranks.)
    if (backend != "threads" && !(args.command == "run" && backend == "mpi") && !place())
        return kExitInvalid;
    if (args.command == "dot") return draw_command(args, plan, placement);
    if (args.command == "check") return check_command(args, plan);
    if (backend == "mpi") {
#if CHANFLOW_HAVE_MPI
        return run_on_mpi(args, std::move(plan), argc, argv);
#else
        return usage_error("this chanflow was built without MPI: backend 'mpi' cannot run");
#endif
    }
    std::string said;
    const bool settled = settle_gpu(plan, said);
    std::cerr << said;
    if (!settled) return kExitInvalid;
    // Adjacent maps that stay on a GPU become one kernel; the partitions are placed anew.
    // (Not on mpi: every rank settles for its own host, and their plans must agree.)
    if (chanflow::fuse_gpu_maps(plan) > 0 && placement && !place()) return kExitInvalid;
    if (backend == "processes") {
        RunOutputs outputs;
        if (auto e = outputs.open(args); !e.empty()) return usage_error(e);
        return run_processes(args, plan, *placement, outputs);
    }
    return run_threads(args, plan);
}

// What went to stdout must have reached it: a full disk or a closed stdout is a failure
// (exit 1), a closed pipe ends quietly.
int finish_stdout(int code) {
    if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return code;
    if (code != kExitOk) return code;  // the failure was reported, the output's with it
    const int error = errno ? errno : EIO;
    if (error == EPIPE) end_by_sigpipe();
    std::cerr << "chanflow: error: cannot write the output: " << std::strerror(error) << '\n';
    return code == kExitOk ? static_cast<int>(chanflow::RunStatus::Failed) : code;
}

}  // namespace

int main(int argc, char** argv) {
    keep_standard_fds();
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            std::cout << kUsage;
            return finish_stdout(kExitOk);
        }
        if (!std::strcmp(argv[i], "--version")) {
            std::cout << "chanflow " << chanflow::version() << '\n'
                      << "built with: " << chanflow::build_features() << '\n';
            const std::string gpu = chanflow::gpu_unusable_reason();
            std::cout << "gpu: " << (gpu.empty() ? "usable" : "none usable: " + gpu) << '\n';
            return finish_stdout(kExitOk);
        }
    }
    return finish_stdout(command(argc, argv));
}
