// A table of counts per string: count_by_key's and text.count_words's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chanflow/bytes.hpp"

namespace chanflow::detail {

// Counts per string key in one open-addressing table, the key bytes in one arena: lookups
// by string_view allocate nothing, and the table's memory is its own (map nodes allocated
// among the messages would share cache lines with what other cores are writing).
class StringCounts {
public:
    std::int64_t& operator[](std::string_view key) {
        if (4 * (used_ + 1) > 3 * slots_.size()) grow();
        const std::uint64_t h = hash(key);
        const std::uint32_t tag = tag_of(h, key.size());
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.offset == kEmpty) {
                if (arena_.size() + key.size() + 8 >= kEmpty)
                    throw std::length_error("too many distinct strings to count (4 GiB of keys)");
                s = {tag, static_cast<std::uint32_t>(arena_.size()), 0};
                const auto len = static_cast<std::uint64_t>(key.size());
                arena_.append(reinterpret_cast<const char*>(&len), sizeof len);
                arena_.append(key);
                ++used_;
                return s.count;
            }
            if (s.tag != tag) continue;
            const std::string_view k = stored(s);  // the tag holds only 8 bits of the length
            if (k.size() == key.size() && equal_bytes(k.data(), key.data(), key.size()))
                return s.count;
        }
    }
    std::size_t size() const noexcept { return used_; }
    // Forgets every key; keeps the table's memory.
    void clear() noexcept {
        std::fill(slots_.begin(), slots_.end(), Slot{0, kEmpty, 0});
        used_ = 0;
        arena_.clear();
    }
    template <class F>
    void for_each(F&& f) const {
        for (const Slot& s : slots_)
            if (s.offset != kEmpty) f(stored(s), s.count);
    }

private:
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
    // 16 bytes a slot, so that more of the table stays in cache: a tag of 24 hash bits and
    // 8 length bits, the key's place in the arena (its length, then its bytes), the count.
    struct Slot {
        std::uint32_t tag;
        std::uint32_t offset;
        std::int64_t count;
    };
    static std::uint32_t tag_of(std::uint64_t h, std::size_t len) noexcept {
        return static_cast<std::uint32_t>(h >> 40) << 8 | static_cast<std::uint32_t>(len & 0xff);
    }
    std::string_view stored(const Slot& s) const noexcept {
        std::uint64_t len;
        std::memcpy(&len, arena_.data() + s.offset, sizeof len);
        return {arena_.data() + s.offset + sizeof len, static_cast<std::size_t>(len)};
    }
    // Words are short: hashed eight bytes at a time, inline.
    static std::uint64_t hash(std::string_view k) noexcept {
        std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ k.size();
        const auto* p = reinterpret_cast<const unsigned char*>(k.data());
        std::size_t n = k.size();
        auto fold = [&](std::uint64_t w) {
            h = (h ^ w) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        };
        for (; n >= 8; p += 8, n -= 8) fold(load_le64(p));
        if (n) fold(load_le_partial(p, n));
        return h;
    }
    void grow() {
        std::vector<Slot> old(slots_.empty() ? 1024 : slots_.size() * 2, Slot{0, kEmpty, 0});
        old.swap(slots_);
        mask_ = slots_.size() - 1;
        for (const Slot& s : old) {
            if (s.offset == kEmpty) continue;
            std::size_t i = hash(stored(s)) & mask_;
            while (slots_[i].offset != kEmpty) i = (i + 1) & mask_;
            slots_[i] = s;
        }
    }
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t used_ = 0;
    std::string arena_;
};

}  // namespace chanflow::detail
