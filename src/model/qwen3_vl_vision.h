// model/qwen3_vl_vision.h — the Qwen3-VL vision encoder (ViT + patch mergers + DeepStack mergers) on
// CPU in float32 (qwen3-architecture.md §2.1–2.3).
//
// Input: pixel_values [Σ t·h·w, C·T·ps·ps] (the processor's patch rows, images packed in order, each
// image's patches in the 2×2-block order of §2.3 step 3b) and one ImageGrid (t, h, w in patches) per image.
// Forward:
//   x = patch_embed(pixels) (Conv3d with kernel = stride, i.e. one GEMM with the weight flattened to
//       [hidden, C·T·ps·ps], + bias) + bilinear (align_corners) interpolation of the learned
//       sqrt(P)×sqrt(P) position table at each patch's (row, col);
//   per block: x += proj(Attn(LN1(x))), x += fc2(gelu_tanh(fc1(LN2(x)))); attention is bidirectional
//       within each image frame only (one segment of h·w patches per frame), with 2-D rotary
//       embedding (first half of the frequencies turn with the patch row, second half with the column);
//   after each block listed in deepstack_visual_indexes: ds_k = fc2(gelu_erf(fc1(LN(concat 4 tokens))));
//   after the last block: image_embeds = fc2(gelu_erf(fc1(concat 4 (LN(x))))).
// Everything is computed in float32 from the checkpoint weights (bf16 upcast exactly), which is what the
// transformers float32 reference does; the bf16 roundings of a bf16 run (§2.3) are deliberately not applied.
//
// Weights: the Linear/Conv matrices are used in place from the checkpoint mapping through WeightView
// (bf16 stays bf16 in memory; linear() converts tiles to float32 for sgemm), exactly like the
// language model. The object keeps its own copy of the TensorStore handle, whose shared mappings keep
// those pointers valid whatever happens to the caller's store. Norm weights, biases and the position
// table are small and are copied to float32.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "io/safetensors.h"
#include "ops/weight_view.h"

namespace autoround {

struct QuantizationConfig;

struct Qwen3VLVisionConfig {
    int depth = 0;                       // number of ViT blocks
    int hidden_size = 0;
    int num_heads = 0;                   // head_dim = hidden_size / num_heads (a multiple of 4: 2-D rotary)
    int intermediate_size = 0;           // block MLP width
    int in_channels = 0;
    int patch_size = 0;
    int temporal_patch_size = 0;
    int spatial_merge_size = 0;          // m: m×m patches -> one LLM token
    int out_hidden_size = 0;             // = the language model's hidden_size
    int num_position_embeddings = 0;     // a perfect square: the learned grid is sqrt(P)×sqrt(P)
    std::vector<int> deepstack_visual_indexes;  // 0-based blocks whose outputs feed DeepStack mergers
    std::string hidden_act;              // block MLP: "gelu_pytorch_tanh" (tanh GELU) or "gelu" (erf)
    double rope_theta = 10000;           // vision rotary base (rope_parameters.rope_theta, else the default)

    int head_dim() const { return num_heads > 0 ? hidden_size / num_heads : 0; }  // 0 when unset
    int patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
};

// Reads config.json's `vision_config` object. Missing or mistyped fields and inconsistent values throw
// Error naming the field and `label` (e.g. "config.json in <dir>").
Qwen3VLVisionConfig parse_qwen3_vl_vision_config(const nlohmann::json& vision_config, const std::string& label);

// eps of every LayerNorm of the vision tower (not in config.json; the model's constant).
inline constexpr float kVisionLayerNormEps = 1e-6f;

struct ImageGrid {
    int t, h, w;  // in patches (h, w multiples of spatial_merge_size); t frames (1 for a still image)
};

struct VisionOutput {
    int64_t n_tokens = 0;                       // Σ t·h·w / m²: LLM image tokens
    std::vector<float> image_embeds;            // [n_tokens, out_hidden]
    std::vector<std::vector<float>> deepstack;  // [n_deepstack][n_tokens, out_hidden]
};

// Called with intermediate activations [rows, cols] for tests and debugging: "patch_embed_out",
// "block0_input" (patch embedding + position embedding), "block_out" (once per block, in order),
// "last_block_out" (the merger's input).
using VisionHook = std::function<void(const std::string& name, const float* data, int64_t rows, int64_t cols)>;

class Qwen3VLVision {
public:
    Qwen3VLVision() = default;  // empty; assign from load() before encode()

