// ops/cuda/decode_ops.h — the row-wise kernels of the GPU inference runtime for the Qwen3 decoder
// (ops/cuda/decoder_runtime.h): embedding lookup, RMSNorm, per-head QK-norm + RoPE + KV-cache append, attention
// over the KV cache, SwiGLU, and the reductions over logits (greedy argmax, token NLL).
//
// The math is the CPU model's (model/qwen3_model.cpp, ops/cpu/norm.h, rope.h, attention.h, activation.h;
// qwen3-architecture.md §1.3): activations FP32, the KV cache bf16.
// Positions come from device memory (`d_slot0`) so that a decode step can be captured once in a CUDA graph and
// replayed while the cache grows: row t of a call sits at cache slot slot0 + t, RoPE position slot0 + t + pos_delta.
// Every function is asynchronous on `stream`, allocates nothing, never synchronises, and throws autoround::Error
// (naming the argument) for bad sizes, null or misaligned pointers; launch shapes depend on host arguments only.
// Head dims: even, at most 256 (qk_norm_rope_cache, decode_attention). Plain C++ header; defined only in CUDA builds.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace autoround {

// x [T, H] FP32 = bf16 rows ids[t] of table [V, H] (device ids; an id outside [0, V) gives a zero row).
// table: bf16 bit patterns.
void embed_rows_bf16(const uint16_t* table, int64_t V, const int32_t* ids, int64_t T, int64_t H, float* x,
                     cudaStream_t stream);

// y[t] = x[t] / sqrt(mean(x[t]²) + eps) · w, for T rows of H (mean of squares accumulated in FP64, the rest FP32,
// as ops/cpu/norm.cpp). Writes y_f32 [T, H] and/or y_bf16 [T, H] (bf16 of the FP32 result, round to nearest even;
// either may be null, not both). In place (y_f32 == x) is allowed.
void rms_norm_rows(const float* x, const float* w, int64_t T, int64_t H, float eps, float* y_f32, uint16_t* y_bf16,
                   cudaStream_t stream);

// The attention input stage for T rows of the fused projection qkv [T, (nq + 2·nkv)·D] FP32 (q | k | v per row):
//   q, k per head: RMSNorm over D with q_norm / k_norm [D] (a null weight skips that norm; both null: no QK-norm,
//   as Qwen2/Llama), then RoPE (HF rotate_half: pairs (i, i + D/2), angle = float(position) · inv_freq[i] in FP32,
//   cosf/sinf as ops/cpu/rope.cpp, inv_freq [D/2] FP32 device; position = slot0 + t + pos_delta);
//   q goes to q_f32 [T, nq·D] and/or q_bf16 [T, nq·D] (either may be null, not both);
//   k, v go to the caches k_cache, v_cache [capacity, nkv·D] bf16 at slot slot0 + t (slot0 = *d_slot0); a row whose
//   slot is outside [0, capacity) is not written (q still is). D even, ≤ 256; T ≤ 65535.
// Launched with programmatic dependent launch (ops/cuda/pdl.cuh; so is decode_attention): waits for the kernel before
// it on the stream before reading anything.
void qk_norm_rope_cache(const float* qkv, int64_t T, int nq, int nkv, int D, const float* q_norm, const float* k_norm,
                        float eps, const float* inv_freq, const int32_t* d_slot0, int64_t pos_delta, float* q_f32,
                        uint16_t* q_bf16, uint16_t* k_cache, uint16_t* v_cache, int64_t capacity, cudaStream_t stream);

// Causal GQA attention of T query rows against the cache: query row t (cache slot slot0 + t) attends to keys
// 0 .. slot0 + t; query head h reads kv head h / (nq / nkv). q [T, nq·D] FP32, o [T, nq·D] FP32,
// k_cache, v_cache [≥ max_keys, nkv·D] bf16, softmax(scale · q·k) in FP32. max_keys bounds slot0 + T (the launch
// shape depends on it, never on *d_slot0, for graph replay); keys at or past max_keys are never read (a row whose
// slot0 + t ≥ max_keys sees keys 0 .. max_keys − 1; a row with no keys gets zeros). Fast for T = 1 (the keys are
// split across CTAs, flash-decoding style, then merged); correct for any T ≤ 65535 (one CTA walks a row's keys).
// D even, ≤ 256 (fast paths 64, 128, 256: q, k_cache, v_cache 16-byte aligned; other D: q 8-, caches 4-byte).
// workspace: decode_attention_workspace_bytes(T, nq, D, max_keys) bytes of device memory (4-byte aligned; 0 bytes,
// and null allowed, for T > 1 or max_keys ≤ 64); the workspace of (1, nq, D, max_keys) serves every T.
size_t decode_attention_workspace_bytes(int64_t T, int nq, int D, int64_t max_keys);
void decode_attention(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, int64_t T, int nq, int nkv,
                      int D, float scale, const int32_t* d_slot0, int64_t max_keys, float* o, void* workspace,
                      cudaStream_t stream);

