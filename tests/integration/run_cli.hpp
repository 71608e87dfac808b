// Runs the real `chanflow` binary and captures what it printed and how it exited.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace chanflow::test {

struct CliResult {
    int exit_code = -1;  // -1: killed by the time limit
    std::string out;
    std::string err;
};

/// Starts `program` with args in the source directory, its stdout and stderr on pipes whose
/// reading ends it returns in out_fd and err_fd; returns its pid. `in_child`, if given, runs
/// in the child just before the program starts (to set up its descriptors or signals).
inline pid_t spawn_cli(const std::vector<std::string>& args, int& out_fd, int& err_fd,
                       const char* program = CHANFLOW_BIN,
                       const std::function<void()>& in_child = {}) {
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        close(out_pipe[0]);
        close(err_pipe[0]);
        close(out_pipe[1]);
        close(err_pipe[1]);
        if (chdir(CHANFLOW_SOURCE_DIR) != 0) _exit(127);
        if (in_child) in_child();
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(program));
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(program, argv.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_fd = out_pipe[0];
    err_fd = err_pipe[0];
    return pid;
}

/// Runs CHANFLOW_BIN (or another program) with args in the source directory; kills it after
/// `limit`.
inline CliResult run_cli(const std::vector<std::string>& args,
                         std::chrono::seconds limit = std::chrono::seconds(60),
                         const char* program = CHANFLOW_BIN) {
    int out_pipe[2], err_pipe[2];
    const pid_t pid = spawn_cli(args, out_pipe[0], err_pipe[0], program);
    CliResult r;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int open_fds = 2;
    bool killed = false;
    while (open_fds > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 && !killed) {
            kill(pid, SIGKILL);
            killed = true;
        }
        if (poll(fds, 2, killed ? 1000 : static_cast<int>(left.count())) < 0) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[65536];
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    return r;
}

/// Reads `fd` into `into` until it holds `needle` or `limit` passes; whether it came.
inline bool read_until(int fd, std::string& into, const std::string& needle,
                       std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (into.find(needle) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[4096];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return into.find(needle) != std::string::npos;
        into.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

#ifdef CHANFLOW_MPIRUN
/// mpirun's arguments to start CHANFLOW_BIN with `args` on `ranks` ranks of this machine.
/// K when `pid` is partition K of a processes-backend run (the launcher names its forked
/// partitions "chanflow pK"), else -1.
inline int partition_number(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(f, comm);
    const std::string prefix = "chanflow p";
    if (comm.rfind(prefix, 0) != 0 || comm.size() == prefix.size()) return -1;
    return std::stoi(comm.substr(prefix.size()));
}

inline std::vector<std::string> mpirun_args(int ranks, const std::vector<std::string>& args) {
    std::vector<std::string> a{"--oversubscribe", "-np", std::to_string(ranks)};
    if (geteuid() == 0) a.push_back("--allow-run-as-root");
#if defined(__SANITIZE_ADDRESS__)
    // OpenMPI unloads its components in MPI_Finalize: what they keep to the end can no longer
    // be named to suppress it. Leak checking is off in the ranks; ASan's other checks stay.
    a.insert(a.end(), {"-x", "ASAN_OPTIONS=detect_leaks=0"});
#endif
    a.push_back(CHANFLOW_BIN);
    a.insert(a.end(), args.begin(), args.end());
    return a;
}

/// Runs CHANFLOW_BIN with args under mpirun, on `ranks` ranks.
inline CliResult run_mpirun(int ranks, const std::vector<std::string>& args,
                            std::chrono::seconds limit = std::chrono::seconds(120)) {
    return run_cli(mpirun_args(ranks, args), limit, CHANFLOW_MPIRUN);
}
#endif

/// Runs CHANFLOW_BIN with its stderr on a terminal (a pseudo-terminal `columns` wide) and
/// its stdout on a pipe: `err` is what the terminal received.
inline CliResult run_cli_on_terminal(const std::vector<std::string>& args,
                                     unsigned short columns = 100,
                                     const char* program = CHANFLOW_BIN) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        throw std::runtime_error("no pseudo-terminal");
    const winsize size{24, columns, 0, 0};
    ioctl(master, TIOCSWINSZ, &size);
    const std::string slave_name = ptsname(master);
    int out_pipe[2];
    if (pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        setsid();
        const int slave = open(slave_name.c_str(), O_RDWR);
        if (slave < 0) _exit(127);
        dup2(out_pipe[1], 1);
        dup2(slave, 2);
        close(out_pipe[0]);
        close(out_pipe[1]);
        close(slave);
        close(master);
        if (chdir(CHANFLOW_SOURCE_DIR) != 0) _exit(127);
        std::vector<char*> argv{const_cast<char*>(program)};
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(program, argv.data());
        _exit(127);
    }
    close(out_pipe[1]);
    CliResult r;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {master, POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, 60000) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[65536];
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {  // a terminal whose other side closed reads as EIO
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

#ifdef CHANFLOW_TEST_PLUGIN
/// While it lives, CHANFLOW_PLUGIN_PATH names the test plugin's folder, so that a graph file
/// anywhere loads it by its file name: `plugins: [<TestPluginPath::name()>]`.
struct TestPluginPath {
    TestPluginPath() {
        const std::string path = CHANFLOW_TEST_PLUGIN;
        setenv("CHANFLOW_PLUGIN_PATH", path.substr(0, path.rfind('/')).c_str(), 1);
    }
    ~TestPluginPath() { unsetenv("CHANFLOW_PLUGIN_PATH"); }
    TestPluginPath(const TestPluginPath&) = delete;
    TestPluginPath& operator=(const TestPluginPath&) = delete;
    static std::string name() {
        const std::string path = CHANFLOW_TEST_PLUGIN;
        return path.substr(path.rfind('/') + 1);
    }
};
#endif

}  // namespace chanflow::test
