// quant/python_random.cpp — see python_random.h. MT19937 as published by Matsumoto & Nishimura
// (init_genrand, init_by_array, genrand_int32), plus CPython's seeding and derived functions.
#include "quant/python_random.h"

#include "core/error.h"

namespace autoround {

namespace {
constexpr int kN = 624, kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU, kUpper = 0x80000000U, kLower = 0x7fffffffU;
}  // namespace

void PythonRandom::init_genrand(uint32_t s) {
    mt_[0] = s;
    for (int i = 1; i < kN; ++i) mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    mti_ = kN;
}

void PythonRandom::init_by_array(const std::vector<uint32_t>& key) {
    init_genrand(19650218U);
    const int len = static_cast<int>(key.size());
    int i = 1, j = 0;
    for (int k = (kN > len ? kN : len); k; --k) {
        mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] + static_cast<uint32_t>(j);
        ++i;
        ++j;
        if (i >= kN) {
            mt_[0] = mt_[kN - 1];
            i = 1;
        }
        if (j >= len) j = 0;
    }
    for (int k = kN - 1; k; --k) {
        mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
        ++i;
        if (i >= kN) {
            mt_[0] = mt_[kN - 1];
            i = 1;
        }
    }
    mt_[0] = 0x80000000U;  // MSB is 1, assuring a non-zero initial array
    mti_ = kN;
}

void PythonRandom::seed_int(uint64_t seed) {
    // CPython: key = 32-bit words of |n|, little end first; n == 0 gives the single word 0.
    std::vector<uint32_t> key;
    if (seed == 0) key.push_back(0);
    while (seed) {
        key.push_back(static_cast<uint32_t>(seed & 0xffffffffU));
        seed >>= 32;
    }
    init_by_array(key);
}

uint32_t PythonRandom::genrand_uint32() {
    static constexpr uint32_t mag01[2] = {0U, kMatrixA};
    if (mti_ >= kN) {
        int kk = 0;
        for (; kk < kN - kM; ++kk) {
            const uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
            mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ mag01[y & 1U];
        }
        for (; kk < kN - 1; ++kk) {
            const uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
            mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ mag01[y & 1U];
        }
        const uint32_t y = (mt_[kN - 1] & kUpper) | (mt_[0] & kLower);
        mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ mag01[y & 1U];
        mti_ = 0;
    }
    uint32_t y = mt_[mti_++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

uint64_t PythonRandom::getrandbits(int k) {
    check(k >= 0 && k <= 64, "getrandbits: k must be in [0, 64], got ", k);
    if (k == 0) return 0;
    if (k <= 32) return genrand_uint32() >> (32 - k);
    // CPython fills 32-bit words from the least significant one; the last word keeps its top bits.
    const uint64_t lo = genrand_uint32();
    const uint64_t hi = genrand_uint32() >> (64 - k);
    return lo | (hi << 32);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
    check(n >= 1, "randbelow: n must be positive");
    int k = 0;
    for (uint64_t t = n; t; t >>= 1) ++k;  // n.bit_length()
    uint64_t r = getrandbits(k);
    while (r >= n) r = getrandbits(k);
    return r;
}

double PythonRandom::random() {
    const uint32_t a = genrand_uint32() >> 5, b = genrand_uint32() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

IndexSampler::IndexSampler(int64_t nsamples, int64_t batch_size, PythonRandom& rng)
    : nsamples_(nsamples), batch_size_(batch_size), rng_(&rng) {
    check(batch_size > 0 && batch_size <= nsamples, "IndexSampler: batch_size must be in (0, nsamples]; got batch ",
          batch_size, " for ", nsamples, " samples");
    indices_.resize(static_cast<size_t>(nsamples));
    for (int64_t i = 0; i < nsamples; ++i) indices_[static_cast<size_t>(i)] = i;
    rng_->shuffle(indices_);
}

std::vector<int64_t> IndexSampler::next_batch() {
    if (index_ + batch_size_ > nsamples_) {
        rng_->shuffle(indices_);
        index_ = 0;
    }
    std::vector<int64_t> b(indices_.begin() + index_, indices_.begin() + index_ + batch_size_);
    index_ += batch_size_;
    return b;
}

}  // namespace autoround
