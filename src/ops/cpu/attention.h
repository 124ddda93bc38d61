// ops/cpu/attention.h — causal grouped-query attention over a KV cache (float32, fp32 softmax).
//
// Query head h reads KV head h / (n_q_heads / n_kv_heads) (repeat_kv order). Query row t sits at
// cache slot past + t and attends to slots 0 .. past + t. Scale 1/sqrt(head_dim), no bias/softcap.
#pragma once

#include <cstdint>
#include <vector>

namespace autoround {

struct AttentionShape {
    int64_t T;          // new query rows
    int64_t past;       // cached slots before them
    int64_t n_q_heads;
    int64_t n_kv_heads;
    int64_t head_dim;
    int64_t kv_stride;  // floats between consecutive cache slots (n_kv_heads * head_dim)
};

// q [T, n_q_heads, head_dim]; k, v: cache [past + T, n_kv_heads, head_dim] (slot stride kv_stride);
// out [T, n_q_heads * head_dim].
void attention_causal(const float* q, const float* k, const float* v, const AttentionShape& s, float* out);

// Query heads [h0, h1) of attention_causal only (their rows of out), on the calling thread (inside a parallel
// region: the decode team of model/qwen3_model.cpp gives each thread its own heads); bit-identical to
// attention_causal. scratch grows to past + T + head_dim floats.
void attention_causal_heads(const float* q, const float* k, const float* v, const AttentionShape& s, int64_t h0,
                            int64_t h1, float* out, std::vector<float>& scratch);

}  // namespace autoround
