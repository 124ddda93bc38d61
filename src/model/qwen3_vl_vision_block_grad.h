// model/qwen3_vl_vision_block_grad.h — one Qwen3-VL vision (ViT) block, differentiable, for the SignRound
// tuner's --quant_nontext_module: forward on B calibration images of one common patch grid with given
// (fake-quantized) weights, saving what the backward needs, and backward from dL/dY to dL/dW of the 4
// quantizable linears (and, on request, dL/dX).
//
// Why: with --quant_nontext_module the vision blocks are tuned like the language blocks (block-output MSE
// wrt V, α, β of each linear). The vision block differs from the Qwen3 decoder block in every op:
// LayerNorm with bias instead of RMSNorm, biased linears, a fused qkv projection, 2-D rotary embedding,
// bidirectional attention confined to each frame, and a GELU MLP instead of SwiGLU.
//
// Math (qwen3-architecture.md §2.2; float32 in the float instantiation, matching Qwen3VLVision::encode):
//   h1 = LayerNorm(X; norm1_w, norm1_b, eps)                 X, h1, X2, Y   [B·L, H]
//   qkv = h1·Wqkvᵀ + b_qkv                                  qkv [B·L, 3H]: [q | k | v], each head-major
//   q, k = 2-D RoPE (rotate-half per head, cos/sin [L, D/2] of the grid, the same for every sample)
//   a = softmax(q·kᵀ/√D)·v per head, bidirectional, within each frame (t frames of h·w rows per sample)
//   X2 = X + a·Wprojᵀ + b_proj
//   h2 = LayerNorm(X2; norm2_w, norm2_b, eps)
//   m = gelu(h2·Wfc1ᵀ + b_fc1)   (tanh form for "gelu_pytorch_tanh", erf form for "gelu")   m [B·L, I]
//   Y  = X2 + m·Wfc2ᵀ + b_fc2
// Each sample is one image of the grid given at construction (L = t·h·w rows, in the processor's 2×2-block
// patch order). Biases and norms are constants (not tuned). The double instantiation runs the same code in
// float64 for finite-difference gradient checks.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/qwen3_vl_vision.h"

namespace autoround {

struct AttnTrainShape;  // ops/cpu/attention_grad.h

// The 4 quantizable linears of a vision block, in this order everywhere.
enum VisionLinear : int { kVisQkv = 0, kVisProj, kVisFc1, kVisFc2, kNumVisionLinears };

struct VisionBlockDims {
    int64_t hidden = 0;        // H
    int64_t num_heads = 0;     // nh; head_dim D = H / nh (a multiple of 4)
    int64_t intermediate = 0;  // I
    double ln_eps = 1e-6;      // LayerNorm eps (Qwen3-VL: 1e-6)
    bool gelu_tanh = true;     // hidden_act "gelu_pytorch_tanh" (true) or "gelu" (false)

    int64_t head_dim() const { return hidden / num_heads; }
};

// "attn.qkv", "attn.proj", "mlp.linear_fc1", "mlp.linear_fc2".
const char* vision_linear_name(int which);
// "<prefix>blocks.<layer>.attn.qkv.weight" etc. (prefix "model.visual.").
std::string vision_linear_tensor(int layer, int which, const std::string& prefix = "model.visual.");
// {out, in}: qkv [3H, H], proj [H, H], fc1 [I, H], fc2 [H, I].
std::array<int64_t, 2> vision_linear_shape(const VisionBlockDims& d, int which);

template <typename T>
struct VisionBlockConsts {
    VisionBlockDims dims;
    std::vector<T> norm1_w, norm1_b, norm2_w, norm2_b;  // [H]
    std::vector<T> qkv_b;                               // [3H]
    std::vector<T> proj_b;                              // [H]
    std::vector<T> fc1_b;                               // [I]
    std::vector<T> fc2_b;                               // [H]
};

// Reads block `layer` of the tower in `store` (tensors "<prefix>blocks.<layer>.*", any float dtype,
// converted to float32). Throws Error naming the tensor for a missing tensor or a wrong shape, and for a
// bad layer index.
VisionBlockConsts<float> load_vision_block_consts(const TensorStore& store, const Qwen3VLVisionConfig& cfg, int layer,
                                                  const std::string& prefix = "model.visual.");
// The original weight of linear `which` as float32 [out, in].
std::vector<float> load_vision_block_weight(const TensorStore& store, const Qwen3VLVisionConfig& cfg, int layer,
                                            int which, const std::string& prefix = "model.visual.");
VisionBlockConsts<double> vision_consts_to_double(const VisionBlockConsts<float>& c);

template <typename T>
class VisionBlockGrad {
public:
    using Weights = std::array<const T*, kNumVisionLinears>;  // each [out, in] row-major
    using Grads = std::array<T*, kNumVisionLinears>;          // same shapes; null entries are skipped

    // cos/sin tables of the grid from Qwen3VLVision::rotary_tables (float32, [L, D/2] each, L = t·h·w).
    VisionBlockGrad(VisionBlockConsts<T> consts, ImageGrid grid, std::vector<float> rope_cos,
                    std::vector<float> rope_sin);

    const VisionBlockDims& dims() const { return c_.dims; }
    const VisionBlockConsts<T>& consts() const { return c_; }
    const ImageGrid& grid() const { return grid_; }
    int64_t rows_per_sample() const { return L_; }  // L = t·h·w

    // X [B, L, H] → Y [B, L, H] (L must equal rows_per_sample()). Saves activations for backward. The
    // weights must stay alive and unchanged until backward returns; so must X when dX is wanted.
    void forward(const T* X, int64_t B, int64_t L, const Weights& W, T* Y);

    // dY [B, L, H] → dW (written, or added when `accumulate`) for each non-null entry; dX [B, L, H]
    // (always written) when not null; dX may alias dY but not X. Once per forward.
    void backward(const T* dY, const Grads& dW, bool accumulate = false, T* dX = nullptr);

private:
    VisionBlockConsts<T> c_;
    ImageGrid grid_;
    int64_t L_ = 0, B_ = 0;
    bool backward_ready_ = false;
    Weights W_{};
    std::vector<T> cos_, sin_;  // [L, D/2]
    const T* X_ = nullptr;
    // saved by forward (N = B·L rows)
    std::vector<T> h1_, mean1_, rstd1_;  // [N, H], [N], [N]: LayerNorm 1 output and statistics
    std::vector<T> qkv_;                 // [3, N, H]: q, k (after RoPE), v, planar
    std::vector<T> att_, lse_;           // [N, H], [B·t, nh, h·w]: attention output, softmax log-sum-exp
    std::vector<T> x2_, mean2_, rstd2_;  // [N, H], [N], [N]: residual after attention, LayerNorm 2 statistics
    std::vector<T> h2_;                  // [N, H]: LayerNorm 2 output
    std::vector<T> pre_, act_;           // [N, I]: fc1 output before / after GELU
    // backward scratch
    std::vector<T> dA_, dH_, dQKV_, dI_;  // [N, H], [N, H], [3, N, H], [N, I]

    AttnTrainShape attn_shape() const;  // B·t segments of h·w rows, bidirectional
};

}  // namespace autoround
