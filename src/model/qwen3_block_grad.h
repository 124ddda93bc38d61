// model/qwen3_block_grad.h — one Qwen3 decoder block, differentiable, for the SignRound tuner:
// forward on B calibration samples with given (fake-quantized) weights, saving what the backward
// needs, and backward from dL/dY to dL/dW of the 7 quantizable linears; plus the tuner's loss.
//
// Why: the tuner (autoround-algorithm.md §2) minimises the block-output MSE wrt the fake-quant
// parameters; dL/dW_q from here goes into fake_quant_backward (ops/cpu/fake_quant.h) to give
// dV, dα, dβ. The gradient wrt the block input X is produced on request (dX != null in backward):
// it is needed when several consecutive blocks are tuned jointly (--nblocks > 1), so that the loss at
// the last block's output reaches the parameters of the earlier blocks. dX follows both paths:
//   dX = dX2 (residual) + RMSNorm_in'(dq·Wq + dk·Wk + dv·Wv),  dX2 = dY + RMSNorm_post'(…) (see below).
//
// Math (qwen3-architecture.md §1.3–1.7; float32 in the float instantiation, matching Qwen3Model):
//   h1 = RMSNorm(X, w_in)                                   X, h1, X2, Y   [B·L, H]
//   q = h1·Wqᵀ, k = h1·Wkᵀ, v = h1·Wvᵀ                       q [B·L, nq, D], k, v [B·L, nkv, D]
//   q, k = RMSNorm per head (q_norm, k_norm), then RoPE (positions 0..L-1 of every sample, or shared
//          Qwen3-VL M-RoPE positions: set_mrope_positions)
//   a = causal GQA attention(q, k, v)                       a [B·L, nq·D]
//   X2 = X + a·Woᵀ
//   h2 = RMSNorm(X2, w_post); m = silu(h2·Wgateᵀ) ∘ (h2·Wupᵀ)   m [B·L, I]
//   Y  = X2 + m·Wdownᵀ
// The double instantiation runs the same code in float64 (for finite-difference gradient checks).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace autoround {

class Qwen3Model;

// The 7 quantizable linears of a block, in this order everywhere (weights, gradients, names).
enum BlockLinear : int { kLinQ = 0, kLinK, kLinV, kLinO, kLinGate, kLinUp, kLinDown, kNumBlockLinears };

struct Qwen3BlockDims {
    int64_t hidden = 0;        // H
    int64_t n_q_heads = 0;     // nq
    int64_t n_kv_heads = 0;    // nkv (divides nq)
    int64_t head_dim = 0;      // D (even)
    int64_t intermediate = 0;  // I
    double rms_eps = 1e-6;
    bool qk_norm = true;       // Qwen3's per-head q_norm/k_norm
};

// "self_attn.q_proj", ..., "mlp.down_proj".
const char* block_linear_name(int which);
// "<text_prefix>layers.<layer>.self_attn.q_proj.weight" etc. (text_prefix "model." or, for Qwen3-VL,
// "model.language_model.").
std::string block_linear_tensor(int layer, int which, const std::string& text_prefix = "model.");
// {out, in} of linear `which`: q [nq·D, H], k/v [nkv·D, H], o [H, nq·D], gate/up [I, H], down [H, I].
std::array<int64_t, 2> block_linear_shape(const Qwen3BlockDims& d, int which);

// Constants of a block (nothing here is trained).
template <typename T>
struct Qwen3BlockConsts {
    Qwen3BlockDims dims;
    std::vector<T> input_norm;           // [H]
    std::vector<T> post_attn_norm;       // [H]
    std::vector<T> q_norm, k_norm;       // [D] (empty when !qk_norm)
    std::vector<T> q_bias, k_bias, v_bias;  // [nq·D], [nkv·D], [nkv·D] or empty (Qwen3 has none)
    std::vector<float> inv_freq;         // [D/2] RoPE inverse frequencies (float32, as the model)
};

// Reads layer `layer` of a loaded model: dims from config(), norms/biases via TensorStore::load_f32,
// inv_freq via rope_inv_freq. Throws autoround::Error for a bad layer index.
Qwen3BlockConsts<float> load_block_consts(const Qwen3Model& model, int layer);
// The original weight of linear `which` as float32 [out, in] (bf16 values, exact).
std::vector<float> load_block_weight(const Qwen3Model& model, int layer, int which);
// float → double copy of the constants (for gradient checks on real blocks).
Qwen3BlockConsts<double> consts_to_double(const Qwen3BlockConsts<float>& c);

// Seconds spent per op of forward/backward (hot-spot profile for benchmarks and the quantize report).
struct BlockOpProfile {
    std::vector<std::pair<std::string, double>> seconds;  // op name -> accumulated seconds, first-use order
    void add(const char* op, double s);
    double total() const;
};

