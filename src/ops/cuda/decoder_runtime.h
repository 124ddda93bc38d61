// ops/cuda/decoder_runtime.h — the Qwen3 decoder running on one NVIDIA GPU for inference (`generate` and `eval`
// with --device cuda): the whole model resident in device memory, a bf16 KV cache, prefill through tensor-core GEMMs
// and decode through weight-streaming GEMVs captured once in a CUDA graph.
//
// Why a separate runtime from the tuner's block engine (ops/cuda/block_engine.h): inference keeps every layer on
// the device and is bound by reading the weights once per token, so quantized layers stay packed in device memory
// (2/3/4/8-bit GPTQ layout, export/pack_layout.h) and are multiplied packed (ops/cuda/quant_gemv.h); the tuner holds
// one block in float32/bf16 and needs gradients.
//
// Forward of T tokens at cache slots [size, size + T) (qwen3-architecture.md §1.3, the CPU model's graph,
// model/qwen3_model.cpp):
//   x [T, H] = embed[ids];  per layer: h = RMSNorm(x); qkv = h·[Wq|Wk|Wv]ᵀ; q,k = RMSNorm_head, RoPE;
//   k, v -> cache; a = causal GQA attention over the cache; x += a·Woᵀ; h = RMSNorm(x);
//   x += (silu(h·Wgateᵀ) ⊙ h·Wupᵀ)·Wdownᵀ;  logits = RMSNorm(x)·Headᵀ.
// Decode (T = 1): FP32 activations, GEMVs (quant_gemv_fast by default, quant_gemv with exact_decode_gemv; bf16_gemv
// for dense weights), attention over the cache split across CTAs; for packed layers the RMSNorms are fused into the
// q|k|v and gate|up GEMVs and SwiGLU into the down GEMV (ops/cuda/quant_gemv.h GemvPrologue), so a layer is 7 kernels:
//   q|k|v GEMV(RMSNorm(x)) · QK-norm+RoPE+cache append · split-K attention · merge · x += o GEMV ·
//   gate|up GEMV(RMSNorm(x)) · x += down GEMV(SwiGLU(gate|up)).
// The y = outputs of the fused GEMVs are accumulated into buffers the previous fused GEMV zeroed (no memset nodes).
// Each step is launched as a CUDA graph (positions live in device memory), captured at the first step and again
// whenever the cache grows, the position delta changes or a weight is set.
// Prefill (T > 1): bf16 activations into cuBLAS GEMMs (packed layers are dequantized into a bf16 scratch matrix one
// at a time; FP32 accumulation and outputs), in chunks of at most prefill_chunk (≤ 32768) tokens; flash attention
// (ops/cuda/flash_attention.h) for a chunk that starts at an empty cache when the head dim is 64 or 128, else the
// cached-attention kernel (correct, but slow for long prompts: one CTA per query row walks all its keys).
// Numerics: bf16 weights and packed layers are exactly the CPU model's (packed: bf16 of the float dequantization;
// except in the default fast decode GEMV, which multiplies the FP32 dequantization s·(q − z) itself, unrounded);
// F16/F32 and GGUF weights are rounded to bf16 here, where the CPU keeps them exact. Activations entering prefill
// GEMMs and attention are bf16 (like transformers in bf16), so logits differ from the FP32 CPU path by
// bf16-activation rounding (tests/cuda/test_cuda_decoder_runtime.cpp bounds it).
// Limits (checked at construction): head_dim ≤ 256; hidden, intermediate and heads · head_dim multiples of 8.
//
// Plain C++17 header without CUDA types: model/qwen3_cuda_model.h (C++20 host code) drives it. Without a CUDA
// build the constructor throws autoround::Error (ops/cpu/no_cuda_decoder_runtime.cpp), so no other entry point can
// be reached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace autoround {

struct DecoderDims {
    int64_t hidden = 0, intermediate = 0, vocab = 0;
    int n_layers = 0, n_q_heads = 0, n_kv_heads = 0, head_dim = 0;
    float rms_eps = 1e-6f;
    bool qk_norm = true;
    std::vector<float> inv_freq;  // [head_dim / 2] RoPE inverse frequencies (ops/cpu/rope.h rope_inv_freq)
};

// One linear weight [out, in] handed to the runtime in host memory (copied to the device by set_*; the host memory
// may be freed afterwards). Either dense bf16 or packed. Move-only: dense_bf16 may point into dense_storage, which a
// copy would not carry along.
struct HostLinear {
    HostLinear() = default;
    HostLinear(HostLinear&&) = default;
    HostLinear& operator=(HostLinear&&) = default;
    HostLinear(const HostLinear&) = delete;
    HostLinear& operator=(const HostLinear&) = delete;

