// kernel_cache.cpp — compiled kernels on disk (kernel_cache.hpp).
#include "kernel_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace chanflow::gpu {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'K', 'C', '0', '0', '1', '\n'};
// A cubin larger than this is no cubin of ours: the entry is taken for damaged.
constexpr std::uint64_t kMaxEntryBytes = std::uint64_t{1} << 30;

std::uint64_t fnv1a(const std::string& bytes, std::uint64_t hash) {
    for (unsigned char c : bytes) {
        hash ^= c;
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

std::string hex(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool get_u64(const std::string& in, std::size_t& at, std::uint64_t& v) {
    if (in.size() - at < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
    at += 8;
    return true;
}

std::uint64_t checksum(const std::string& key, const std::string& cubin) {
    return fnv1a(cubin, fnv1a(key, 0xcbf29ce484222325ULL));
}

bool read_all(const std::filesystem::path& path, std::string& out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    struct stat st {};
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              static_cast<std::uint64_t>(st.st_size) <= kMaxEntryBytes + 4096;
    if (ok) {
        out.resize(static_cast<std::size_t>(st.st_size));
        std::size_t got = 0;
        while (ok && got < out.size()) {
            const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                ok = false;
            else
                got += static_cast<std::size_t>(n);
        }
    }
    ::close(fd);
    return ok;
}

bool write_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

KernelCache::KernelCache(std::filesystem::path dir) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir.parent_path(), ec);
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            why_ = "cannot make the kernel cache " + dir.string() + ": " + std::strerror(errno);
            return;
        }
    }
    // Whoever could write the cache could put a kernel of theirs in our place.
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        why_ = "the kernel cache " + dir.string() + " is not a folder";
        return;
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        why_ = "the kernel cache " + dir.string() +
               " is not used: others than its owner, this user, could change it";
        return;
    }
    dir_ = std::move(dir);
}

KernelCache KernelCache::from_environment() {
    if (const char* named = std::getenv("CHANFLOW_KERNEL_CACHE"); named && *named) {
        if (std::string(named) == "off") return KernelCache();
        return KernelCache(named);
    }
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg && xdg[0] == '/')
        return KernelCache(std::filesystem::path(xdg) / "chanflow" / "kernels");
    if (const char* home = std::getenv("HOME"); home && *home && home[0] == '/')
        return KernelCache(std::filesystem::path(home) / ".cache" / "chanflow" / "kernels");
    return KernelCache();
}

std::filesystem::path KernelCache::entry_path(const std::string& key) const {
    return dir_ / (hex(fnv1a(key, 0xcbf29ce484222325ULL)) + hex(fnv1a(key, 0x84222325cbf29ce4ULL)) +
                   ".cubin");
}

std::optional<std::string> KernelCache::load(const std::string& key) const {
    if (!enabled()) return std::nullopt;
    std::string entry;
    if (!read_all(entry_path(key), entry)) return std::nullopt;
    std::size_t at = sizeof kMagic;
    std::uint64_t key_size = 0, cubin_size = 0, sum = 0;
    if (entry.size() < at || std::memcmp(entry.data(), kMagic, sizeof kMagic) != 0 ||
        !get_u64(entry, at, key_size) || key_size != key.size() ||
        entry.compare(at, key.size(), key) != 0)
        return std::nullopt;
    at += key.size();
    if (!get_u64(entry, at, cubin_size) || cubin_size > kMaxEntryBytes ||
        entry.size() - at < cubin_size)
        return std::nullopt;
    std::string cubin = entry.substr(at, static_cast<std::size_t>(cubin_size));
    at += cubin.size();
    if (!get_u64(entry, at, sum) || at != entry.size() || sum != checksum(key, cubin))
        return std::nullopt;
    return cubin;
}

void KernelCache::store(const std::string& key, const std::string& cubin) const {
    if (!enabled()) return;
    std::string entry(kMagic, sizeof kMagic);
    put_u64(entry, key.size());
    entry += key;
    put_u64(entry, cubin.size());
    entry += cubin;
    put_u64(entry, checksum(key, cubin));
    const std::filesystem::path path = entry_path(key);
    std::string temp = path.string() + ".XXXXXX";
    const int fd = mkstemp(temp.data());  // mode 0600, a name nobody can guess
    if (fd < 0) return;
    const bool written = write_all(fd, entry);
    if (::close(fd) != 0 || !written || std::rename(temp.c_str(), path.c_str()) != 0)
        ::unlink(temp.c_str());
}

std::string cache_key(const std::string& source, int arch) {
    return "chanflow kernel\n" + nvrtc_version() + "\n" + compile_options(arch) + "\n" + source;
}

Compiled compile_cached(const KernelCache& cache, const std::string& source,
                        const std::string& name, int arch, bool* from_cache) {
    const std::string key = cache_key(source, arch);
    if (auto cubin = cache.load(key)) {
        if (from_cache) *from_cache = true;
        Compiled c;
        c.ok = true;
        c.cubin = std::move(*cubin);
        return c;
    }
    if (from_cache) *from_cache = false;
    Compiled c = compile_cuda(source, name, arch);
    if (c.ok) cache.store(key, c.cubin);
    return c;
}

}  // namespace chanflow::gpu