    // Loads `prefix`* tensors (model.visual.*); validates every tensor's presence, shape and dtype.
    // Errors name the tensor and the expected and actual shapes. With `quant` (a quantized checkpoint made
    // with --quant_nontext_module), block linears stored packed (<name>.qweight) are dequantized at load and
    // rounded to bf16 — the W_q the tuner optimised, as Qwen3Model does for the language model.
    static Qwen3VLVision load(const TensorStore& store, const Qwen3VLVisionConfig& cfg,
                              const std::string& prefix = "model.visual.",
                              const QuantizationConfig* quant = nullptr);

    const Qwen3VLVisionConfig& config() const { return cfg_; }

    // pixel_values: [Σ_i t_i·h_i·w_i, patch_dim] float32, images packed in order.
    // Throws Error for an empty grid list, grids not divisible by spatial_merge_size, or a pixel
    // buffer whose size does not match the grids.
    VisionOutput encode(std::span<const float> pixel_values, std::span<const ImageGrid> grids,
                        const VisionHook& hook = {}) const;

    // Patch embedding + interpolated position embedding: the first block's input x [N, hidden] (float32,
    // N = Σ t·h·w, rows in the processor's patch order); encode's "block0_input". Same checks as encode.
    std::vector<float> embed_patches(std::span<const float> pixel_values, std::span<const ImageGrid> grids) const;

    // The 2-D rotary tables of the grids: cos/sin [N, D/2] each (N = Σ t·h·w, D = head_dim), rows in the
    // processor's patch order; frequency j < D/4 turns with the patch row, j >= D/4 with the column.
    void rotary_tables(std::span<const ImageGrid> grids, std::vector<float>& cos, std::vector<float>& sin) const;

private:
    struct Block {
        std::vector<float> norm1_w, norm1_b, norm2_w, norm2_b;  // [hidden]
        WeightView qkv;    // [3·hidden, hidden]: rows [q | k | v], each head-major (head, head_dim)
        WeightView proj;   // [hidden, hidden]
        WeightView fc1;    // [inter, hidden]
        WeightView fc2;    // [hidden, inter]
        std::vector<float> qkv_b, proj_b, fc1_b, fc2_b;
    };
    struct Merger {
        bool postshuffle = false;              // DeepStack: LayerNorm over the concatenated m² tokens
        std::vector<float> norm_w, norm_b;     // [hidden] (main merger) or [m²·hidden] (DeepStack)
        WeightView fc1;                        // [m²·hidden, m²·hidden]
        WeightView fc2;                        // [out_hidden, m²·hidden]
        std::vector<float> fc1_b, fc2_b;
    };

    void run_merger(const Merger& mg, const float* x, int64_t n_patches, float* out) const;
    // embed_patches with the "patch_embed_out" hook; `who` prefixes the error messages.
    std::vector<float> embed(std::span<const float> pixel_values, std::span<const ImageGrid> grids,
                             const VisionHook& hook, const char* who) const;

    Qwen3VLVisionConfig cfg_;
    TensorStore store_;               // shares the mappings the WeightViews point into
    // dequantized block linears of a quantized tower (shared: copies of this object keep the views valid)
    std::shared_ptr<std::vector<std::vector<float>>> owned_;
    WeightView patch_w_;              // [hidden, C·T·ps·ps] (the Conv3d weight [hidden, C, T, ps, ps] flattened)
    std::vector<float> patch_b_;      // [hidden]
    std::vector<float> pos_embed_;    // [num_position_embeddings, hidden]
    std::vector<float> inv_freq_;     // [head_dim/4] vision rotary inverse frequencies
    std::vector<Block> blocks_;
    Merger merger_;
    std::vector<Merger> deepstack_;   // one per deepstack_visual_indexes entry
};

}  // namespace autoround
