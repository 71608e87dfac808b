// shm_ring.cpp — the shared segment and its rings (shm_ring.hpp).
#include "shm_ring.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "spinlock.hpp"

namespace chanflow::detail {
namespace {

constexpr std::uint64_t kMagic = 0x63686e666c6f7731;  // "chnflow1"
constexpr std::size_t kLine = 64;
constexpr int kSpins = 200;  // before a futex wait: most waits end sooner than a wake-up

std::size_t round_up(std::size_t n, std::size_t to) {
    return (n + to - 1) / to * to;
}

// Process-shared futexes: the words live in a MAP_SHARED mapping.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen) noexcept {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, nullptr, nullptr,
            0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

std::runtime_error sys_error(const std::string& what, const std::string& name) {
    return std::runtime_error(what + " '" + name + "': " + std::strerror(errno));
}

}  // namespace

struct ShmSegment::Header {
    std::uint64_t magic;
    std::uint64_t size;  // of the whole segment
    std::uint64_t rings;
    std::uint64_t ring_bytes;  // data bytes per ring, a power of two
    std::atomic<std::uint32_t> aborted;
    std::atomic<std::uint32_t> failure_claimed;
    std::atomic<std::uint32_t> failure_ready;
    char failure[2048];
    // Per partition, for the launcher's deadlock check: quiet (nothing can run until a ring
    // changes), how often a ring woke it, and what its processes wait on when quiet.
    struct Slot {
        std::atomic<std::uint32_t> quiet;
        std::atomic<std::uint64_t> wakes;
        std::atomic<std::uint64_t> beats;  // the partition is alive: its ticker counts
        std::uint32_t report_size;
        char report[kReportBytes];
        // Progress (run --progress): sized sources, and messages written to channels.
        std::atomic<std::uint64_t> messages;
        std::atomic<std::uint32_t> sources;  // how many entries below are filled
        struct Source {
            char name[64];
            std::uint32_t unit;
            std::atomic<std::uint64_t> done, total;
        } source[kMaxSources];
    } slots[kMaxPartitions];
};

// Producer fields and consumer fields on cache lines of their own.
struct ShmRing::Control {
    alignas(kLine) std::atomic<std::uint64_t> head;  // bytes consumed
    std::atomic<std::uint32_t> space_seq;            // futex: room was made
    std::atomic<std::uint32_t> producer_waiting;
    std::atomic<std::uint32_t> gone;                 // the consumer reads no more
    alignas(kLine) std::atomic<std::uint64_t> tail;  // bytes produced
    std::atomic<std::uint32_t> data_seq;             // futex: a frame arrived
    std::atomic<std::uint32_t> consumer_waiting;
    std::atomic<std::uint32_t> closed;  // the producer sends no more
    alignas(kLine) std::uint64_t capacity;
};

std::size_t ShmSegment::header_bytes() noexcept {
    return round_up(sizeof(Header), kLine);
}

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// ---- the segment ---------------------------------------------------------------------------

namespace {
// The bytes of a segment of `rings` rings of `ring_bytes` (rounded up to a power of two).
std::size_t ring_capacity(std::size_t ring_bytes) {
    std::size_t bytes = 4096;
    while (bytes < ring_bytes) bytes *= 2;
    return bytes;
}
}  // namespace

std::size_t ShmSegment::size_for(std::size_t rings, std::size_t ring_bytes) {
    const std::size_t stride =
        round_up(sizeof(ShmRing::Control), kLine) + ring_capacity(ring_bytes);
    return header_bytes() + rings * stride;
}

// Lays out a new, zero-filled mapping: every counter and flag starts at 0.
ShmSegment ShmSegment::lay_out(void* base, std::size_t size, std::size_t rings,
                               std::size_t ring_bytes) {
    const std::size_t bytes = ring_capacity(ring_bytes);
    const std::size_t stride = round_up(sizeof(ShmRing::Control), kLine) + bytes;
    auto* h = new (base) Header{};
    h->magic = kMagic;
    h->size = size;
    h->rings = rings;
    h->ring_bytes = bytes;
    auto* p = static_cast<unsigned char*>(base) + header_bytes();
    for (std::size_t i = 0; i < rings; ++i, p += stride) {
        auto* c = new (p) ShmRing::Control{};
        c->capacity = bytes;
    }
    return ShmSegment(base, size);
}

ShmSegment ShmSegment::create(const std::string& name, std::size_t rings, std::size_t ring_bytes) {
    const std::size_t size = size_for(rings, ring_bytes);
    const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) throw sys_error("cannot create shared memory", name);
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
        const int e = errno;
        close(fd);
        shm_unlink(name.c_str());
        errno = e;
        throw sys_error("cannot size shared memory", name);
    }
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        shm_unlink(name.c_str());
        throw sys_error("cannot map shared memory", name);
    }
    return lay_out(base, size, rings, ring_bytes);  // ftruncate zero-fills
}

