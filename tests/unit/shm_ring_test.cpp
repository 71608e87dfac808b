// The shared-memory segment and its rings: frames arrive whole and in order, across threads
// and across processes; waits end on data, room, close, reader_gone and abort; nothing is
// left in /dev/shm.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "shm_ring.hpp"

using namespace chanflow::detail;

namespace {

std::string unique_name() {
    static int n = 0;
    return "/chanflow-test." + std::to_string(getpid()) + "." + std::to_string(n++);
}

bool in_dev_shm(const std::string& name) {
    return std::filesystem::exists("/dev/shm" + name);
}

// Frame i: i % 3001 bytes, each (i + k) % 251.
std::vector<unsigned char> frame(std::size_t i) {
    std::vector<unsigned char> f(i % 3001);
    for (std::size_t k = 0; k < f.size(); ++k) f[k] = static_cast<unsigned char>((i + k) % 251);
    return f;
}

// Removes the name at the end of a test, whatever happens.
struct Named {
    std::string name = unique_name();
    ~Named() { ShmSegment::unlink(name); }
};

}  // namespace

TEST_CASE("shm ring: frames of every size arrive whole and in order across threads") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 2, 4096);
    CHECK(seg.ring_count() == 2);
    ShmRing ring = seg.ring(1);
    CHECK(ring.capacity() == 4096);
    constexpr std::size_t kFrames = 20000;
    std::thread producer([&] {
        for (std::size_t i = 0; i < kFrames; ++i) {
            const auto f = frame(i);
            REQUIRE(ring.push(f.data(), f.size()) == ShmRing::Status::Ok);
        }
        ring.close();
    });
    std::vector<unsigned char> got;
    std::size_t i = 0;
    bool in_order = true;
    for (;; ++i) {
        const auto s = ring.pop(got);
        if (s == ShmRing::Status::Closed) break;
        REQUIRE(s == ShmRing::Status::Ok);
        in_order = in_order && got == frame(i);
    }
    producer.join();
    CHECK(in_order);
    CHECK(i == kFrames);
    std::vector<unsigned char> big(4096);
    CHECK_THROWS_AS(ring.push(big.data(), big.size()), std::length_error);
    CHECK(ring.max_frame() == 4092);
}

TEST_CASE("shm ring: try_peek views frames in place, copies the ones that wrap") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 1, 4096);
    ShmRing ring = seg.ring(0);
    constexpr std::size_t kFrames = 3000;
    std::thread producer([&] {
        for (std::size_t i = 0; i < kFrames; ++i) {
            const auto f = frame(i * 13);
            REQUIRE(ring.push(f.data(), f.size()) == ShmRing::Status::Ok);
        }
        ring.close();
    });
    std::vector<unsigned char> copy;
    std::size_t i = 0, copied = 0;
    bool in_order = true;
    for (;;) {
        std::span<const unsigned char> f;
        ShmRing::Status s = ShmRing::Status::Ok;
        if (!ring.try_peek(f, copy, s)) {
            std::this_thread::yield();
            continue;
        }
        if (s == ShmRing::Status::Closed) break;
        REQUIRE(s == ShmRing::Status::Ok);
        const auto want = frame(i * 13);
        in_order = in_order && std::equal(f.begin(), f.end(), want.begin(), want.end());
        copied += !f.empty() && f.data() == copy.data();
        ring.release();  // the producer may reuse the room
        ++i;
    }
    producer.join();
    CHECK(in_order);
    CHECK(i == kFrames);
    CHECK(copied > 0);            // some frames wrapped around the end of the ring
    CHECK(copied < kFrames / 2);  // most were read in place
}

