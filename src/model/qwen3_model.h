// model/qwen3_model.h — the Qwen3 dense decoder (also Qwen2/Qwen2.5 and Llama: the same graph
// without QK-norm, with optional q/k/v bias) running on CPU in float32 from 16-bit weights.
//
// Qwen3-VL's language model is the same decoder under "model.language_model." with interleaved M-RoPE and
// DeepStack additions (§2.4); model/qwen3_vl_model.h adds the vision tower in front of it.
// Forward, per layer (qwen3-architecture.md §1.3):
//   h = RMSNorm(x); q,k,v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ (+bias); q,k = RMSNorm_per_head (Qwen3);
//   q,k = RoPE(q,k); append k,v to the cache; a = causal GQA attention; x += a·Woᵀ;
//   h = RMSNorm(x); x += (silu(h·Wgateᵀ) * h·Wupᵀ)·Wdownᵀ
// then the final RMSNorm and the LM head (lm_head.weight, or the embedding when tied).
// Weights stay in the mmap'd checkpoint (bf16); norms and biases are copied to float32. Packed
// layers of quantized checkpoints (GPTQ, AWQ, auto-round) are dequantized to float32 at load.
// A llama.cpp GGUF file (or a folder holding one, model/gguf_checkpoint.h) loads the same way: F16/BF16/F32
// tensors are used in place from the mapping, and so are the quantized blocks (Q4_0 ... Q6_K), which the
// linears multiply packed (ops/cpu/quant_matmul.h; embedding rows are dequantized one at a time); the
// config comes from the GGUF metadata. GgufWeights::Dequantized instead copies quantized tensors to float32
// at load (exact values): the slower reference path the packed kernels are checked against.
// For the CPU runtime, GgufWeights::Packed also makes a repacked copy of each Q4_0 / Q4_K / Q6_K linear weight with 16
// rows interleaved (ops/cpu/qmm_repack.h) that the AVX-512 VNNI dots read instead (builds without them make none);
// AUTOROUND_NO_REPACK=1 in the environment, or GgufWeights::Mapped, leaves it out. The mapping is never written, but
// the pages of the repacked rows' file bytes are then dropped from the resident set (madvise MADV_DONTNEED; they stay
// in the page cache), so the copies do not double RSS: nothing reads those bytes after load (the dots read the copy;
// prefill's dequantized tiles and the tied embedding's rows are unpacked from it, ops/cpu/linear.h
// weight_row_to_f32), and a read would only fault the same bytes back in. AUTOROUND_KEEP_MAPPED=1 keeps them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/kv_cache.h"
#include "ops/weight_view.h"
#include "quant/quantization_config.h"

namespace autoround {

struct Qwen3Layer {
    std::vector<float> input_norm;      // [hidden]
    std::vector<float> post_attn_norm;  // [hidden]
    std::vector<float> q_norm, k_norm;  // [head_dim] (Qwen3 only)
    std::vector<float> q_bias, k_bias, v_bias;  // [n_q*hd], [n_kv*hd] (optional)
    WeightView q, k, v;                 // [n_q*hd, hidden], [n_kv*hd, hidden] x2
    WeightView o;                       // [hidden, n_q*hd]
    WeightView gate, up;                // [inter, hidden]
    WeightView down;                    // [hidden, inter]
};

// Called with intermediate activations (for golden tests / debugging):
// name in {"embeddings", "block_out", "final_norm"}, layer index (or -1), data [T, hidden].
using HiddenHook = std::function<void(const std::string& name, int layer, const float* data, int64_t T, int64_t dim)>;

class GgufFile;

// How load_gguf holds quantized GGUF weights (see the file comment).
enum class GgufWeights { Packed, Mapped, Dequantized };

// What Qwen3Model::load does with the packed layers of GPTQ / AWQ / auto-round checkpoints: dequantize them to
// float32 for the CPU kernels, or leave their WeightView empty (data == nullptr, shape set) for a runtime that
// reads them packed itself (model/qwen3_cuda_model.h, through quant/quantized_loader.h).
enum class PackedLayers { Dequantize, Skip };

// What a multimodal prefill adds to the token ids (Qwen3-VL, qwen3-architecture.md §2.4).
struct MultimodalInput {
    const float* image_embeds = nullptr;      // [n_visual, hidden]: replace the rows of image_token_id, in order
    int64_t n_visual = 0;
    std::vector<const float*> deepstack;      // [k][n_visual, hidden]: added at the visual rows after layer k
    const int32_t* positions = nullptr;       // [3, T] (t, h, w) M-RoPE positions (get_rope_index); the cache's
                                              // position delta is set from them for the decode steps after
};

// How Qwen3Model::forward runs decode steps (T <= 4) of a model whose layer weights are all packed GGUF blocks.
//   Team  : one OpenMP team for the whole step; each thread owns fixed rows of every matmul (and its share of the
//           attention heads and SwiGLU), the threads sync at a spin barrier only where a step needs the other's
//           rows (4 times per layer), and each thread's software prefetch runs on across matmul boundaries
//           (ops/cpu/prefetch_stream.h). The default.
//   PerOp : one parallel region per op (dynamic chunks), as for prefill.
// Both give the same logits bit for bit (every value is computed by the same arithmetic, whichever thread).
enum class DecodeSchedule { Team, PerOp };

class Qwen3Model {
public:
    void set_decode_schedule(DecodeSchedule s) { schedule_ = s; }
    DecodeSchedule decode_schedule() const { return schedule_; }

