// text/piece_cache.h — cache of BPE results per pre-tokenized piece (raw bytes -> token ids).
//
// Why: natural text repeats the same words constantly, so after warm-up almost every piece is a
// cache hit. A std::unordered_map made the hit path three dependent cache misses (bucket, node,
// key); this flat table keeps (hash, key offset, ids offset, lengths) in 16-byte slots with keys
// and ids in two arenas, so a hit is one slot probe plus one key compare. Not thread-safe by
// itself: the tokenizer guards it with a mutex. When full it is simply cleared.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

class PieceCache {
public:
    static constexpr std::size_t kMaxKeyBytes = 255;
    static constexpr std::size_t kMaxIds = 255;

    explicit PieceCache(std::size_t max_entries = std::size_t{1} << 18) : max_entries_(max_entries) {}

    static uint64_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }

    // Appends the cached ids of `key` to `out` and returns true, or returns false.
    bool find(std::string_view key, uint64_t h, std::vector<int32_t>& out) const {
        if (slots_.empty()) return false;
        const auto h32 = static_cast<uint32_t>(h >> 32);
        for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.key_len == 0) return false;
            if (s.hash == h32 && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
                const int32_t* b = ids_.data() + s.ids_off;
                out.insert(out.end(), b, b + s.ids_len);
                return true;
            }
        }
    }

    // Stores ids for key (1..kMaxKeyBytes bytes, at most kMaxIds ids); ignores anything else.
    void insert(std::string_view key, uint64_t h, const int32_t* ids, std::size_t n) {
        if (key.empty() || key.size() > kMaxKeyBytes || n > kMaxIds) return;
        if (size_ >= max_entries_ || keys_.size() + key.size() > UINT32_MAX / 2) clear();
        if ((size_ + 1) * 2 > slots_.size()) grow();
        const auto h32 = static_cast<uint32_t>(h >> 32);
        std::size_t i = h & mask_;
        for (;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.key_len == 0) break;
            if (s.hash == h32 && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0)
                return;  // already there
        }
        slots_[i] = {h32, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
                     static_cast<uint8_t>(key.size()), static_cast<uint8_t>(n), 0};
        keys_.append(key);
        ids_.insert(ids_.end(), ids, ids + n);
        ++size_;
    }

    void clear() {
        slots_.clear();
        keys_.clear();
        ids_.clear();
        mask_ = 0;
        size_ = 0;
    }

    std::size_t size() const { return size_; }

private:
    struct Slot {
        uint32_t hash;     // high half of the 64-bit hash
        uint32_t key_off;  // into keys_
        uint32_t ids_off;  // into ids_
        uint8_t key_len;   // 0: empty slot
        uint8_t ids_len;
        uint16_t pad;
    };

    void grow() {
        const std::size_t cap = slots_.empty() ? 4096 : slots_.size() * 2;
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(cap, Slot{0, 0, 0, 0, 0, 0});
        mask_ = cap - 1;
        for (const Slot& s : old) {
            if (s.key_len == 0) continue;
            std::size_t i = hash(std::string_view(keys_.data() + s.key_off, s.key_len)) & mask_;
            while (slots_[i].key_len != 0) i = (i + 1) & mask_;
            slots_[i] = s;
        }
    }

    std::vector<Slot> slots_;
    std::string keys_;
    std::vector<int32_t> ids_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
    std::size_t max_entries_;
};

}  // namespace autoround