// One decode step's attention (T = 1) from the fused projection qkv [(nq + 2·nkv)·D] FP32: exactly
// qk_norm_rope_cache (T = 1, capacity) followed by decode_attention (T = 1, max_keys = capacity) into o [nq·D] FP32,
// the new key and value written to the caches [capacity, nkv·D] at slot *d_slot0. For capacity ≤ 1024 on sm_90 and
// newer it is one kernel (thread-block clusters of up to 8 CTAs per kv head split the keys and merge through
// distributed shared memory: no kernel boundary between the norms, RoPE, cache append, attention and merge);
// otherwise the two calls. workspace: decode_attention_step_workspace_bytes(nq, D, capacity) bytes, 16-byte aligned
// (it holds q on the two-kernel path). Launched with programmatic dependent launch. Graph-capturable (the launch
// shape depends on capacity, never on *d_slot0).
size_t decode_attention_step_workspace_bytes(int nq, int D, int64_t capacity);
void decode_attention_step(const float* qkv, int nq, int nkv, int D, const float* q_norm, const float* k_norm,
                           float eps, const float* inv_freq, const int32_t* d_slot0, int64_t pos_delta,
                           uint16_t* k_cache, uint16_t* v_cache, int64_t capacity, float scale, float* o,
                           void* workspace, cudaStream_t stream);

// act[t][i] = silu(gu[t][i]) · gu[t][I + i] for gu [T, 2I] FP32 (gate | up); act_f32 and/or act_bf16 [T, I].
void swiglu_rows(const float* gu, int64_t T, int64_t I, float* act_f32, uint16_t* act_bf16, cudaStream_t stream);

// out[t] = argmax_v logits[t][v] (lowest index on ties, as the CPU sampler's std::max_element: NaNs are skipped
// unless logits[t][0] is NaN, which gives 0; a row of −inf gives 0), logits [T, V] FP32, V < 2^31.
void argmax_rows(const float* logits, int64_t T, int64_t V, int32_t* out, cudaStream_t stream);

// The top-k stage of the CPU sampler (model/sampler.h) on the device, so that only the candidates come back:
// t[v] = logits[v] with the repetition penalty where seen[v] (t > 0 ? t / penalty : t · penalty; seen may be null
// when penalty is 1), then t /= temperature, the same float operations as Sampler::sample, into scratch [V]; then
// every v with t[v] ≥ the k-th largest t and t[v] ≠ −∞ (ties at the threshold kept, ±0 equal) is written to
// out_idx / out_val (unordered). out_count [2] (device): the number of candidates (only the first `cap` are
// written) and 1 if any t is NaN. mark ≥ 0: seen[mark] = 1 first (the token just appended to the history).
// logits [V] FP32, 1 ≤ k ≤ V < 2^31, temperature > 0. One CTA; graph-capturable.
void topk_candidates(const float* logits, int64_t V, uint8_t* seen, int32_t mark, float penalty, float temperature,
                     int k, int cap, float* scratch, int32_t* out_idx, float* out_val, int32_t* out_count,
                     cudaStream_t stream);

// nll[t] = logsumexp(logits[t]) − logits[t][targets[t]] (FP32 max, then the sum of exp in FP64, like
// eval/perplexity.cpp token_nll), logits [T, V] FP32, targets [T] device, nll [T] FP64 (NaN for a target outside
// [0, V)).
void token_nll_rows(const float* logits, const int32_t* targets, int64_t T, int64_t V, double* nll,
                    cudaStream_t stream);

// dst[i] = bf16(src[i]) (round to nearest even, NaN stays NaN), n values.
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n, cudaStream_t stream);

}  // namespace autoround
