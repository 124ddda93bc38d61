// ops/cpu/attention_grad.h — grouped-query attention for training, causal (the decoder) or bidirectional
// (the vision tower's frames): a forward that saves the log-sum-exp of every softmax row, and the
// backward to q, k and v.
//
// Why separate from attention.h: the tuner runs B independent samples of L tokens (no KV cache)
// and needs gradients. Memory stays linear in L apart from score tiles: rows are processed in blocks
// of kRowBlock queries; a tile holds the scores of one block against its causal prefix, so one
// thread never holds more than [kRowBlock, L] scores (less than one head's [L, L]).
//
// Math (per sample, query head h, kv head h / (nq / nkv), scale c = 1/sqrt(D)):
//   S = c·Q Kᵀ (causal: j <= t; bidirectional: all j < L), lse_t = log Σ_j exp(S_tj), P = exp(S − lse), O = P V
//   backward: dP = dO Vᵀ, Δ_t = Σ_d dO_td·O_td, dS = P ∘ (dP − Δ), dQ = c·dS K, dK = c·dSᵀ Q, dV = Pᵀ dO
// (dK, dV summed over the query heads that share a kv head).
#pragma once

#include <cstdint>

namespace autoround {

struct AttnTrainShape {
    int64_t B = 0;           // samples
    int64_t L = 0;           // tokens per sample (positions 0..L-1)
    int64_t n_q_heads = 0;
    int64_t n_kv_heads = 0;  // divides n_q_heads
    int64_t head_dim = 0;
    bool causal = true;      // false: bidirectional, every row attends to all L rows of its sample
};

// q [B·L, nq, D], k, v [B·L, nkv, D] → out [B·L, nq·D], lse [B, nq, L].
// Fast path: BLAS on row-block tiles, OpenMP over (sample, head, row block).
template <typename T>
void attention_train_forward(const T* q, const T* k, const T* v, const AttnTrainShape& s, T* out, T* lse);

// Given the forward's out and lse and dout [B·L, nq·D]: writes (not accumulates) dq [B·L, nq, D],
// dk, dv [B·L, nkv, D]. Fast path: OpenMP over (sample, kv head); tiles recomputed from lse.
template <typename T>
void attention_train_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                              const AttnTrainShape& s, T* dq, T* dk, T* dv);

// Plain scalar references (one query row at a time; the backward recomputes the softmax from scratch
// and ignores out/lse), for tests.
template <typename T>
void attention_train_forward_ref(const T* q, const T* k, const T* v, const AttnTrainShape& s, T* out, T* lse);
template <typename T>
void attention_train_backward_ref(const T* q, const T* k, const T* v, const T* dout, const AttnTrainShape& s, T* dq,
                                  T* dk, T* dv);

}  // namespace autoround
