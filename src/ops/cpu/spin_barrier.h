// ops/cpu/spin_barrier.h — a barrier for a fixed team of threads that spins (then yields) instead of sleeping.
//
// Why: the persistent decode schedule (Qwen3Model::forward, model/qwen3_model.cpp) keeps one OpenMP team for a whole
// decode step and syncs its threads only where one step needs another's rows (4 times per layer), instead of an
// OpenMP fork/join per op. A waiter spins on the generation counter (PAUSE) for kSpins rounds — a sync between two
// busy cores takes well under a microsecond — and then yields its core each round, so a partner thread that another
// process pushed off its core (a shared machine) gets to run instead of being starved by the spinner.
//
// Sense counting: the last thread to arrive resets the count and bumps the generation; the others wait for the bump.
// The generation is read before arriving, so a barrier can be reused at once (the next round cannot complete before
// every thread has arrived at it, i.e. has left this one).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace autoround {

class SpinBarrier {
public:
    explicit SpinBarrier(int threads = 1) : n_(threads) {}
    // Not while threads wait on it.
    void reset(int threads) {
        n_ = threads;
        count_.store(0, std::memory_order_relaxed);
    }
    int threads() const { return n_; }

    // Returns once all threads() threads have called wait() for this round; memory written before a thread's wait()
    // is visible to every thread after its wait() returns.
    void wait() {
        if (n_ <= 1) return;
        const uint32_t gen = gen_.load(std::memory_order_acquire);
        if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
            count_.store(0, std::memory_order_relaxed);
            gen_.store(gen + 1, std::memory_order_release);
            return;
        }
        for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins) {
            if (spins < kSpins) pause();
            else std::this_thread::yield();
        }
    }

private:
    static constexpr int kSpins = 4000;
    static void pause() {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
    }
    alignas(64) std::atomic<int> count_{0};
    alignas(64) std::atomic<uint32_t> gen_{0};
    alignas(64) int n_;
};

}  // namespace autoround
