// quant/python_random.h — an emulation of CPython's `random` module (Mersenne Twister MT19937),
// bit-exact for the calls auto-round's mini-batch sampler makes.
//
// Why: auto-round draws the calibration samples of every tuning iteration with
// `IndexSampler` (compressors/utils.py), which shuffles a list 0..nsamples-1 with the *global*
// Python `random` generator seeded by `set_seed(42)`; the stream continues across blocks
// (autoround-algorithm.md §2.6). Reproducing the exact index sequence needs CPython's generator:
//   * seed(n):        init_by_array(key) with key = the 32-bit words of |n|, least significant first
//                     ([0] for n = 0) — CPython's random_seed for int arguments;
//   * getrandbits(k): k <= 32: genrand_uint32() >> (32 - k); k > 32: words filled little end first,
//                     the last (most significant) word truncated;
//   * _randbelow(n):  k = bit_length(n); r = getrandbits(k) until r < n (rejection sampling);
//   * shuffle(x):     for i = len-1 .. 1: j = _randbelow(i + 1); swap(x[i], x[j]);
//   * random():       (a·2^26 + b) / 2^53 with a = genrand >> 5, b = genrand >> 6.
// Checked against /usr/bin/python3 by tests/quant/test_python_random.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace autoround {

class PythonRandom {
public:
    explicit PythonRandom(uint64_t seed = 42) { seed_int(seed); }

    void seed_int(uint64_t seed);                          // random.seed(seed) for a non-negative int
    void init_by_array(const std::vector<uint32_t>& key);  // MT19937 init_by_array
    uint32_t genrand_uint32();                             // one 32-bit output of MT19937
    uint64_t getrandbits(int k);                           // random.getrandbits(k), 0 <= k <= 64
    uint64_t randbelow(uint64_t n);                        // random._randbelow(n), n >= 1
    double random();                                       // random.random()

    // The generator's whole state (random.getstate()'s MT words and position), for tuning checkpoints.
    struct State {
        std::array<uint32_t, 624> mt{};
        int mti = 625;
    };
    State state() const { return {mt_, mti_}; }
    void set_state(const State& s) {
        mt_ = s.mt;
        mti_ = s.mti;
    }

    // random.shuffle(x) (Fisher–Yates from the end).
    template <typename T>
    void shuffle(std::vector<T>& x) {
        for (std::size_t i = x.size(); i-- > 1;) {
            const std::size_t j = static_cast<std::size_t>(randbelow(static_cast<uint64_t>(i) + 1));
            std::swap(x[i], x[j]);
        }
    }

private:
    void init_genrand(uint32_t s);
    std::array<uint32_t, 624> mt_{};
    int mti_ = 625;
};

// auto-round's IndexSampler: a list 0..nsamples-1 shuffled at construction; next_batch() returns the next
// `batch_size` consecutive entries and reshuffles the whole list (restarting at 0) when fewer remain.
class IndexSampler {
public:
    // Throws autoround::Error unless 0 < batch_size <= nsamples.
    IndexSampler(int64_t nsamples, int64_t batch_size, PythonRandom& rng);
    std::vector<int64_t> next_batch();

private:
    int64_t nsamples_, batch_size_, index_ = 0;
    std::vector<int64_t> indices_;
    PythonRandom* rng_;
};

}  // namespace autoround
