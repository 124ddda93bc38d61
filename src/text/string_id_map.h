// text/string_id_map.h — a flat open-addressing map from token string to id.
//
// Why: loading Qwen3's tokenizer.json does ~600k string lookups (151k vocab entries, then three
// per merge). std::unordered_map spends most of that time chasing node pointers; here the slots
// are one flat array (hash, id, offset, length) and the strings sit back to back in one arena, so
// a lookup is about two cache misses.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

class StringIdMap {
public:
    void reserve(std::size_t n) {
        std::size_t cap = 16;
        while (cap < n * 2) cap <<= 1;
        if (cap > slots_.size()) rehash(cap);
    }

    // Inserts s -> id; returns false (and changes nothing) if s is already present.
    bool insert(std::string_view s, int32_t id) { return insert_hashed(s, hash(s), id); }
    bool insert_hashed(std::string_view s, uint64_t h, int32_t id) {
        if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
        const auto h32 = static_cast<uint32_t>(h >> 32);
        std::size_t i = h & mask_;
        while (slots_[i].id >= 0) {
            if (slots_[i].hash == h32 && view(slots_[i]) == s) return false;
            i = (i + 1) & mask_;
        }
        slots_[i] = {h32, id, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
        arena_.append(s);
        ++size_;
        return true;
    }

    // Returns the id of s, or -1.
    int32_t find(std::string_view s) const { return find_hashed(s, hash(s)); }

    // For batched lookups: hash first, prefetch the slot, look up later (hides cache misses).
    static uint64_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }
    void prefetch(uint64_t h) const {
        if (!slots_.empty()) __builtin_prefetch(&slots_[h & mask_]);
    }
    int32_t find_hashed(std::string_view s, uint64_t h) const {
        if (slots_.empty()) return -1;
        const auto h32 = static_cast<uint32_t>(h >> 32);
        std::size_t i = h & mask_;
        while (slots_[i].id >= 0) {
            if (slots_[i].hash == h32 && view(slots_[i]) == s) return slots_[i].id;
            i = (i + 1) & mask_;
        }
        return -1;
    }

    std::size_t size() const { return size_; }

private:
    struct Slot {
        uint32_t hash;  // high half of the 64-bit hash (the low bits pick the slot)
        int32_t id;     // -1: empty
        uint32_t off, len;
    };
    std::string_view view(const Slot& s) const { return std::string_view(arena_).substr(s.off, s.len); }
    void rehash(std::size_t cap) {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(cap, Slot{0, -1, 0, 0});  // 16-byte slots, four per cache line
        mask_ = cap - 1;
        for (const Slot& s : old) {
            if (s.id < 0) continue;
            std::size_t i = hash(view(s)) & mask_;
            while (slots_[i].id >= 0) i = (i + 1) & mask_;
            slots_[i] = s;
        }
    }

    std::vector<Slot> slots_;
    std::string arena_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

}  // namespace autoround
