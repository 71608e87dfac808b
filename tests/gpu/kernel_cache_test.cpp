// The cache of compiled kernels: keys, entries that survive and those that do not.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "kernel_cache.hpp"
#include "prelude.hpp"

namespace fs = std::filesystem;
using namespace chanflow::gpu;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/chanflow-cache-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

const std::string kSource =
    std::string(kPrelude) + "CF_KERNEL void k(double* y, long long n) { if (n) y[0] = 1.0; }\n";

}  // namespace

TEST_CASE("kernel cache: the key holds all that decides the cubin, and names its file") {
    const std::string key = cache_key(kSource, 90);
    CHECK(key == cache_key(kSource, 90));
    CHECK(key != cache_key(kSource, 80));
    CHECK(key != cache_key(kSource + " ", 90));
    CHECK(key.find(nvrtc_version()) != std::string::npos);
    CHECK(key.find(compile_options(90)) != std::string::npos);
    TempDir dir;
    const KernelCache cache(dir.path / "kernels");
    REQUIRE(cache.enabled());
    CHECK(cache.entry_path(key) == cache.entry_path(key));
    CHECK(cache.entry_path(key) != cache.entry_path(cache_key(kSource, 80)));
    CHECK(cache.entry_path(key).filename().string().size() == 32 + 6);
    // Made for this user alone.
    struct stat st {};
    REQUIRE(stat((dir.path / "kernels").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE("kernel cache: compiled once, then loaded, and a damaged entry is compiled anew") {
    TempDir dir;
    const KernelCache cache(dir.path);
    bool cached = true;
    const Compiled first = compile_cached(cache, kSource, "k.cu", 90, &cached);
    REQUIRE(first.ok);
    CHECK(!cached);
    const auto start = std::chrono::steady_clock::now();
    const Compiled again = compile_cached(cache, kSource, "k.cu", 90, &cached);
    CHECK(cached);
    CHECK(again.cubin == first.cubin);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));

    const fs::path entry = cache.entry_path(cache_key(kSource, 90));
    struct stat st {};
    REQUIRE(stat(entry.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::string bytes;
    {
        std::ifstream in(entry, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    // One byte flipped in the cubin, the file cut short, an empty file, another key's entry:
    // each is a miss, and the next compile puts a whole entry back.
    const std::string other = cache_key(kSource, 80);
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x40;
    for (const std::string& damaged :
         {flipped, bytes.substr(0, bytes.size() - 9), std::string(), bytes + "x"}) {
        std::ofstream(entry, std::ios::binary | std::ios::trunc) << damaged;
        CHECK(!cache.load(cache_key(kSource, 90)));
        const Compiled rebuilt = compile_cached(cache, kSource, "k.cu", 90, &cached);
        CHECK(!cached);
        CHECK(rebuilt.cubin == first.cubin);
        CHECK(cache.load(cache_key(kSource, 90)) == first.cubin);
    }
    CHECK(!cache.load(other));
    // No temporary file is left behind.
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
    CHECK(files == 1);
}

TEST_CASE("kernel cache: two writers of one entry leave a whole one") {
    TempDir dir;
    const KernelCache cache(dir.path);
    const std::string key = "a key";
    const std::string a(200000, 'a'), b(200000, 'b');
    std::vector<std::thread> writers;
    for (int w = 0; w < 2; ++w)
        writers.emplace_back([&, w] {
            for (int i = 0; i < 50; ++i) cache.store(key, w ? a : b);
        });
    for (auto& t : writers) t.join();
    const auto got = cache.load(key);
    REQUIRE(got);
    CHECK((*got == a || *got == b));
}

TEST_CASE("kernel cache: a folder others could write is not used, and off is off") {
    TempDir dir;
    REQUIRE(chmod(dir.path.c_str(), 0777) == 0);
    const KernelCache open_to_all(dir.path);
    CHECK(!open_to_all.enabled());
    CHECK(open_to_all.disabled().find("others than its owner") != std::string::npos);
    open_to_all.store("k", "cubin");  // does nothing
    CHECK(fs::is_empty(dir.path));
    setenv("CHANFLOW_KERNEL_CACHE", "off", 1);
    CHECK(!KernelCache::from_environment().enabled());
    CHECK(KernelCache::from_environment().disabled().empty());
    setenv("CHANFLOW_KERNEL_CACHE", (dir.path / "mine").c_str(), 1);
    CHECK(KernelCache::from_environment().dir() == dir.path / "mine");
    unsetenv("CHANFLOW_KERNEL_CACHE");
}