    // Loads config.json + safetensors from a model folder; validates every tensor's shape/dtype.
    // A .gguf file, or a folder whose only model file is a .gguf, loads through load_gguf.
    static Qwen3Model load(const std::filesystem::path& dir, PackedLayers packed = PackedLayers::Dequantize);
    static Qwen3Model load_gguf(const std::filesystem::path& file, GgufWeights mode = GgufWeights::Packed);

    const ModelConfig& config() const { return cfg_; }
    const TensorStore& tensors() const { return store_; }  // empty for GGUF models
    const std::shared_ptr<const GgufFile>& gguf() const { return gguf_; }  // set for GGUF models
    // The checkpoint's quantization (packed layers are dequantized to float32 at load).
    const std::optional<QuantizationConfig>& quantization() const { return quant_; }
    // The weights as loaded (for other runtimes, e.g. model/qwen3_cuda_model.h).
    const std::vector<Qwen3Layer>& layers() const { return layers_; }
    const WeightView& embedding() const { return embed_; }
    const WeightView& head() const { return head_; }
    bool head_is_embedding() const { return head_.data == embed_.data; }
    const std::vector<float>& final_norm() const { return final_norm_; }
    const std::vector<float>& inv_freq() const { return inv_freq_; }
    KvCache make_cache() const;
    int64_t parameter_count() const;

    // Runs `tokens` at cache slots [cache.size(), +T) (positions = slots + cache.position_delta()),
    // appends to the cache. logits: [T, vocab] if all_logits else [1, vocab] for the last token; may be null.
    // `mm` (Qwen3-VL only) places image features, DeepStack features and 3-D positions.
    void forward(std::span<const int32_t> tokens, KvCache& cache, float* logits, bool all_logits,
                 const HiddenHook& hook = {}, const MultimodalInput* mm = nullptr) const;

    // Computes logits rows for final hidden states [T, hidden] -> [T, vocab].
    void lm_head(const float* hidden, int64_t T, float* logits) const;

private:
    ModelConfig cfg_;
    TensorStore store_;
    WeightView embed_;                  // [vocab, hidden]
    WeightView head_;                   // [vocab, hidden] (== embed_ when tied)
    std::vector<float> final_norm_;     // [hidden]
    std::vector<Qwen3Layer> layers_;
    std::vector<float> inv_freq_;       // [head_dim/2]
    std::optional<QuantizationConfig> quant_;   // set for GPTQ / AWQ / auto-round checkpoints
    std::list<std::vector<float>> owned_;       // dequantized float32 weights of packed layers
    std::shared_ptr<const GgufFile> gguf_;      // the mapped GGUF file (GGUF models only)
    std::vector<std::shared_ptr<const QmmRepacked>> repacked_;  // the copies WeightView::repacked point into

    PackedLayers packed_ = PackedLayers::Dequantize;
    DecodeSchedule schedule_ = DecodeSchedule::Team;
    bool team_decode_ok(int64_t T, const MultimodalInput* mm) const;
    void forward_team(std::span<const int32_t> tokens, KvCache& cache, float* logits, bool all_logits,
                      const HiddenHook& hook) const;
    WeightView linear_weight(const std::string& prefix, int64_t out, int64_t in);
};

}  // namespace autoround
