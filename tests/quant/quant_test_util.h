// tests/quant/quant_test_util.h — helpers shared by the quant/export tests: an assertion that a call
// throws autoround::Error with given message fragments, int32 views of packed tensors, a
// deterministic random QuantizedTensor with fp16-representable scales, and random token samples
// (also used by the GPU tests in tests/cuda).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "quant/quantized_tensor.h"

namespace autoround::testquant {

inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> fragments) {
    try {
        fn();
    } catch (const autoround::Error& e) {
        const std::string msg = e.what();
        for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
        return;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw a non-autoround exception: " << e.what();
        return;
    }
    ADD_FAILURE() << "did not throw; expected an error containing '" << *fragments.begin() << "'";
}

inline std::vector<int32_t> words_of(const PackedTensor& t) {
    std::vector<int32_t> w(t.bytes.size() / 4);
    std::memcpy(w.data(), t.bytes.data(), w.size() * 4);
    return w;
}

inline std::vector<uint8_t> i32_bytes(const std::vector<int32_t>& w) {
    std::vector<uint8_t> b(w.size() * 4);
    std::memcpy(b.data(), w.data(), b.size());
    return b;
}

inline std::vector<uint8_t> f16_bytes(const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = float_to_fp16(v[i]);
        std::memcpy(b.data() + 2 * i, &h, 2);
    }
    return b;
}

// Random codes in [0, 2^bits-1], fp16-valued scales of both signs, zeros in [zlo, zhi] (sym: 2^(bits-1)).
inline QuantizedTensor random_qt(int bits, int64_t gs, bool sym, int64_t out, int64_t in, uint32_t seed,
                                 int32_t zlo = 1, int32_t zhi = -1) {
    std::mt19937 rng(seed);
    QuantizedTensor q;
    q.name = "test.layer";
    q.bits = bits;
    q.group_size = gs;
    q.sym = sym;
    q.out_features = out;
    q.in_features = in;
    const int64_t ng = q.n_groups();
    const int32_t maxc = (1 << bits) - 1;
    if (zhi < 0) zhi = maxc;
    std::uniform_int_distribution<int> code(0, maxc), zero(zlo, zhi);
    std::uniform_real_distribution<float> sc(-0.05f, 0.05f);
    q.codes.resize(out * in);
    for (auto& c : q.codes) c = static_cast<uint8_t>(code(rng));
    q.scales.resize(out * ng);
    for (auto& s : q.scales) s = fp16_to_float(float_to_fp16(sc(rng)));
    q.zeros.resize(out * ng);
    for (auto& z : q.zeros) z = sym ? (1 << (bits - 1)) : zero(rng);
    return q;
}

// n samples of L token ids uniform in [0, vocab_size) from mt19937(seed) (calibration-like inputs).
inline std::vector<std::vector<int32_t>> random_token_samples(int vocab_size, int n, int L, uint32_t seed) {
    std::mt19937 g(seed);
    std::uniform_int_distribution<int32_t> tok(0, vocab_size - 1);
    std::vector<std::vector<int32_t>> s(n, std::vector<int32_t>(L));
    for (auto& v : s)
        for (auto& t : v) t = tok(g);
    return s;
}

}  // namespace autoround::testquant