ShmSegment ShmSegment::anonymous(std::size_t rings, std::size_t ring_bytes) {
    const std::size_t size = size_for(rings, ring_bytes);
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        throw std::runtime_error(std::string("cannot map shared memory: ") + std::strerror(errno));
    return lay_out(base, size, rings, ring_bytes);  // anonymous memory starts zeroed
}

ShmSegment ShmSegment::open(const std::string& name) {
    const int fd = shm_open(name.c_str(), O_RDWR, 0);
    if (fd < 0) throw sys_error("cannot open shared memory", name);
    return map(fd, "shared memory '" + name + "'");
}

ShmSegment ShmSegment::adopt(int fd) {
    return map(fd, "the shared memory of descriptor " + std::to_string(fd));
}

ShmSegment ShmSegment::map(int fd, const std::string& what) {
    struct stat st {};
    if (fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < header_bytes()) {
        close(fd);
        throw std::runtime_error(what + " is not a chanflow segment");
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        throw std::runtime_error("cannot map " + what + ": " + std::strerror(errno));
    ShmSegment s(base, size);
    const Header& h = s.header();
    const std::size_t stride = round_up(sizeof(ShmRing::Control), kLine) + h.ring_bytes;
    if (h.magic != kMagic || h.size != size || h.ring_bytes == 0 ||
        (h.ring_bytes & (h.ring_bytes - 1)) != 0 || h.rings > (size - header_bytes()) / stride)
        throw std::runtime_error(what + " is not a chanflow segment");
    return s;
}

void ShmSegment::unlink(const std::string& name) noexcept {
    shm_unlink(name.c_str());
}

ShmSegment::ShmSegment(ShmSegment&& o) noexcept : base_(o.base_), size_(o.size_) {
    o.base_ = nullptr;
}

ShmSegment& ShmSegment::operator=(ShmSegment&& o) noexcept {
    if (this != &o) {
        if (base_) munmap(base_, size_);
        base_ = o.base_;
        size_ = o.size_;
        o.base_ = nullptr;
    }
    return *this;
}

ShmSegment::~ShmSegment() {
    if (base_) munmap(base_, size_);
}

std::size_t ShmSegment::ring_count() const noexcept {
    return header().rings;
}

ShmRing ShmSegment::ring(std::size_t i) const {
    if (i >= ring_count()) throw std::out_of_range("no ring " + std::to_string(i));
    const std::size_t control = round_up(sizeof(ShmRing::Control), kLine);
    auto* p =
        static_cast<unsigned char*>(base_) + header_bytes() + i * (control + header().ring_bytes);
    return ShmRing(reinterpret_cast<ShmRing::Control*>(p), p + control, &header().aborted);
}

void ShmSegment::abort() noexcept {
    header().aborted.store(1, std::memory_order_seq_cst);
    for (std::size_t i = 0; i < ring_count(); ++i) {
        ShmRing r = ring(i);
        r.c_->data_seq.fetch_add(1, std::memory_order_seq_cst);
        r.c_->space_seq.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(r.c_->data_seq);
        futex_wake_all(r.c_->space_seq);
    }
}

void ShmSegment::set_quiet(int k, const std::string& report) noexcept {
    if (k < 0 || k >= kMaxPartitions) return;
    auto& slot = header().slots[k];
    const std::size_t n = std::min(report.size(), sizeof slot.report);
    std::memcpy(slot.report, report.data(), n);
    slot.report_size = static_cast<std::uint32_t>(n);
    slot.quiet.store(1, std::memory_order_release);
}

bool ShmSegment::quiet(int k) const noexcept {
    if (k < 0 || k >= kMaxPartitions) return false;
    return header().slots[k].quiet.load(std::memory_order_acquire) != 0;
}

void ShmSegment::set_woken(int k) noexcept {
    if (k < 0 || k >= kMaxPartitions) return;
    auto& slot = header().slots[k];
    slot.quiet.store(0, std::memory_order_seq_cst);
    slot.wakes.fetch_add(1, std::memory_order_seq_cst);
}

void ShmSegment::beat(int k) noexcept {
    if (k < 0 || k >= kMaxPartitions) return;
    header().slots[k].beats.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t ShmSegment::beats(int k) const noexcept {
    if (k < 0 || k >= kMaxPartitions) return 0;
    return header().slots[k].beats.load(std::memory_order_relaxed);
}

ShmSegment::PartitionState ShmSegment::partition(int k) const {
    if (k < 0 || k >= kMaxPartitions) return {};
    const auto& slot = header().slots[k];
    PartitionState st;
    st.wakes = slot.wakes.load(std::memory_order_seq_cst);
    st.quiet = slot.quiet.load(std::memory_order_acquire) != 0;
    if (st.quiet)
        st.report.assign(slot.report, std::min<std::size_t>(slot.report_size, sizeof slot.report));
    return st;
}

void ShmSegment::set_progress(int k, const Progress& p) noexcept {
    if (k < 0 || k >= kMaxPartitions) return;
    auto& slot = header().slots[k];
    slot.messages.store(p.messages, std::memory_order_relaxed);
    std::uint32_t filled = slot.sources.load(std::memory_order_relaxed);
    for (const SourceProgress& src : p.sources) {
        std::uint32_t i = 0;
        while (i < filled &&
               std::strncmp(slot.source[i].name, src.name.c_str(), sizeof slot.source[i].name) != 0)
            ++i;
        if (i == filled) {  // a new one: its name first, then count it
            if (filled == kMaxSources) continue;
            auto& e = slot.source[filled];
            const std::size_t n = std::min(src.name.size(), sizeof e.name - 1);
            std::memcpy(e.name, src.name.data(), n);
            e.name[n] = '\0';
            e.unit = static_cast<std::uint32_t>(src.unit);
            e.total.store(src.total, std::memory_order_relaxed);
            e.done.store(src.done, std::memory_order_relaxed);
            slot.sources.store(++filled, std::memory_order_release);
            continue;
        }
        slot.source[i].total.store(src.total, std::memory_order_relaxed);
        slot.source[i].done.store(src.done, std::memory_order_relaxed);
    }
}

void ShmSegment::add_progress(int k, Progress& into) const {
    if (k < 0 || k >= kMaxPartitions) return;
    const auto& slot = header().slots[k];
    into.messages += slot.messages.load(std::memory_order_relaxed);
    const std::uint32_t filled = std::min<std::uint32_t>(
        slot.sources.load(std::memory_order_acquire), static_cast<std::uint32_t>(kMaxSources));
    for (std::uint32_t i = 0; i < filled; ++i) {
        const auto& e = slot.source[i];
        const std::string name(e.name, strnlen(e.name, sizeof e.name));
        auto it = std::find_if(into.sources.begin(), into.sources.end(),
                               [&](const SourceProgress& s) { return s.name == name; });
        if (it == into.sources.end())
            it = into.sources.insert(
                into.sources.end(),
                {name, e.unit ? ProgressUnit::Bytes : ProgressUnit::Items, 0, 0});
        it->done += e.done.load(std::memory_order_relaxed);
        it->total += e.total.load(std::memory_order_relaxed);
    }
}

bool ShmSegment::wake_pending(std::size_t i) const {
    const ShmRing r = ring(i);
    const std::uint64_t head = r.c_->head.load(std::memory_order_seq_cst);
    const std::uint64_t tail = r.c_->tail.load(std::memory_order_seq_cst);
    const bool consumer = r.c_->consumer_waiting.load(std::memory_order_seq_cst) &&
                          (tail != head || r.c_->closed.load(std::memory_order_seq_cst));
    // A producer waits for room for one frame: any room at all may be enough.
    const bool producer =
        r.c_->producer_waiting.load(std::memory_order_seq_cst) &&
        (tail - head < r.c_->capacity || r.c_->gone.load(std::memory_order_seq_cst));
    return consumer || producer;
}

bool ShmSegment::aborted() const noexcept {
    return header().aborted.load(std::memory_order_acquire) != 0;
}

bool ShmSegment::claim_failure(const std::string& message) noexcept {
    std::uint32_t expected = 0;
    if (!header().failure_claimed.compare_exchange_strong(expected, 1)) return false;
    // Too long a message keeps its start and its end (where the cause usually is).
    constexpr std::size_t room = sizeof(Header::failure) - 1;
    constexpr std::string_view cut = " [...] ";
    char* out = header().failure;
    std::size_t n = message.size();
    if (n <= room) {
        std::memcpy(out, message.data(), n);
    } else {
        const std::size_t head = (room - cut.size()) / 2;
        const std::size_t tail = room - cut.size() - head;
        std::memcpy(out, message.data(), head);
        std::memcpy(out + head, cut.data(), cut.size());
        std::memcpy(out + head + cut.size(), message.data() + message.size() - tail, tail);
        n = room;
    }
    out[n] = '\0';
    header().failure_ready.store(1, std::memory_order_release);
    return true;
}

std::string ShmSegment::failure() const {
    if (header().failure_ready.load(std::memory_order_acquire) == 0) return {};
    return std::string(header().failure, strnlen(header().failure, sizeof(Header::failure)));
}

// ---- a ring --------------------------------------------------------------------------------

std::size_t ShmRing::capacity() const noexcept {
    return c_->capacity;
}

ShmRing::Status ShmRing::try_push(const unsigned char* data, std::size_t size) {
    const std::uint64_t cap = c_->capacity;
    const std::uint64_t need = 4 + size;
    if (need > cap) throw std::length_error("a frame larger than its ring");
    if (aborted_->load(std::memory_order_acquire)) return Status::Aborted;
    if (c_->gone.load(std::memory_order_acquire)) return Status::ReaderGone;
    const std::uint64_t tail = c_->tail.load(std::memory_order_relaxed);
    const std::uint64_t head = c_->head.load(std::memory_order_seq_cst);
    if (cap - (tail - head) < need) return Status::Full;
    if (c_->producer_waiting.load(std::memory_order_relaxed))
        c_->producer_waiting.store(0, std::memory_order_relaxed);  // it waits no more
    const auto len = static_cast<std::uint32_t>(size);
    unsigned char header[4];
    std::memcpy(header, &len, 4);
    auto put = [&](std::uint64_t at, const unsigned char* from, std::size_t n) {
        if (n == 0) return;  // an empty frame: data may be null
        const std::size_t off = at & (cap - 1);
        const std::size_t first = std::min<std::size_t>(n, cap - off);
        std::memcpy(data_ + off, from, first);
        std::memcpy(data_, from + first, n - first);
    };
    put(tail, header, 4);
    put(tail + 4, data, size);
    c_->tail.store(tail + need, std::memory_order_seq_cst);
    if (c_->consumer_waiting.load(std::memory_order_seq_cst)) {
        c_->data_seq.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(c_->data_seq);
    }
    return Status::Ok;
}

std::optional<ShmRing::Wait> ShmRing::wait_for_room(std::size_t size) {
    // Announce the wait, then look again: the consumer checks the flag after it frees room,
    // so one of the two sees the other.
    const std::uint32_t seen = c_->space_seq.load(std::memory_order_seq_cst);
    c_->producer_waiting.store(1, std::memory_order_seq_cst);
    const std::uint64_t tail = c_->tail.load(std::memory_order_relaxed);
    const std::uint64_t head = c_->head.load(std::memory_order_seq_cst);
    if (c_->capacity - (tail - head) >= 4 + size || aborted_->load(std::memory_order_seq_cst) ||
        c_->gone.load(std::memory_order_seq_cst))
        return std::nullopt;  // no need: try again
    return Wait{&c_->space_seq, seen};
}

std::optional<ShmRing::Wait> ShmRing::wait_for_data() {
    const std::uint32_t seen = c_->data_seq.load(std::memory_order_seq_cst);
    c_->consumer_waiting.store(1, std::memory_order_seq_cst);
    if (c_->tail.load(std::memory_order_seq_cst) != c_->head.load(std::memory_order_relaxed) ||
        c_->closed.load(std::memory_order_seq_cst) || aborted_->load(std::memory_order_seq_cst))
        return std::nullopt;
    return Wait{&c_->data_seq, seen};
}

ShmRing::Status ShmRing::push(const unsigned char* data, std::size_t size) {
    for (int spins = 0;; ++spins) {
        const Status s = try_push(data, size);
        if (s != Status::Full) return s;
        if (spins < kSpins) {
            CHANFLOW_CPU_RELAX();
            continue;
        }
        if (auto w = wait_for_room(size)) futex_wait(*w->word, w->seen);
        spins = 0;
    }
}

// Nothing to read at `head`: true (with the status) when nothing ever will be.
bool ShmRing::ended(std::uint64_t head, Status& status) const noexcept {
    if (aborted_->load(std::memory_order_acquire)) {
        status = Status::Aborted;
        return true;
    }
    // closed is set after the last frame's tail: if it is set, that tail is visible.
    if (c_->closed.load(std::memory_order_seq_cst) &&
        c_->tail.load(std::memory_order_seq_cst) == head) {
        status = Status::Closed;
        return true;
    }
    return false;
}

bool ShmRing::try_pop(std::vector<unsigned char>& out, Status& status) {
    std::span<const unsigned char> frame;
    if (!try_peek(frame, out, status)) return false;
    if (status != Status::Ok) return true;
    if (frame.data() != out.data()) out.assign(frame.begin(), frame.end());  // else copied
    release();
    return true;
}

bool ShmRing::try_peek(std::span<const unsigned char>& frame, std::vector<unsigned char>& copy,
                       Status& status) {
    const std::uint64_t cap = c_->capacity;
    const std::uint64_t head = c_->head.load(std::memory_order_relaxed);
    const std::uint64_t tail = c_->tail.load(std::memory_order_seq_cst);
    if (tail == head) return ended(head, status);
    if (c_->consumer_waiting.load(std::memory_order_relaxed))
        c_->consumer_waiting.store(0, std::memory_order_relaxed);
    unsigned char header[4];
    for (std::size_t i = 0; i < 4; ++i) header[i] = data_[(head + i) & (cap - 1)];
    std::uint32_t len;
    std::memcpy(&len, header, 4);
    if (len > cap - 4 || len + std::uint64_t{4} > tail - head)
        throw std::runtime_error("a shared-memory ring holds a frame longer than what was sent");
    const std::size_t off = (head + 4) & (cap - 1);
    if (off + len <= cap) {
        frame = {data_ + off, len};
    } else {  // it wraps: two pieces, joined in the copy
        const std::size_t first = cap - off;
        copy.resize(len);
        std::memcpy(copy.data(), data_ + off, first);
        std::memcpy(copy.data() + first, data_, len - first);
        frame = {copy.data(), len};
    }
    peeked_ = 4 + std::uint64_t{len};
    status = Status::Ok;
    return true;
}

void ShmRing::release() noexcept {
    if (peeked_ == 0) return;
    c_->head.store(c_->head.load(std::memory_order_relaxed) + peeked_, std::memory_order_seq_cst);
    peeked_ = 0;
    if (c_->producer_waiting.load(std::memory_order_seq_cst)) {
        c_->space_seq.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(c_->space_seq);
    }
}

ShmRing::Status ShmRing::pop(std::vector<unsigned char>& out) {
    Status status = Status::Ok;
    for (int spins = 0;; ++spins) {
        if (try_pop(out, status)) return status;
        if (spins < kSpins) {
            CHANFLOW_CPU_RELAX();
            continue;
        }
        if (auto w = wait_for_data()) futex_wait(*w->word, w->seen);
        spins = 0;
    }
}

void ShmRing::close() noexcept {
    c_->closed.store(1, std::memory_order_seq_cst);
    c_->data_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(c_->data_seq);
}

void ShmRing::reader_gone() noexcept {
    c_->gone.store(1, std::memory_order_seq_cst);
    c_->space_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(c_->space_seq);
}

}  // namespace chanflow::detail
