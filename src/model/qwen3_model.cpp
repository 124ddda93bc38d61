// model/qwen3_model.cpp — see qwen3_model.h.
#include "model/qwen3_model.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <sys/mman.h>
#include <unistd.h>

#include "core/bf16.h"
#include "core/error.h"
#include "io/gguf.h"
#include "model/gguf_checkpoint.h"
#include "ops/cpu/activation.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/linear.h"
#include "ops/cpu/norm.h"
#include "ops/cpu/prefetch_stream.h"
#include "ops/cpu/qmm_repack.h"
#include "ops/cpu/quant_matmul.h"
#include "ops/cpu/rope.h"
#include "ops/cpu/spin_barrier.h"
#include "quant/quantized_loader.h"

namespace autoround {
namespace {

std::string shape_of(std::initializer_list<int64_t> s) {
    std::string r = "[";
    bool first = true;
    for (int64_t d : s) { r += (first ? "" : ", ") + std::to_string(d); first = false; }
    return r + "]";
}

WeightView matrix(const TensorStore& st, const std::string& name, int64_t out, int64_t in) {
    const TensorInfo& t = st.get(name);
    check(t.shape.size() == 2 && t.shape[0] == out && t.shape[1] == in, "tensor ", name, " in ", t.file.string(),
          " has shape ", t.shape_str(), ", expected ", shape_of({out, in}), " from config.json");
    check(t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32, "tensor ", name,
          " has dtype ", dtype_name(t.dtype), "; expected BF16, F16 or F32 (quantized checkpoints are loaded by",
          " the quantized-model loader)");
    return WeightView{t.dtype, t.data, out, in};
}

std::vector<float> vector_f32(const TensorStore& st, const std::string& name, int64_t n) {
    const TensorInfo& t = st.get(name);
    check(t.shape.size() == 1 && t.shape[0] == n, "tensor ", name, " in ", t.file.string(), " has shape ",
          t.shape_str(), ", expected [", n, "] from config.json");
    return st.load_f32(name);
}

// Drops the page-aligned interior of [p, p + n), bytes of the read-only GGUF mapping, from this process's resident set.
// The mapping is PROT_READ and MAP_PRIVATE (io/safetensors.h MappedFile), never written, so MADV_DONTNEED removes only
// page-table entries: a later read of those bytes faults the same file bytes back in (from the page cache or the
// file), it can never see other data. The pages stay in the kernel's page cache (reclaimable, shared with any other
// process that maps the file) but leave RSS. A failure (e.g. no madvise) only keeps them.
void release_mapped_pages(const void* p, int64_t n) {
    const long ps = ::sysconf(_SC_PAGESIZE);
    if (ps <= 0 || n <= 0) return;
    const uintptr_t page = static_cast<uintptr_t>(ps), b = reinterpret_cast<uintptr_t>(p);
    const uintptr_t lo = (b + page - 1) / page * page, hi = (b + static_cast<uintptr_t>(n)) / page * page;
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

}  // namespace

WeightView Qwen3Model::linear_weight(const std::string& prefix, int64_t out, int64_t in) {
    if (quant_ && !store_.has(prefix + ".weight")) {
        if (packed_ == PackedLayers::Skip) return WeightView{DType::BF16, nullptr, out, in};
        std::optional<std::vector<float>> w = load_linear_dequantized(store_, prefix, *quant_, out, in);
        if (w) {
            // Run with bf16(w), like a bf16 model holding the QDQ weights: exactly the W_q the tuner optimised
            // (quant/signround_tuner.h) and what the "fake" export stores, so every export of one quantized
            // model gives identical logits.
            for (float& v : *w) v = round_to_bf16(v);
            owned_.push_back(std::move(*w));
            return WeightView{DType::F32, owned_.back().data(), out, in};
        }
    }
    return matrix(store_, prefix + ".weight", out, in);
}

Qwen3Model Qwen3Model::load_gguf(const std::filesystem::path& file, GgufWeights mode) {
    Qwen3Model m;
    m.gguf_ = GgufFile::open(file);
    const GgufFile& f = *m.gguf_;
    m.cfg_ = gguf_model_config(f);
    const ModelConfig& c = m.cfg_;
    check(c.head_dim % 2 == 0 && c.head_dim <= 1024, file.string(), ": head_dim ", c.head_dim,
          " must be even and at most 1024");
    const int64_t H = c.hidden_size, D = c.head_dim, nq = c.num_attention_heads, nkv = c.num_key_value_heads,
                  I = c.intermediate_size, V = c.vocab_size;
    // A 2-D weight [out, in] (GGUF ne = [in, out]) used in place from the mapping (quantized blocks stay
    // packed); GgufWeights::Dequantized copies quantized tensors to float32 instead.
    auto weight = [&](const std::string& name, int64_t out, int64_t in) {
        const GgufTensorInfo& t = f.tensor(name);
        const WeightView w = gguf_weight_view(f, t, out, in);
        if (!w.packed() || mode != GgufWeights::Dequantized) return w;
        m.owned_.push_back(gguf_dequantize(f, t));
        return WeightView{DType::F32, m.owned_.back().data(), out, in};
    };
    auto vec = [&](const std::string& name, int64_t n) {
        const GgufTensorInfo& t = f.tensor(name);
        check(t.ne.size() == 1 && t.ne[0] == n, file.string(), ": tensor '", name, "' has ne ", t.ne_str(),
              ", expected [", n, "]");
        return gguf_dequantize(f, t);
    };
    m.embed_ = weight("token_embd.weight", V, H);
    m.head_ = c.tie_word_embeddings ? m.embed_ : weight("output.weight", V, H);
    m.final_norm_ = vec("output_norm.weight", H);
    m.layers_.resize(c.num_hidden_layers);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        Qwen3Layer& L = m.layers_[l];
        L.input_norm = vec(p + "attn_norm.weight", H);
        L.post_attn_norm = vec(p + "ffn_norm.weight", H);
        L.q = weight(p + "attn_q.weight", nq * D, H);
        L.k = weight(p + "attn_k.weight", nkv * D, H);
        L.v = weight(p + "attn_v.weight", nkv * D, H);
        L.o = weight(p + "attn_output.weight", H, nq * D);
        L.gate = weight(p + "ffn_gate.weight", I, H);
        L.up = weight(p + "ffn_up.weight", I, H);
        L.down = weight(p + "ffn_down.weight", H, I);
        L.q_norm = vec(p + "attn_q_norm.weight", D);
        L.k_norm = vec(p + "attn_k_norm.weight", D);
    }
    m.inv_freq_ = rope_inv_freq(c.rope, c.head_dim);
    const char* no_repack = std::getenv("AUTOROUND_NO_REPACK");
    if (mode == GgufWeights::Packed && qmm_repacked_dots_available() &&
        !(no_repack && *no_repack && std::string(no_repack) != "0")) {
        std::vector<WeightView*> ws;  // (the embedding rows are read from the file's blocks)
        for (Qwen3Layer& L : m.layers_)
            for (WeightView* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
                if (w->packed()) ws.push_back(w);
        if (m.head_.packed()) ws.push_back(&m.head_);
        const std::vector<std::shared_ptr<const QmmRepacked>> rs =
            qmm_repack_all(std::vector<const WeightView*>(ws.begin(), ws.end()));
        const char* keep = std::getenv("AUTOROUND_KEEP_MAPPED");
        const bool release = !(keep && *keep && std::string(keep) != "0");
        for (size_t i = 0; i < ws.size(); ++i)
            if (rs[i]) {
                ws[i]->repacked = rs[i].get();
                m.repacked_.push_back(rs[i]);
                if (release) release_mapped_pages(ws[i]->data, rs[i]->rows * ws[i]->row_bytes());
            }
        // the tied embedding's rows are read from the LM head's copy too (weight_row_to_f32), so its file pages can go
        if (c.tie_word_embeddings && m.embed_.data == m.head_.data) m.embed_.repacked = m.head_.repacked;
    }
    return m;
}

Qwen3Model Qwen3Model::load(const std::filesystem::path& dir, PackedLayers packed) {
    if (std::optional<std::filesystem::path> g = find_gguf_model(dir))  // (another runtime's model: no CPU repack)
        return load_gguf(*g, packed == PackedLayers::Skip ? GgufWeights::Mapped : GgufWeights::Packed);
    Qwen3Model m;
    m.packed_ = packed;
    m.cfg_ = load_model_config(dir);
    m.store_ = TensorStore::open(dir);
    m.quant_ = load_quantization_config(dir);
    const ModelConfig& c = m.cfg_;
    const TensorStore& st = m.store_;
    check(c.head_dim % 2 == 0 && c.head_dim <= 1024, "config.json in ", dir.string(), ": head_dim ", c.head_dim,
          " must be even and at most 1024");
    const int64_t H = c.hidden_size, D = c.head_dim, nq = c.num_attention_heads, nkv = c.num_key_value_heads,
                  I = c.intermediate_size, V = c.vocab_size;
    const std::string& tp = c.text_prefix;  // "model." or "model.language_model." (Qwen3-VL)
    m.embed_ = matrix(st, tp + "embed_tokens.weight", V, H);
    if (st.has("lm_head.weight") || st.has("lm_head.qweight")) {
        m.head_ = m.linear_weight("lm_head", V, H);
    } else {
        check(c.tie_word_embeddings, "model in ", dir.string(),
              " has no lm_head.weight but config.json says tie_word_embeddings=false; the checkpoint is incomplete");
        m.head_ = m.embed_;
    }
    m.final_norm_ = vector_f32(st, tp + "norm.weight", H);
    m.layers_.resize(c.num_hidden_layers);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = tp + "layers." + std::to_string(l) + ".";
        Qwen3Layer& L = m.layers_[l];
        L.input_norm = vector_f32(st, p + "input_layernorm.weight", H);
        L.post_attn_norm = vector_f32(st, p + "post_attention_layernorm.weight", H);
        L.q = m.linear_weight(p + "self_attn.q_proj", nq * D, H);
        L.k = m.linear_weight(p + "self_attn.k_proj", nkv * D, H);
        L.v = m.linear_weight(p + "self_attn.v_proj", nkv * D, H);
        L.o = m.linear_weight(p + "self_attn.o_proj", H, nq * D);
        L.gate = m.linear_weight(p + "mlp.gate_proj", I, H);
        L.up = m.linear_weight(p + "mlp.up_proj", I, H);
        L.down = m.linear_weight(p + "mlp.down_proj", H, I);
        if (c.qk_norm) {
            L.q_norm = vector_f32(st, p + "self_attn.q_norm.weight", D);
            L.k_norm = vector_f32(st, p + "self_attn.k_norm.weight", D);
        }
        if (c.attention_bias || st.has(p + "self_attn.q_proj.bias")) {
            L.q_bias = vector_f32(st, p + "self_attn.q_proj.bias", nq * D);
            L.k_bias = vector_f32(st, p + "self_attn.k_proj.bias", nkv * D);
            L.v_bias = vector_f32(st, p + "self_attn.v_proj.bias", nkv * D);
        }
    }
    m.inv_freq_ = rope_inv_freq(c.rope, c.head_dim);
    return m;
}

KvCache Qwen3Model::make_cache() const {
    return KvCache(cfg_.num_hidden_layers, cfg_.num_key_value_heads, cfg_.head_dim);
}

int64_t Qwen3Model::parameter_count() const {
    int64_t n = 0;
    if (gguf_)
        for (const GgufTensorInfo& t : gguf_->tensors()) n += t.numel();
    for (const auto& [name, t] : store_.tensors()) n += t.numel();
    return n;
}

void Qwen3Model::lm_head(const float* hidden, int64_t T, float* logits) const {
    linear(hidden, T, head_, nullptr, logits);
}

// ---- the persistent-team decode step (DecodeSchedule::Team, qwen3_model.h) -------------------------------------
namespace {

// Software prefetch distance of each thread's stream (bytes ahead of its reads).
constexpr int64_t kTeamPrefetchBytes = 4096;

// Rows [r0, r1) of n that thread t of nt owns.
inline std::pair<int64_t, int64_t> share(int64_t n, int t, int nt) { return {n * t / nt, n * (t + 1) / nt}; }

}  // namespace

bool Qwen3Model::team_decode_ok(int64_t T, const MultimodalInput* mm) const {
    if (schedule_ != DecodeSchedule::Team || mm || T > 4 || layers_.empty()) return false;
    for (const Qwen3Layer& L : layers_)
        for (const WeightView* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
            if (!w->packed()) return false;
    return cfg_.num_attention_heads % cfg_.num_key_value_heads == 0;
}

// One decode step on one OpenMP team (see DecodeSchedule::Team). Thread t of nt owns kv heads [t·nkv/nt, ..) with
// their q heads, and a 1/nt share of the rows of o, gate, up, down and the LM head. Per layer:
//   h = rmsnorm(x)                   every thread, on its own copy of the residual stream x (no sync)
//   own q/k/v rows, q/k-norm, RoPE, KV-cache rows, attention   (only this thread's heads: no sync)   | barrier
//   own rows of o -> tmp                                                                               | barrier
//   x += tmp; h = rmsnorm(x); own rows of gate and up, SwiGLU of those rows                           | barrier
//   own rows of down -> tmp                                                                            | barrier
//   x += tmp
// Each value is computed by the same arithmetic as in the per-op path, so the logits are the same bit for bit.
void Qwen3Model::forward_team(std::span<const int32_t> tokens, KvCache& cache, float* logits, bool all_logits,
                              const HiddenHook& hook) const {
    const ModelConfig& c = cfg_;
    const int64_t T = static_cast<int64_t>(tokens.size());
    const int64_t H = c.hidden_size, D = c.head_dim, nq = c.num_attention_heads, nkv = c.num_key_value_heads,
                  I = c.intermediate_size, V = c.vocab_size, half = D / 2, group = nq / nkv;
    const float eps = c.rms_norm_eps;
    const int64_t past = cache.size();
    cache.reserve(T);
    std::vector<int32_t> pos(T);
    for (int64_t t = 0; t < T; ++t) {
        const int32_t id = tokens[t];
        check(id >= 0 && id < V, "token id ", id, " at position ", t, " is outside the vocabulary [0, ", V, ")");
        pos[t] = static_cast<int32_t>(past + t + cache.position_delta());
    }
    const bool head_in_team = logits && head_.packed();
    const int64_t nlog = all_logits ? T : 1;
    const int64_t hrow0 = all_logits ? 0 : T - 1;  // first row of h the LM head reads
    // every part validated once here: nothing inside the parallel region may throw
    for (const Qwen3Layer& L : layers_) {
        const QmmPart qkv[3] = {{&L.q, nullptr, nullptr, 0, L.q.out}, {&L.k, nullptr, nullptr, 0, L.k.out},
                                {&L.v, nullptr, nullptr, 0, L.v.out}};
        const QmmPart gu[2] = {{&L.gate, nullptr, nullptr, 0, I}, {&L.up, nullptr, nullptr, 0, I}};
        const QmmPart o[1] = {{&L.o, nullptr, nullptr, 0, H}}, dn[1] = {{&L.down, nullptr, nullptr, 0, H}};
        check_qmm_parts(qkv), check_qmm_parts(gu), check_qmm_parts(o), check_qmm_parts(dn);
    }
    if (head_in_team) {
        const QmmPart hd[1] = {{&head_, nullptr, nullptr, 0, V}};
        check_qmm_parts(hd);
    }

    std::vector<float> q(T * nq * D), att(T * nq * D), k(T * nkv * D), v(T * nkv * D), tmp(T * H), g(T * I),
        u(T * I), cs(T * half), sn(T * half), h_final(T * H);
    rope_cos_sin(pos.data(), T, inv_freq_, cs.data(), sn.data());
    const int nt = omp_in_parallel() ? 1 : std::max(1, omp_get_max_threads());
    SpinBarrier bar(nt);
    const AttentionShape shape{T, past, nq, nkv, D, cache.stride()};
    const int64_t stride = cache.stride();

#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num();
        // (a smaller team than asked for — omp_get_dynamic — would deadlock at the barrier: the master then runs
        // every share itself)
        const int team = omp_get_num_threads();
        const bool solo = team != nt;
        if (!solo || tid == 0) {
            const int t0 = solo ? 0 : tid, t1 = solo ? nt : tid + 1;
            // this thread's shares (a solo master runs all of them, one after another, per step)
            struct Share {
                int64_t kv0, kv1, o0, o1, i0, i1, v0, v1;
            };
            std::vector<Share> sh;
            for (int t = t0; t < t1; ++t) {
                const auto [kv0, kv1] = share(nkv, t, nt);
                const auto [o0, o1] = share(H, t, nt);
                const auto [i0, i1] = share(I, t, nt);
                const auto [v0, v1] = share(V, t, nt);
                sh.push_back(Share{kv0, kv1, o0, o1, i0, i1, v0, v1});
            }
            std::vector<float> x(T * H), hb(T * H), scratch;
            QmmScratch qs;
            PrefetchStream pf;
            // the thread's reads, in order
            for (const Qwen3Layer& L : layers_)
                for (const Share& s : sh) {
                    const auto add = [&](const WeightView& w, int64_t r0, int64_t r1) {
                        add_qmm_part_ranges(pf, w, r0, r1);
                    };
                    add(L.q, s.kv0 * group * D, s.kv1 * group * D);
                    add(L.k, s.kv0 * D, s.kv1 * D);
                    add(L.v, s.kv0 * D, s.kv1 * D);
                    add(L.o, s.o0, s.o1);
                    add(L.gate, s.i0, s.i1);
                    add(L.up, s.i0, s.i1);
                    add(L.down, s.o0, s.o1);
                }
            if (head_in_team)
                for (const Share& s : sh) add_qmm_part_ranges(pf, head_, s.v0, s.v1);
            pf.start(kTeamPrefetchBytes);
            for (int64_t t = 0; t < T; ++t) weight_row_to_f32(embed_, tokens[t], x.data() + t * H);
            if (hook && tid == 0) hook("embeddings", -1, x.data(), T, H);

            for (int l = 0; l < c.num_hidden_layers; ++l) {
                const Qwen3Layer& L = layers_[l];
                rmsnorm_serial(x.data(), L.input_norm.data(), T, H, eps, hb.data());
                for (const Share& s : sh) {
                    const int64_t qh0 = s.kv0 * group, qh1 = s.kv1 * group;
                    const QmmPart qkv[3] = {
                        {&L.q, L.q_bias.empty() ? nullptr : L.q_bias.data(), q.data(), qh0 * D, qh1 * D},
                        {&L.k, L.k_bias.empty() ? nullptr : L.k_bias.data(), k.data(), s.kv0 * D, s.kv1 * D},
                        {&L.v, L.v_bias.empty() ? nullptr : L.v_bias.data(), v.data(), s.kv0 * D, s.kv1 * D}};
                    quant_matmul_q8_part(hb.data(), T, qkv, qs, &pf);
                    for (int64_t t = 0; t < T; ++t) {
                        float* qt = q.data() + t * nq * D + qh0 * D;
                        float* kt = k.data() + t * nkv * D + s.kv0 * D;
                        if (c.qk_norm) {
                            rmsnorm_serial(qt, L.q_norm.data(), qh1 - qh0, D, eps, qt);
                            rmsnorm_serial(kt, L.k_norm.data(), s.kv1 - s.kv0, D, eps, kt);
                        }
                        rope_rotate(qt, qh1 - qh0, D, cs.data() + t * half, sn.data() + t * half);
                        rope_rotate(kt, s.kv1 - s.kv0, D, cs.data() + t * half, sn.data() + t * half);
                        const size_t n = sizeof(float) * static_cast<size_t>((s.kv1 - s.kv0) * D);
                        std::memcpy(cache.k(l) + (past + t) * stride + s.kv0 * D, kt, n);
                        std::memcpy(cache.v(l) + (past + t) * stride + s.kv0 * D,
                                    v.data() + t * nkv * D + s.kv0 * D, n);
                    }
                    attention_causal_heads(q.data(), cache.k(l), cache.v(l), shape, qh0, qh1, att.data(), scratch);
                }
                if (!solo) bar.wait();
                for (const Share& s : sh) {
                    const QmmPart o[1] = {{&L.o, nullptr, tmp.data(), s.o0, s.o1}};
                    quant_matmul_q8_part(att.data(), T, o, qs, &pf);
                }
                if (!solo) bar.wait();
                for (int64_t i = 0; i < T * H; ++i) x[i] += tmp[i];
                rmsnorm_serial(x.data(), L.post_attn_norm.data(), T, H, eps, hb.data());
                for (const Share& s : sh) {
                    const QmmPart gu[2] = {{&L.gate, nullptr, g.data(), s.i0, s.i1},
                                           {&L.up, nullptr, u.data(), s.i0, s.i1}};
                    quant_matmul_q8_part(hb.data(), T, gu, qs, &pf);
                    for (int64_t t = 0; t < T; ++t)
                        swiglu_serial(g.data() + t * I + s.i0, u.data() + t * I + s.i0, s.i1 - s.i0,
                                      g.data() + t * I + s.i0);
                }
                if (!solo) bar.wait();
                for (const Share& s : sh) {
                    const QmmPart dn[1] = {{&L.down, nullptr, tmp.data(), s.o0, s.o1}};
                    quant_matmul_q8_part(g.data(), T, dn, qs, &pf);
                }
                if (!solo) bar.wait();
                for (int64_t i = 0; i < T * H; ++i) x[i] += tmp[i];
                if (hook && tid == 0) hook("block_out", l, x.data(), T, H);
            }
            rmsnorm_serial(x.data(), final_norm_.data(), T, H, eps, hb.data());
            if (tid == 0) {
                if (hook) hook("final_norm", -1, hb.data(), T, H);
                std::memcpy(h_final.data(), hb.data(), sizeof(float) * static_cast<size_t>(T * H));
            }
            if (head_in_team)
                for (const Share& s : sh) {
                    const QmmPart hd[1] = {{&head_, nullptr, logits, s.v0, s.v1}};
                    quant_matmul_q8_part(hb.data() + hrow0 * H, nlog, hd, qs, &pf);
                }
        }
    }
    cache.advance(T);
    if (logits && !head_in_team) lm_head(h_final.data() + hrow0 * H, nlog, logits);
}

void Qwen3Model::forward(std::span<const int32_t> tokens, KvCache& cache, float* logits, bool all_logits,
                         const HiddenHook& hook, const MultimodalInput* mm) const {
    const ModelConfig& c = cfg_;
    const int64_t T = static_cast<int64_t>(tokens.size());
    check(T > 0, "forward: no tokens");
    if (team_decode_ok(T, mm)) {
        forward_team(tokens, cache, logits, all_logits, hook);
        return;
    }
    const int64_t H = c.hidden_size, D = c.head_dim, nq = c.num_attention_heads, nkv = c.num_key_value_heads,
                  I = c.intermediate_size, V = c.vocab_size;
    const int64_t past = cache.size();
    cache.reserve(T);

    std::vector<float> x(T * H), h(T * H), tmp(T * H);        // [T, H]
    std::vector<float> q(T * nq * D), att(T * nq * D);        // [T, nq, D]
    std::vector<float> k(T * nkv * D), v(T * nkv * D);        // [T, nkv, D]
    std::vector<float> g(T * I), u(T * I);                    // [T, I]
    std::vector<int32_t> pos(T);
    const int64_t delta = cache.position_delta();
    for (int64_t t = 0; t < T; ++t) {
        const int32_t id = tokens[t];
        check(id >= 0 && id < V, "token id ", id, " at position ", t, " is outside the vocabulary [0, ", V, ")");
        weight_row_to_f32(embed_, id, x.data() + t * H);
        pos[t] = static_cast<int32_t>(past + t + delta);
    }
    // Multimodal prefill: image rows replaced in order, their indices kept for the DeepStack additions.
    std::vector<int64_t> visual_rows;
    if (mm) {
        check(c.vision_language, "forward: image inputs given to a text-only model (", c.architecture, ")");
        for (int64_t t = 0; t < T; ++t)
            if (tokens[t] == c.image_token_id) visual_rows.push_back(t);
        check(static_cast<int64_t>(visual_rows.size()) == mm->n_visual, "the prompt has ", visual_rows.size(),
              " <|image_pad|> tokens but the images give ", mm->n_visual,
              " features; each image needs exactly (h/2)*(w/2) pad tokens (build the prompt with the chat template)");
        if (mm->image_embeds)
            for (int64_t i = 0; i < mm->n_visual; ++i)
                std::memcpy(x.data() + visual_rows[i] * H, mm->image_embeds + i * H, sizeof(float) * H);
        check(static_cast<int>(mm->deepstack.size()) <= c.num_hidden_layers, "forward: ", mm->deepstack.size(),
              " DeepStack features for ", c.num_hidden_layers, " layers");
    }
    // 3-D M-RoPE positions [3, T]: given by the prefill, else every axis at slot + delta (text tokens).
    const bool mrope = mm && mm->positions && !c.mrope_section.empty();
    if (hook) hook("embeddings", -1, x.data(), T, H);

    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const Qwen3Layer& L = layers_[l];
        rmsnorm(x.data(), L.input_norm.data(), T, H, c.rms_norm_eps, h.data());
        // q|k|v (and gate|up below) as one group: packed GGUF decode quantizes h once and forks once for the three
        const LinearOut qkv[3] = {{&L.q, L.q_bias.empty() ? nullptr : L.q_bias.data(), q.data()},
                                  {&L.k, L.k_bias.empty() ? nullptr : L.k_bias.data(), k.data()},
                                  {&L.v, L.v_bias.empty() ? nullptr : L.v_bias.data(), v.data()}};
        linear_group(h.data(), T, qkv);
        if (c.qk_norm) {
            rmsnorm(q.data(), L.q_norm.data(), T * nq, D, c.rms_norm_eps, q.data());
            rmsnorm(k.data(), L.k_norm.data(), T * nkv, D, c.rms_norm_eps, k.data());
        }
        if (mrope) {
            rope_apply_mrope(q.data(), T, nq, D, mm->positions, inv_freq_, c.mrope_section);
            rope_apply_mrope(k.data(), T, nkv, D, mm->positions, inv_freq_, c.mrope_section);
        } else {
            rope_apply(q.data(), T, nq, D, pos.data(), inv_freq_);
            rope_apply(k.data(), T, nkv, D, pos.data(), inv_freq_);
        }
        std::memcpy(cache.k(l) + past * cache.stride(), k.data(), sizeof(float) * T * nkv * D);
        std::memcpy(cache.v(l) + past * cache.stride(), v.data(), sizeof(float) * T * nkv * D);
        attention_causal(q.data(), cache.k(l), cache.v(l), AttentionShape{T, past, nq, nkv, D, cache.stride()},
                         att.data());
        linear(att.data(), T, L.o, nullptr, tmp.data());
        for (int64_t i = 0; i < T * H; ++i) x[i] += tmp[i];

        rmsnorm(x.data(), L.post_attn_norm.data(), T, H, c.rms_norm_eps, h.data());
        const LinearOut gate_up[2] = {{&L.gate, nullptr, g.data()}, {&L.up, nullptr, u.data()}};
        linear_group(h.data(), T, gate_up);
        swiglu(g.data(), u.data(), T * I, g.data());
        linear(g.data(), T, L.down, nullptr, tmp.data());
        for (int64_t i = 0; i < T * H; ++i) x[i] += tmp[i];
        if (mm && l < static_cast<int>(mm->deepstack.size()) && mm->deepstack[l]) {
            const float* ds = mm->deepstack[l];  // [n_visual, H]
            for (size_t i = 0; i < visual_rows.size(); ++i)
                for (int64_t j = 0; j < H; ++j) x[visual_rows[i] * H + j] += ds[i * H + j];
        }
        if (hook) hook("block_out", l, x.data(), T, H);
    }
    cache.advance(T);
    if (mrope) {
        // rope_delta = max position + 1 − sequence length (§2.4d): decode slot s then sits at s + delta.
        int32_t mx = 0;
        for (int64_t i = 0; i < 3 * T; ++i) mx = std::max(mx, mm->positions[i]);
        cache.set_position_delta(static_cast<int64_t>(mx) + 1 - cache.size());
    }

    rmsnorm(x.data(), final_norm_.data(), T, H, c.rms_norm_eps, h.data());
    if (hook) hook("final_norm", -1, h.data(), T, H);
    if (!logits) return;
    if (all_logits) lm_head(h.data(), T, logits);
    else lm_head(h.data() + (T - 1) * H, 1, logits);
    (void)V;
}

}  // namespace autoround
