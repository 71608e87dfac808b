// plugin_loader.cpp — loading the node libraries a graph file names (`plugins:`), and only
// those that nobody but their owner (this user or root) could have changed.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "chanflow/graph.hpp"

namespace chanflow {
namespace {

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// Whoever may change the library (or swap it for another) could run code as this user.
void check_plugin_file(const std::string& path, const struct stat& file) {
    const uid_t me = geteuid();
    if (!S_ISREG(file.st_mode)) throw std::runtime_error("plugin '" + path + "' is not a file");
    if (file.st_uid != me && file.st_uid != 0)
        throw std::runtime_error("plugin '" + path + "' is owned by user " +
                                 std::to_string(file.st_uid) +
                                 ", not by this user or root: refused");
    if (file.st_mode & (S_IWGRP | S_IWOTH))
        throw std::runtime_error("plugin '" + path +
                                 "' may be written by others than its owner (mode " +
                                 octal_mode(file.st_mode) + "): refused");
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    struct stat dir {};
    if (::stat(folder.empty() ? "." : folder.c_str(), &dir) != 0)
        throw std::runtime_error("cannot look at the folder of plugin '" + path +
                                 "': " + std::strerror(errno));
    const bool others_write = (dir.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if ((dir.st_uid != me && dir.st_uid != 0) || (others_write && !(dir.st_mode & S_ISVTX)))
        throw std::runtime_error("plugin '" + path +
                                 "' lies in a folder that others may change ('" + folder.string() +
                                 "', mode " + octal_mode(dir.st_mode) + "): refused");
}

}  // namespace

void load_plugin(const std::string& path) {
    // The library checked is the library loaded: opened once, loaded through its descriptor.
    std::error_code ec;
    const std::filesystem::path real = std::filesystem::canonical(path, ec);
    if (ec) throw std::runtime_error("cannot load plugin '" + path + "': " + ec.message());
    struct File {
        int fd;
        ~File() {
            if (fd >= 0) ::close(fd);
        }
    } const file{::open(real.c_str(), O_RDONLY | O_CLOEXEC)};
    struct stat st {};
    if (file.fd < 0 || fstat(file.fd, &st) != 0)
        throw std::runtime_error("cannot load plugin '" + path + "': " + std::strerror(errno));
    check_plugin_file(real.string(), st);
    // RTLD_GLOBAL: a plugin's nodes may use symbols of plugins loaded before it.
    const std::string by_fd = "/proc/self/fd/" + std::to_string(file.fd);
    if (dlopen(by_fd.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
        const char* why = dlerror();
        throw std::runtime_error("cannot load plugin '" + path +
                                 "': " + (why ? why : "unknown error"));
    }
}

}  // namespace chanflow
