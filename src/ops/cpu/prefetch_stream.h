// ops/cpu/prefetch_stream.h — software prefetch that runs a fixed distance ahead of one thread's reads through a list
// of byte ranges (its rows of one weight, then its rows of the next weight, the next layer's, the LM head's).
//
// Why: decode streams every weight once per token. A prefetch a fixed distance ahead inside each matmul's row loop
// stops at the matmul's last row, so each of a decode step's ~200 matmuls (1.2–3.5 MB on a 0.6B model) started cold
// and streamed at 30–34 GB/s against 47 GB/s for the read sweep. With the whole step's reads known in advance (a
// persistent team with static row ranges, model/qwen3_model.cpp), one cursor per thread can run ahead of them across
// matmul boundaries, barriers and the row work between matmuls: the reader calls advance(n) as it consumes n bytes,
// and the cursor prefetches the n bytes that lie `distance` further on in the thread's list.
#pragma once

#include <cstdint>
#include <vector>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define AR_PREFETCH_STREAM_X86 1
#endif

namespace autoround {

class PrefetchStream {
public:
    // Forgets the ranges and rewinds.
    void clear() {
        r_.clear();
        i_ = 0;
        off_ = 0;
    }
    // Appends a range, in the order the thread will read them (empty ones are skipped).
    void add(const void* p, int64_t bytes) {
        if (bytes > 0) r_.push_back(Range{static_cast<const char*>(p), bytes});
    }
    // Prefetches the first `distance` bytes (call once the ranges are added, before reading).
    void start(int64_t distance) { advance(distance); }
    // The reader consumed `bytes` more: prefetches the next `bytes` of the list (nothing past its end).
    void advance(int64_t bytes) {
        while (bytes > 0 && i_ < r_.size()) {
            const Range& r = r_[i_];
            const int64_t take = bytes < r.n - off_ ? bytes : r.n - off_;
            const char* p = r.p + off_;
            const char* end = p + take;
            // every 64-byte line that starts in or overlaps [p, end)
            for (const char* l = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t(63));
                 l < end; l += 64)
                prefetch(l);
            off_ += take;
            bytes -= take;
            if (off_ == r.n) {
                ++i_;
                off_ = 0;
            }
        }
    }
    // Bytes of the list prefetched so far (for tests).
    int64_t position() const {
        int64_t n = off_;
        for (size_t k = 0; k < i_ && k < r_.size(); ++k) n += r_[k].n;
        return n;
    }
    int64_t total() const {
        int64_t n = 0;
        for (const Range& r : r_) n += r.n;
        return n;
    }

private:
    struct Range {
        const char* p;
        int64_t n;
    };
    static void prefetch(const char* p) {
#ifdef AR_PREFETCH_STREAM_X86
        _mm_prefetch(p, _MM_HINT_T0);
#else
        __builtin_prefetch(p, 0, 3);
#endif
    }
    std::vector<Range> r_;
    size_t i_ = 0;
    int64_t off_ = 0;
};

}  // namespace autoround
