// ops/cpu/fake_quant.h — the differentiable fake quantization (QDQ) of one Linear weight that the
// SignRound tuner evaluates every iteration, forward and backward (autoround-algorithm.md §2.1–2.3).
//
// Why here: the tuner learns V (rounding offsets), α (min_scale) and β (max_scale) per layer; the loss
// gradient arrives as dL/dW_q from the block's backward and must be mapped to dV, dα, dβ with exactly
// PyTorch's autograd/STE semantics. quant/rtn.h holds the export-side quantizer (codes, scales); the
// forward here computes the same values (tested) but without integer codes, and adds the backward.
//
// Shapes (FakeQuantShape): W, W_q [out, in]; gs = effective group size (= in for per-channel, i.e.
// group_size == -1 or in < group_size); G = ceil(in / gs) groups per row; group g = o·G + j covers
// columns j·gs .. j·gs+gs-1 of row o, the last group of a row padded with zeros when gs ∤ in.
//   V      [out, G·gs]  padded layout (== auto-round's [out·G, gs] row-major; == [out, in] when gs | in).
//                       Padded entries never influence W_q and get dV = 0.
//   α, β   [out·G]      used as clamp(·, 0, 1); the clamp is not differentiated (auto-round clamps .data
//                       in place), so dα/dβ are the gradients wrt the clamped values.
//   wmin   [out·G]      min(0, min of the group), wmax = max(0, max): constants from the original W.
//   scale  [out·G]      s actually used (fp16 value, τ-clamped; negative for sym when the + side wins).
//   zero   [out·G]      sym: Q = 2^(bits-1); asym: z = rint(-wmin·α / s).
//
// Forward per group (float32 math in the float path, T math in the templated reference):
//   sym  (Q = 2^(bits-1)): a = -(wmin·α), b = wmax·β; m = a if b < a else -max(a, b);
//        s = fp16(m / Q); s = (s < 0) ? min(s, -τ) : max(s, τ)   (-0.0 → +τ)
//        y_j = s · clamp(rint(x_j / s + V_j), -Q, Q-1)
//   asym (Qa = 2^bits - 1): s = max(fp16((wmax·β - wmin·α) / Qa), τ); z = rint(-wmin·α / s)
//        y_j = s · (clamp(rint(x_j / s + V_j) + z, 0, Qa) - z)
//   W_q = bf16(y) when out_bf16 (the `.to(weight dtype)`); rint = round half to even.
// Backward (STE): rint has derivative 1; clamp passes iff lo <= t <= hi (inclusive); the τ-clamp
// passes iff not clamped; max(a, b) sends the gradient to the larger, 1/2 each on a tie; the fp16
// and bf16 casts are the identity; the sign factor of m is a constant. Per element (sym)
//   dV_j = g_j·s·1[in range],  ds += g_j·(q_j − 1[in range]·x_j/s)
// and for asym additionally ds += g_j·(q_j − z) …, dz += g_j·s·(1[in range] − 1), z → (wmin', s).
//
// The backward writes (does not accumulate) dV, dα, dβ. It needs only W, the parameters and dW_q:
// everything else is recomputed per group, so nothing is stored between forward and backward.
//
// GGUF k-quant data types (kind AsymDQ / SymDQ: auto-round's int_asym_dq / int_sym_dq, double-quantized
// scales) have their own implementation in ops/cpu/fake_quant_dq.h; the entry points below dispatch to it.
#pragma once

#include <cstdint>

namespace autoround {

// Which quantization function the layer tunes (autoround-algorithm.md §2.10).
enum class FakeQuantKind {
    Int,     // int_sym / int_asym (above)
    AsymDQ,  // GGUF int_asym_dq (q4_k, q5_k, q2_k): per-group scale and min, both double-quantized per super-group
    SymDQ,   // GGUF int_sym_dq (q6_k, q3_k): per-group signed scale, double-quantized per super-group
};

struct FakeQuantConfig {
    int bits = 4;               // 2, 3, 4 or 8 (any 1..8 works)
    int64_t group_size = 128;   // > 0, or -1 = per output channel (0 = per tensor is not supported)
    bool sym = true;            // full-range symmetric (int_sym) or asymmetric (int_asym)
    double tau = 1e-5;          // q_scale_thresh: 1e-5 for fp16 scales, 1e-8 for fp32 scales
    bool scale_fp16 = true;     // cast the scale to fp16 in forward (scale_dtype fp16); identity in backward.
                                // With the cast, the clamped value is fp16(τ) (the reference clamps an fp16 tensor).
    bool out_bf16 = true;       // round W_q to bf16 in forward (cast to the weight dtype); identity in backward
    FakeQuantKind kind = FakeQuantKind::Int;
    int super_group_size = 0;   // DQ kinds: groups per super-group (8 for q4_k / q5_k, 16 for q6_k)
    int super_bits = 0;         // DQ kinds: bits of the super-group's integer scale codes (6, or 8 for q6_k)
};

struct FakeQuantShape {
    int64_t out = 0;  // rows of W
    int64_t in = 0;   // columns of W
    int64_t gs = 0;   // effective group size
    int64_t G = 0;    // groups per row
    int64_t padded_in() const { return G * gs; }  // columns of V
    int64_t groups() const { return out * G; }    // length of α, β, wmin, wmax, scale, zero
};

// Validates and derives the layout (throws autoround::Error for group_size 0 or < -1, empty W).
FakeQuantShape fake_quant_shape(int64_t out, int64_t in, int64_t group_size);

// Pointers to one layer's tensors (shapes above). alpha/beta may be null: constants 1.0.
template <typename T>
struct FakeQuantTensors {
    const T* W = nullptr;      // [out, in] original weight (bf16 values)
    const T* V = nullptr;      // [out, G·gs]; null = all zero
    const T* alpha = nullptr;  // [out·G]
    const T* beta = nullptr;   // [out·G]
    const T* wmin = nullptr;   // [out·G]
    const T* wmax = nullptr;   // [out·G]
};

// wmin/wmax [out·G] of W [out, in] (padding zeros take part; they never matter).
template <typename T>
void fake_quant_minmax(const T* W, const FakeQuantShape& sh, T* wmin, T* wmax);

// Scalar references (float and double instantiations). scale/zero may be null.
template <typename T>
void fake_quant_forward_ref(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                            T* Wq, T* scale, T* zero);
// dWq [out, in] → dV [out, G·gs] (padding = 0), dalpha, dbeta [out·G]; any output may be null.
template <typename T>
void fake_quant_backward_ref(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                             const T* dWq, T* dV, T* dalpha, T* dbeta);

// Fast float32 paths (OpenMP over rows, AVX2 when available). The forward is bit-identical to
// fake_quant_forward_ref<float>; the backward differs only in the summation order of ds.
void fake_quant_forward(const FakeQuantTensors<float>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                        float* Wq, float* scale, float* zero);
void fake_quant_backward(const FakeQuantTensors<float>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                         const float* dWq, float* dV, float* dalpha, float* dbeta);

// Clamps α, β [n] in place to [0, 1] (what auto-round does to the parameters before every forward).
void fake_quant_clamp_minmax(float* alpha, float* beta, int64_t n);

}  // namespace autoround
