// kernel_cache.hpp — compiled kernels kept on disk, so that a graph compiles its kernels
// once, not at every load (NVRTC takes 50 ms to seconds a program; a cached cubin loads in
// well under a millisecond).
//
// An entry is keyed by everything that decides the cubin: the source, NVRTC's options, its
// version and the architecture. The file name is a hash of the key; the entry holds the key
// itself too, so that two keys with one hash can never swap kernels. Entries are written to
// a temporary file and renamed into place (readers see a whole entry or none; two writers
// leave one of their equal entries), and carry a checksum: a damaged entry is compiled anew
// and replaced.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "nvrtc_compiler.hpp"

namespace chanflow::gpu {

class KernelCache {
public:
    /// No cache: every load compiles.
    KernelCache() = default;
    /// The cache in `dir`, made (mode 0700) when missing. A folder that others than this
    /// user could write, or that cannot be made, is not used: disabled() says why.
    explicit KernelCache(std::filesystem::path dir);

    /// The cache the environment names: CHANFLOW_KERNEL_CACHE (a folder, or "off"), else
    /// $XDG_CACHE_HOME/chanflow/kernels, else ~/.cache/chanflow/kernels.
    static KernelCache from_environment();

    bool enabled() const noexcept { return !dir_.empty(); }
    /// Why there is no cache ("" when there is one, or none was asked for).
    const std::string& disabled() const noexcept { return why_; }
    const std::filesystem::path& dir() const noexcept { return dir_; }

    /// The cubin stored under `key`, or nothing (absent, damaged, or another key's).
    std::optional<std::string> load(const std::string& key) const;
    /// Stores `cubin` under `key`; a cache that cannot be written is left as it is.
    void store(const std::string& key, const std::string& cubin) const;
    /// Where the entry for `key` lies.
    std::filesystem::path entry_path(const std::string& key) const;

private:
    std::filesystem::path dir_;
    std::string why_;
};

/// The key of `source` compiled for sm_`arch` by this NVRTC with compile_cuda's options.
std::string cache_key(const std::string& source, int arch);

/// compile_cuda through the cache: a stored cubin when there is one, else compiled and
/// stored. `from_cache` says which.
Compiled compile_cached(const KernelCache& cache, const std::string& source,
                        const std::string& name, int arch, bool* from_cache = nullptr);

}  // namespace chanflow::gpu