TEST_CASE("shm ring: another process writes, this one reads, and the name can go at once") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 1, 8192);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int code = 0;
        try {
            ShmSegment mine = ShmSegment::open(n.name);
            ShmRing r = mine.ring(0);
            for (std::size_t i = 0; i < 5000; ++i) {
                const auto f = frame(i * 7);
                if (r.push(f.data(), f.size()) != ShmRing::Status::Ok) code = 2;
            }
            r.close();
        } catch (...) {
            code = 3;
        }
        _exit(code);
    }
    // Once both have it mapped the name is not needed: nothing stays behind in /dev/shm.
    std::vector<unsigned char> got;
    ShmRing r = seg.ring(0);
    REQUIRE(r.pop(got) == ShmRing::Status::Ok);
    CHECK(got == frame(0));
    ShmSegment::unlink(n.name);
    CHECK_FALSE(in_dev_shm(n.name));
    std::size_t i = 1;
    bool in_order = true;
    while (r.pop(got) == ShmRing::Status::Ok) in_order = in_order && got == frame(7 * i++);
    CHECK(in_order);
    CHECK(i == 5000);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("shm ring: a producer waiting for room learns that the reader is gone") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 1, 4096);
    ShmRing r = seg.ring(0);
    std::vector<unsigned char> f(2000);
    REQUIRE(r.push(f.data(), f.size()) == ShmRing::Status::Ok);
    REQUIRE(r.push(f.data(), f.size()) == ShmRing::Status::Ok);  // full now
    std::atomic<int> result{-1};
    std::thread producer([&] { result = static_cast<int>(r.push(f.data(), f.size())); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(result == -1);  // waiting
    r.reader_gone();
    producer.join();
    CHECK(result == static_cast<int>(ShmRing::Status::ReaderGone));
}

TEST_CASE("shm ring: abort from another process wakes every waiter") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 2, 4096);
    // The aborting process is forked first, while this one has a single thread, and waits
    // for a byte on a pipe.
    int go[2];
    REQUIRE(pipe(go) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) == 1) ShmSegment::open(n.name).abort();
        _exit(0);
    }
    close(go[0]);
    std::atomic<int> reader{-1}, writer{-1};
    std::vector<unsigned char> f(3000);
    REQUIRE(seg.ring(1).push(f.data(), f.size()) == ShmRing::Status::Ok);
    std::thread t1([&] {
        std::vector<unsigned char> got;
        reader = static_cast<int>(seg.ring(0).pop(got));  // empty: waits
    });
    std::thread t2([&] { writer = static_cast<int>(seg.ring(1).push(f.data(), f.size())); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(reader == -1);
    CHECK(writer == -1);
    REQUIRE(write(go[1], "x", 1) == 1);
    close(go[1]);
    waitpid(child, nullptr, 0);
    t1.join();
    t2.join();
    CHECK(reader == static_cast<int>(ShmRing::Status::Aborted));
    CHECK(writer == static_cast<int>(ShmRing::Status::Aborted));
    CHECK(seg.aborted());
}

TEST_CASE("shm segment: adopted through a descriptor, with no name left behind") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 1, 4096);
    const int fd = shm_open(n.name.c_str(), O_RDWR, 0);
    REQUIRE(fd >= 0);
    ShmSegment::unlink(n.name);
    CHECK_FALSE(in_dev_shm(n.name));
    ShmSegment mine = ShmSegment::adopt(fd);  // closes fd
    const unsigned char hello[] = {'h', 'i'};
    REQUIRE(mine.ring(0).push(hello, 2) == ShmRing::Status::Ok);
    std::vector<unsigned char> got;
    REQUIRE(seg.ring(0).pop(got) == ShmRing::Status::Ok);
    CHECK(got == std::vector<unsigned char>{'h', 'i'});
    int p[2];
    REQUIRE(pipe(p) == 0);
    close(p[1]);
    CHECK_THROWS_WITH_AS(ShmSegment::adopt(p[0]), doctest::Contains("not a chanflow segment"),
                         std::runtime_error);
}

TEST_CASE("shm segment: the first failure is kept, and strangers are refused") {
    Named n;
    ShmSegment seg = ShmSegment::create(n.name, 1, 4096);
    CHECK(seg.failure().empty());
    CHECK(seg.claim_failure("process 'divide' failed: division by zero"));
    CHECK_FALSE(ShmSegment::open(n.name).claim_failure("a later failure"));
    CHECK(seg.failure() == "process 'divide' failed: division by zero");
    CHECK_THROWS_WITH_AS(ShmSegment::create(n.name, 1, 4096),
                         doctest::Contains("cannot create shared memory"), std::runtime_error);
    CHECK_THROWS_WITH_AS(ShmSegment::open(n.name + ".none"),
                         doctest::Contains("cannot open shared memory"), std::runtime_error);
    // A segment of someone else's is not taken for ours.
    Named other;
    const int fd = shm_open(other.name.c_str(), O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 65536) == 0);
    close(fd);
    CHECK_THROWS_WITH_AS(ShmSegment::open(other.name), doctest::Contains("not a chanflow segment"),
                         std::runtime_error);
}
