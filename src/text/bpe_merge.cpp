// text/bpe_merge.cpp — flat merge table and the two equivalent merge loops (see bpe_merge.h).
#include "text/bpe_merge.h"

#include <algorithm>
#include <climits>

namespace autoround {

void MergeTable::reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    if (cap > slots_.size()) rehash(cap);
}

void MergeTable::rehash(std::size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{kEmpty, {0, 0}});
    mask_ = capacity - 1;
    size_ = 0;
    for (const Slot& s : old)
        if (s.key != kEmpty) insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu), s.entry);
}

void MergeTable::insert(int32_t left, int32_t right, Entry e) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const uint64_t key = pack(left, right);
    std::size_t i = hash(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    if (slots_[i].key == kEmpty) {
        slots_[i].key = key;
        ++size_;
    }
    slots_[i].entry = e;
}

namespace {
constexpr MergeTable::Entry kNoPair{INT_MAX, -1};
constexpr std::size_t kScanMax = 48;  // pieces longer than this use the heap
}  // namespace

void bpe_merge_scan(const MergeTable& table, std::vector<int32_t>& ids, BpeScratch& scratch) {
    std::size_t n = ids.size();
    if (n < 2) return;
    auto& pairs = scratch.pairs;
    pairs.resize(n - 1);
    auto lookup = [&](std::size_t i) {
        const MergeTable::Entry* e = table.find(ids[i], ids[i + 1]);
        return e ? *e : kNoPair;
    };
    for (std::size_t i = 0; i + 1 < n; ++i) pairs[i] = lookup(i);
    int32_t* id = ids.data();
    MergeTable::Entry* pr = pairs.data();
    while (n > 1) {
        int32_t best = INT_MAX;
        std::size_t bi = 0;
        for (std::size_t i = 0; i + 1 < n; ++i) {
            if (pr[i].rank < best) {
                best = pr[i].rank;
                bi = i;
            }
        }
        if (best == INT_MAX) break;
        id[bi] = pr[bi].merged;
        // Remove symbol bi+1 and pair bi; then the pairs touching the new symbol change.
        std::copy(id + bi + 2, id + n, id + bi + 1);
        std::copy(pr + bi + 1, pr + n - 1, pr + bi);
        --n;
        if (bi + 1 < n) pr[bi] = lookup(bi);
        if (bi > 0) pr[bi - 1] = lookup(bi - 1);
    }
    ids.resize(n);
}

void bpe_merge_heap(const MergeTable& table, std::vector<int32_t>& ids, BpeScratch& scratch) {
    const std::size_t n = ids.size();
    if (n < 2) return;
    auto& nodes = scratch.nodes;
    auto& heap = scratch.heap;
    nodes.resize(n);
    heap.clear();
    auto greater = [](const BpeScratch::HeapItem& a, const BpeScratch::HeapItem& b) {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;  // min-heap on (rank, pos)
    };
    for (std::size_t i = 0; i < n; ++i)
        nodes[i] = {ids[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
    for (std::size_t i = 0; i + 1 < n; ++i)
        if (const MergeTable::Entry* e = table.find(ids[i], ids[i + 1]))
            heap.push_back({e->rank, static_cast<int32_t>(i)});
    std::make_heap(heap.begin(), heap.end(), greater);
    auto push = [&](int32_t rank, int32_t pos) {
        heap.push_back({rank, pos});
        std::push_heap(heap.begin(), heap.end(), greater);
    };
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), greater);
        const BpeScratch::HeapItem top = heap.back();
        heap.pop_back();
        BpeScratch::Node& left = nodes[top.pos];
        if (left.id < 0 || left.next < 0) continue;  // merged away, or now the last symbol
        BpeScratch::Node& right = nodes[left.next];
        const MergeTable::Entry* e = table.find(left.id, right.id);
        if (!e || e->rank != top.rank) continue;  // stale: the pair at this position changed
        left.id = e->merged;
        right.id = -1;
        left.next = right.next;
        if (left.next >= 0) nodes[left.next].prev = top.pos;
        if (left.prev >= 0)
            if (const MergeTable::Entry* p = table.find(nodes[left.prev].id, left.id)) push(p->rank, left.prev);
        if (left.next >= 0)
            if (const MergeTable::Entry* q = table.find(left.id, nodes[left.next].id)) push(q->rank, top.pos);
    }
    std::size_t out = 0;
    for (int32_t i = 0; i >= 0; i = nodes[i].next) ids[out++] = nodes[i].id;
    ids.resize(out);
}

void bpe_merge(const MergeTable& table, std::vector<int32_t>& ids, BpeScratch& scratch) {
    if (ids.size() <= kScanMax)
        bpe_merge_scan(table, ids, scratch);
    else
        bpe_merge_heap(table, ids, scratch);
}

}  // namespace autoround