    int64_t out = 0, in = 0;
    const uint16_t* dense_bf16 = nullptr;  // [out, in] bf16 row-major (e.g. in the mmap'd checkpoint)
    std::vector<uint16_t> dense_storage;   // owner of dense_bf16 when it had to be converted
    // Packed (bits > 0): GPTQ layout (export/pack_layout.h) with true zero points; ops/cuda/quant_gemv.h.
    int bits = 0;
    int64_t group_len = 0;
    std::vector<uint32_t> qweight;  // [in · bits / 32, out]
    std::vector<uint16_t> scales;   // [in / group_len, out] fp16
    std::vector<uint8_t> zeros;     // [in / group_len, out]
    bool packed() const { return bits > 0; }
};

struct HostDecoderLayer {
    const float* input_norm = nullptr;      // [H]
    const float* post_attn_norm = nullptr;  // [H]
    const float* q_norm = nullptr;          // [D] (null: no QK-norm)
    const float* k_norm = nullptr;          // [D]
    const HostLinear* q = nullptr;          // [nq·D, H]
    const HostLinear* k = nullptr;          // [nkv·D, H]
    const HostLinear* v = nullptr;          // [nkv·D, H]
    const HostLinear* o = nullptr;          // [H, nq·D]
    const HostLinear* gate = nullptr;       // [I, H]
    const HostLinear* up = nullptr;         // [I, H]
    const HostLinear* down = nullptr;       // [H, I]
};

struct CudaDecoderOptions {
    bool cuda_graphs = true;       // replay decode steps from a captured graph
    bool flash_attention = true;   // prefill from an empty cache through ops/cuda/flash_attention.h (D 64 / 128)
    int64_t prefill_chunk = 2048;  // prefill runs in chunks of at most this many tokens (≤ 32768; bounds the
                                   // activations, not the dequantization scratch or the logits rows)
    // Decode GEMVs of packed layers: false (default) = ops/cuda/quant_gemv.h quant_gemv_fast (FP32 s·(q − z) without
    // the per-weight bf16 rounding, RMSNorm and SwiGLU fused into the GEMVs' staging of x: ~3 instead of ~6
    // instructions per weight and 7 instead of 10–12 graph nodes per layer); true = quant_gemv, the CPU model's bf16
    // weights bit for bit, with the separate RMSNorm / SwiGLU kernels (the layout of decode before the fast path).
    bool exact_decode_gemv = false;
};

class CudaDecoder {
public:
    CudaDecoder(const DecoderDims& dims, const CudaDecoderOptions& opt = {});
    ~CudaDecoder();
    CudaDecoder(const CudaDecoder&) = delete;
    CudaDecoder& operator=(const CudaDecoder&) = delete;

    // Weights (host -> device copies; shapes checked against dims). Layers with q/k/v (and gate/up) of the same
    // kind are fused into one weight so a decode step reads them in one pass.
    void set_embedding(const uint16_t* bf16_table);  // [V, H] bf16
    void set_final_norm(const float* w);             // [H]
    void set_lm_head(const HostLinear& head);        // [V, H]
    void tie_lm_head_to_embedding();                 // the head is the embedding table
    void set_layer(int l, const HostDecoderLayer& layer);

    // KV-cache capacity in tokens (grows the cache, keeping its contents); forward() grows it as needed too.
    void reserve(int64_t tokens);
    int64_t capacity() const;
    int64_t size() const;           // filled cache slots
    void clear();                   // empties the cache (keeps the memory) and the set_history flags
    void set_position_delta(int64_t d);  // RoPE position of slot s = s + d (0 for text)

    // Runs `T` tokens at the end of the cache and appends them. logits (host): [T, V] FP32 if all_logits, else the
    // last token's [V]; may be null.
    void forward(const int32_t* tokens, int64_t T, float* logits, bool all_logits);
    // One token as forward(&token, 1, ...), returning the argmax of its logits computed on the device (the lowest id
    // on ties, as the CPU sampler's argmax): greedy decoding without copying the [V] logits to the host.
    int32_t forward_greedy(int32_t token);
    // Random sampling with a top-k stage (model/sampler.h) without copying the [V] logits: set_history() flags the
    // ids seen so far (for the repetition penalty; the prompt, once, after any clear(), which forgets them), then
    // each forward_top_k() runs one token as forward(&token, 1, ...), flags it, and returns the sampler's top-k
    // candidates (ids ascending, their penalised and temperature-scaled logits) for Sampler::sample_candidates.
    // Returns false, with the plain logits [V] in logits_fallback, when the logits hold NaN or more than
    // max(kTopKCandidates, k) values tie at the threshold.
    static constexpr int kTopKCandidates = 1024;
    void set_history(const int32_t* ids, int64_t n);
    bool forward_top_k(int32_t token, float penalty, float temperature, int k, std::vector<int32_t>& idx,
                       std::vector<float>& val, float* logits_fallback);

    // Σ_t NLL(tokens[t + 1] | tokens[0..t]) for t < T − 1 of one window, from an empty cache (the cache is cleared
    // first and left holding the window); per_token (optional) receives the T − 1 values.
    double window_nll(const int32_t* tokens, int64_t T, std::vector<double>* per_token = nullptr);

    size_t weight_bytes() const;    // device bytes of the weights (what a decode step reads, plus the embedding)
    size_t decode_read_bytes() const;  // bytes one decode step reads from weights (linears + LM head)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace autoround