template <typename T>
class Qwen3BlockGrad {
public:
    using Weights = std::array<const T*, kNumBlockLinears>;  // each [out, in] row-major (block_linear_shape)
    using Grads = std::array<T*, kNumBlockLinears>;          // same shapes; null entries are skipped

    explicit Qwen3BlockGrad(Qwen3BlockConsts<T> consts);

    const Qwen3BlockDims& dims() const { return c_.dims; }
    const Qwen3BlockConsts<T>& consts() const { return c_; }

    // X [B, L, H] → Y [B, L, H]. Saves activations for backward (buffers are reused across calls and
    // grow to the largest B·L seen). The weights must stay alive and unchanged until backward returns;
    // so must X when backward is asked for dX (only its pointer is kept; Y must not alias X).
    void forward(const T* X, int64_t B, int64_t L, const Weights& W, T* Y);

    // dY [B, L, H] (of the last forward) → dW for each non-null entry of dW: written, or added when
    // `accumulate` (gradient accumulation over sub-batches). Once per forward: it reuses saved
    // activation buffers as scratch. If dX is not null, also writes dL/dX [B, L, H] there (always
    // written, never accumulated); dX may alias dY (dY is consumed before dX is written) but not X.
    // With dX null the computation is exactly the weight-gradient-only backward.
    void backward(const T* dY, const Grads& dW, bool accumulate = false, T* dX = nullptr);

    // Qwen3-VL calibration on image+text sequences: every sample uses these M-RoPE positions pos3 [3, L]
    // (rows t, h, w; model/mrope_positions.h) with the interleaved `section` instead of 0..L-1. All samples
    // share them (one prompt layout and one image grid for the whole calibration set). forward then
    // requires this L. Empty pos3 restores the 1-D positions.
    void set_mrope_positions(std::vector<int32_t> pos3, std::vector<int> section);
    const std::vector<int32_t>& mrope_positions() const { return mrope_pos_; }
    const std::vector<int>& mrope_section() const { return mrope_section_; }
    // cos, sin [L, D/2] of the positions forward uses (0..L-1, or the M-RoPE positions when set).
    void rope_tables(int64_t L, std::vector<T>& cos, std::vector<T>& sin) const;

    // Bytes held for the backward (saved activations + scratch) after the last forward.
    size_t saved_bytes() const;

    // When set, forward/backward add each op's wall time to *p (null = off, the default).
    void set_profile(BlockOpProfile* p) { prof_ = p; }

private:
    Qwen3BlockConsts<T> c_;
    int64_t B_ = 0, L_ = 0;
    bool backward_ready_ = false;     // forward ran and its activations are intact
    Weights W_{};
    std::vector<T> cos_, sin_;        // [L, D/2]
    std::vector<int32_t> mrope_pos_;  // [3, L] or empty (set_mrope_positions)
    std::vector<int> mrope_section_;
    // saved by forward
    const T* X_ = nullptr;            // the caller's input [N, H] (for dX only)
    std::vector<T> rstd1_;            // [N] 1/rms of the input norm (for dX only)
    std::vector<T> h1_;               // [N, H]
    std::vector<T> q_lin_, k_lin_;    // [N, nq·D], [N, nkv·D] before q_norm/k_norm (qk_norm only)
    std::vector<T> rstd_q_, rstd_k_;  // [N·nq], [N·nkv]
    std::vector<T> q_, k_, v_;        // post-norm, post-RoPE q, k and v
    std::vector<T> att_, lse_;        // [N, nq·D], [B, nq, L]
    std::vector<T> x2_, rstd2_, h2_;  // [N, H], [N], [N, H]
    std::vector<T> gate_, up_, act_;  // [N, I]
    // backward scratch
    std::vector<T> dI_, dH_, dA_, dq_, dk_, dv_;
    BlockOpProfile* prof_ = nullptr;
};

// Mask [B, L] with the last token of every sample invalid (auto-round HEAD: ids == -100 there).
std::vector<uint8_t> last_token_mask(int64_t B, int64_t L);

// Masked MSE of §2.4: loss = Σ_{b,t,h} mask[b,t]·(pred − ref)² / (B·L·H) (the denominator counts
// masked positions too). mask [B, L] (null = all valid). If grad is not null, writes
// grad [B, L, H] = grad_scale · dloss/dpred = grad_scale · 2·mask·(pred − ref)/(B·L·H).
// Accumulates in double; returns the loss (not scaled).
template <typename T>
double masked_mse_loss(const T* pred, const T* ref, const uint8_t* mask, int64_t B, int64_t L, int64_t H, T* grad,
                       double grad_scale = 1.0);

}  // namespace autoround
