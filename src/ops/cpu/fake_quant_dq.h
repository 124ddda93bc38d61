// ops/cpu/fake_quant_dq.h — the differentiable fake quantization of auto-round's GGUF k-quant data types
// (int_asym_dq for Q4_K / Q5_K, int_sym_dq for Q6_K; autoround-algorithm.md §2.10, data_type/gguf.py), forward
// and backward, so that the SignRound tuner can optimise the very values a Q4_K / Q5_K / Q6_K super-block stores.
//
// Why separate from fake_quant.h: the per-group scale is not free here — the scales (and, asym, the mins) of
// `super_group_size` consecutive groups of a row are themselves quantized to `super_bits`-bit integers times one
// per-super-group factor (the super-block's d / dmin), so the gradient of one group's scale reaches the whole
// super-group through that factor. fake_quant.h's entry points dispatch here when cfg.kind is a DQ kind.
//
// Layout: as fake_quant.h (V [out, G·gs], α, β, wmin, wmax [out·G]), with two extra requirements: gs | in (no
// padded group) and sg = super_group_size | G, so a super-group is sg consecutive groups of one row — the
// reference's flat view(-1, sg) over [out·G] groups, and exactly one GGUF super-block of 256 weights for the
// k-quant shapes (gs 32 · sg 8, gs 16 · sg 16).
//
// Forward, per super-group (k = 0..sg-1 its groups; all float32 in the float path, rint = half to even):
//   asym (int_asym_dq), Qa = 2^bits - 1, P = 2^super_bits - 1:
//     lo_k = wmin_k·α_k, hi_k = wmax_k·β_k                       (α, β clamped to [0, 1])
//     sr_k = max((hi_k - lo_k) / Qa, τ)   (scale_fp16: fp16 cast first);   mr_k = -lo_k >= 0
//     DQ(t): M = max(0, max_k t_k); d = fp16(M / P); inv = d == 0 ? 0 : 1/d; c_k = min(rint(t_k·inv), P); t'_k = c_k·d
//     s_k = max(DQ(sr)_k, τ);  m_k = DQ(mr)_k
//     y_j = s_k·clamp(rint((x_j + m_k) / s_k + V_j), 0, Qa) - m_k
//   sym (int_sym_dq), Q = 2^(bits-1), P = 2^(super_bits-1):
//     a = -(wmin·α), b = wmax·β;  mv = a if b < a else -max(a, b);  sr_k = mv / Q
//     DQs(t): w = t_k* with k* the first argmax |t_k|; d = fp16(w / -P); inv = d == 0 ? 0 : 1/d;
//             c_k = clamp(rint(t_k·inv), -P, P-1); t'_k = c_k·d
//     s_k = DQs(sr)_k;  y_j = s_k·(clamp((s_k != 0 ? rint(x_j / s_k + V_j) : 0) + Q, 0, 2^bits - 1) - Q)
//   W_q = bf16(y) when out_bf16.
// Deviation from the reference (on purpose): the super-group factor d is rounded to fp16 inside the forward
// (identity in the backward). The reference keeps it in float32 while tuning and a GGUF file can only hold fp16,
// so with the cast the exported super-block dequantizes to exactly the tuned W_q (tested), rather than to a
// slightly different one. Also: when a DQ factor is 0 (all mins of a super-group are 0), the reference's
// 1/d branch would back-propagate NaN through torch.where; here that path gets gradient 0.
//
// Backward (STE): rint has derivative 1, clamps pass inclusively, max(·, τ) passes iff not clamped, the fp16 /
// bf16 casts are the identity, M and w send their gradient to the first argmax, and through the factor d the
// gradient of every group of the super-group reaches that argmax group (d = M/P, inv = 1/d both differentiated).
#pragma once

#include <cstdint>
#include <vector>

#include "ops/cpu/fake_quant.h"

namespace autoround {

// Throws Error unless cfg is a DQ kind with a valid shape (gs | in, super_group_size | G, bits / super_bits).
void check_fake_quant_dq(const FakeQuantShape& sh, const FakeQuantConfig& cfg);

// Scalar references (float and double instantiations); the float versions are also the fast path
// (OpenMP over rows, called by fake_quant_forward / fake_quant_backward).
template <typename T>
void fake_quant_dq_forward(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg, T* Wq);
// dWq [out, in] -> dV [out, G·gs], dalpha, dbeta [out·G] (written, not accumulated); any output may be null.
template <typename T>
void fake_quant_dq_backward(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                            const T* dWq, T* dV, T* dalpha, T* dbeta);

// The integers a GGUF k-quant super-block stores for the forward above (what the tuned layer exports).
struct DoubleQuantCodes {
    int64_t super_groups = 0;       // out · G / sg
    std::vector<uint8_t> codes;     // [out, in] asym: q in 0..Qa; sym: q in 0..2^bits-1 (zero point Q)
    std::vector<float> d;           // [super_groups] fp16 values: scale factor
    std::vector<float> dmin;        // [super_groups] asym only: min factor
    std::vector<int32_t> sc;        // [out·G] asym: 0..P; sym: -P..P-1
    std::vector<int32_t> mn;        // [out·G] asym only: 0..P
    // y = s·q - m (asym, s = d·sc, m = dmin·mn) or s·(q - Q) (sym) reproduces the forward before the bf16 cast,
    // except where the τ clamp raised a zero scale (asym sc == 0: the forward uses s = τ, a file stores 0).
};
DoubleQuantCodes fake_quant_dq_codes(const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                     const FakeQuantConfig& cfg);

}  // namespace autoround
