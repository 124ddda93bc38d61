// text/bpe_merge.h — the merge table (pair of ids -> rank, merged id) and the merge loop.
//
// Why: the hot inner step of BPE is "rank of the pair (left id, right id)". A flat open-addressing
// hash keyed by the 64-bit pair avoids string hashing and per-lookup allocation. The merge loop
// applies the lowest-rank pair first, the leftmost on equal rank (the order of Hugging Face's
// BinaryHeap keyed by (rank, position)). Short pieces use an O(n^2) scan over a small array, which
// is fastest for words; long pieces (a huge run of spaces, a fuzzer's input) use a heap over a
// linked list, O(n log n). Both give identical results; tests compare them.
#pragma once

#include <cstdint>
#include <vector>

namespace autoround {

class MergeTable {
public:
    struct Entry {
        int32_t rank;    // index in `merges`; lower merges first
        int32_t merged;  // id of the concatenated token
    };

    void reserve(std::size_t n);
    // Inserts or overwrites (a later duplicate of a pair wins, like a HashMap built in order).
    void insert(int32_t left, int32_t right, Entry e);
    // Returns the entry for (left, right) or nullptr.
    const Entry* find(int32_t left, int32_t right) const {
        if (slots_.empty()) return nullptr;
        const uint64_t key = pack(left, right);
        std::size_t i = hash(key) & mask_;
        while (true) {
            const Slot& s = slots_[i];
            if (s.key == key) return &s.entry;
            if (s.key == kEmpty) return nullptr;
            i = (i + 1) & mask_;
        }
    }
    std::size_t size() const { return size_; }
    void prefetch(int32_t left, int32_t right) const {
        if (!slots_.empty()) __builtin_prefetch(&slots_[hash(pack(left, right)) & mask_]);
    }

private:
    static constexpr uint64_t kEmpty = ~0ull;  // ids are non-negative, so no real key is all ones
    struct Slot {
        uint64_t key;
        Entry entry;
    };
    static uint64_t pack(int32_t a, int32_t b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    static std::size_t hash(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        return static_cast<std::size_t>(k);
    }
    void rehash(std::size_t capacity);

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

// Reusable buffers for bpe_merge (one per thread; avoids allocation per piece).
struct BpeScratch {
    std::vector<int32_t> ids;
    std::vector<MergeTable::Entry> pairs;
    struct Node {
        int32_t id, prev, next;
    };
    std::vector<Node> nodes;
    struct HeapItem {
        int32_t rank, pos;
    };
    std::vector<HeapItem> heap;
};

// Merges `ids` in place (the initial symbols of one piece) until no adjacent pair has a rank.
// Picks the small-array scan or the heap by length.
void bpe_merge(const MergeTable& table, std::vector<int32_t>& ids, BpeScratch& scratch);
// The two algorithms, exposed for tests.
void bpe_merge_scan(const MergeTable& table, std::vector<int32_t>& ids, BpeScratch& scratch);
void bpe_merge_heap(const MergeTable& table, std::vector<int32_t>& ids, BpeScratch& scratch);

}  // namespace autoround
