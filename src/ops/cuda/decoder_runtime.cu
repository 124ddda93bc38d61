// ops/cuda/decoder_runtime.cu — see decoder_runtime.h.
//
// Buffers (FP32 unless noted; H hidden, W = (nq + 2·nkv)·D, I intermediate, C = prefill chunk rows):
//   decode (fixed, allocated once, so the captured graph's pointers never change):
//     tok [1] int32, slot [1] int32, x [H] residual, h [H], qkv [W], att [nq·D], gu [2I], act [I],
//     logits [V], attention workspace (decode_attention_step)
//   prefill (grown on demand): xT [C, H], hT [C, H] bf16, qkvT [C, W], qT [C, nq·D] bf16 (+ FP32 for the cached-
//     attention fallback), oT [C, nq·D] bf16 (+ FP32), lse [nq·C], guT [C, 2I], actT [C, I] bf16, logits rows
//     [R, V], nll [C] FP64, the dequantized weight scratch [max out·in] bf16
//   KV cache per layer: k, v [capacity, nkv·D] bf16.
#include "ops/cuda/decoder_runtime.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/decode_ops.h"
#include "ops/cuda/device_buffer.h"
#include "ops/cuda/flash_attention.h"
#include "ops/cuda/quant_gemv.h"

namespace autoround {
namespace {

constexpr int64_t kLogitRows = 256;  // rows of [·, V] logits computed at once by a prefill / window_nll
constexpr int64_t kMaxChunk = 32768;  // prefill rows per pass (the row kernels of decode_ops.h take at most 65535)

// Out of GPU memory during inference: what to change (ops/cuda/device_buffer.h).
struct InferenceOom {
    static constexpr const char* advice =
        "the whole model and its KV cache must fit on one GPU for --device cuda inference: use a smaller "
        "--max_new_tokens / --seqlen, a quantized model, or --device cpu";
};
// A pageable cudaMemcpy may return before the data reaches the device, and the runtime's stream does not wait for
// the legacy stream: every setter ends with cudaDeviceSynchronize (sync_uploads below).
template <typename T>
using DevBuf = DeviceBuffer<T, InferenceOom>;

// Sets the decode step's token id and cache slot from kernel arguments (launched before each graph replay).
__global__ void set_step_kernel(int32_t* tok, int32_t token, int32_t* slot, int32_t s) {
    *tok = token;
    *slot = s;
}

// A linear weight on the device: dense bf16 (owned, or borrowed from the embedding when tied) or packed.
struct DevLinear {
    int64_t out = 0, in = 0;
    DevBuf<uint16_t> dense_own;
    const uint16_t* dense = nullptr;
    DevBuf<uint32_t> qweight;
    DevBuf<uint16_t> scales;
    DevBuf<uint8_t> zeros;
    int bits = 0;
    int64_t group_len = 0;
    bool packed() const { return bits > 0; }
    DeviceQuantWeight view() const {
        DeviceQuantWeight w;
        w.qweight = qweight.p;
        w.scales = scales.p;
        w.zeros = zeros.p;
        w.n = out;
        w.k = in;
        w.bits = bits;
        w.group_len = group_len;
        return w;
    }
    size_t bytes() const { return dense_own.bytes() + qweight.bytes() + scales.bytes() + zeros.bytes(); }
    size_t read_bytes() const { return packed() ? bytes() : size_t(out * in) * 2; }
};

// Part of a fused output: columns [offset, offset + w.out) of the fused projection.
struct Part {
    DevLinear w;
    int64_t offset = 0;
};

struct DevLayer {
    DevBuf<float> input_norm, post_attn_norm, q_norm, k_norm;
    std::vector<Part> qkv, gate_up;  // one part when fused
    DevLinear o, down;
    DevBuf<uint16_t> k_cache, v_cache;  // [capacity, nkv·D] bf16
};

void sync_uploads() { AR_CUDA_CHECK(cudaDeviceSynchronize()); }

void upload_linear(DevLinear& d, const HostLinear& h, const char* what) {
    d.out = h.out;
    d.in = h.in;
    if (h.packed()) {
        check(h.group_len > 0 && h.in % h.group_len == 0, what, ": group length ", h.group_len, " does not divide ",
              h.in, " inputs");
        const int64_t ng = h.in / h.group_len;
        check(h.qweight.size() == size_t(h.in * h.bits / 32 * h.out) && h.scales.size() == size_t(ng * h.out) &&
                  h.zeros.size() == size_t(ng * h.out),
              what, ": packed weight [", h.out, ", ", h.in, "] ", h.bits, "-bit group ", h.group_len,
              " has inconsistent qweight/scales/zeros sizes");
        d.bits = h.bits;
        d.group_len = h.group_len;
        d.qweight.upload(h.qweight.data(), h.qweight.size(), what);
        d.scales.upload(h.scales.data(), h.scales.size(), what);
        d.zeros.upload(h.zeros.data(), h.zeros.size(), what);
    } else {
        check(h.dense_bf16 != nullptr, what, ": no weight data");
        d.dense_own.upload(h.dense_bf16, size_t(h.out * h.in), what);
        d.dense = d.dense_own.p;
    }
}

// Concatenates linears along `out` (the same kind, in, bits and group) into one host linear.
bool fusable(const std::vector<const HostLinear*>& ls) {
    for (const HostLinear* l : ls)
        check(l->packed() || l->dense_bf16 != nullptr, "a ", l->out, " x ", l->in, " weight has no data");
    for (const HostLinear* l : ls)
        if (l->packed() != ls[0]->packed() || l->in != ls[0]->in || l->bits != ls[0]->bits ||
            l->group_len != ls[0]->group_len)
            return false;
    return true;
}

HostLinear concat_out(const std::vector<const HostLinear*>& ls) {
    HostLinear f;
    f.in = ls[0]->in;
    for (const HostLinear* l : ls) f.out += l->out;
    if (!ls[0]->packed()) {
        f.dense_storage.resize(size_t(f.out * f.in));
        size_t at = 0;
        for (const HostLinear* l : ls) {
            std::memcpy(f.dense_storage.data() + at, l->dense_bf16, size_t(l->out * l->in) * 2);
            at += size_t(l->out * l->in);
        }
        f.dense_bf16 = f.dense_storage.data();
        return f;
    }
    f.bits = ls[0]->bits;
    f.group_len = ls[0]->group_len;
    const int64_t rows = f.in * f.bits / 32, ng = f.in / f.group_len;
    f.qweight.resize(size_t(rows * f.out));
    f.scales.resize(size_t(ng * f.out));
    f.zeros.resize(size_t(ng * f.out));
    int64_t col = 0;
    for (const HostLinear* l : ls) {  // row-major [rows, out]: each part's columns go to [col, col + l->out)
        for (int64_t r = 0; r < rows; ++r)
            std::memcpy(&f.qweight[size_t(r * f.out + col)], &l->qweight[size_t(r * l->out)], size_t(l->out) * 4);
        for (int64_t g = 0; g < ng; ++g) {
            std::memcpy(&f.scales[size_t(g * f.out + col)], &l->scales[size_t(g * l->out)], size_t(l->out) * 2);
            std::memcpy(&f.zeros[size_t(g * f.out + col)], &l->zeros[size_t(g * l->out)], size_t(l->out));
        }
        col += l->out;
    }
    return f;
}

std::vector<Part> upload_parts(const std::vector<const HostLinear*>& ls, const char* what) {
    std::vector<Part> parts;
    if (fusable(ls)) {
        const HostLinear f = concat_out(ls);
        parts.emplace_back();
        upload_linear(parts.back().w, f, what);
        return parts;
    }
    int64_t off = 0;
    for (const HostLinear* l : ls) {
        parts.emplace_back();
        upload_linear(parts.back().w, *l, what);
        parts.back().offset = off;
        off += l->out;
    }
    return parts;
}

}  // namespace

struct CudaDecoder::Impl {
    DecoderDims d;
    CudaDecoderOptions opt;
    int64_t W = 0;  // fused q|k|v width
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;

    DevBuf<uint16_t> embed;  // [V, H] bf16
    DevBuf<float> final_norm, inv_freq;
    DevLinear head_own;
    bool head_tied = false;
    std::vector<DevLayer> layers;
    int64_t cap = 0, len = 0, pos_delta = 0;

    // decode buffers
    DevBuf<int32_t> tok, slot, next;  // next [1]: the device argmax of forward_greedy
    // forward_top_k: the history's ids [V] flags, the transformed logits [V], the candidates
    // [max(CudaDecoder::kTopKCandidates, k)] and cand_count [2] (count, NaN flag)
    DevBuf<uint8_t> seen;
    DevBuf<float> topk_scratch, cand_val;
    DevBuf<int32_t> cand_idx, cand_count;
    DevBuf<float> x, h, qkv, att, gu, act, logits;
    DevBuf<unsigned char> att_ws;
    float* logits_host = nullptr;  // pinned [V]
    cudaGraphExec_t graph = nullptr;
    int64_t graph_cap = -1, graph_delta = 0;

    // prefill buffers
    int64_t rows = 0;  // rows the prefill buffers hold
    DevBuf<int32_t> ids, targets;
    DevBuf<float> xT, qkvT, qT32, oT32, guT, lse, logitsT;
    DevBuf<uint16_t> hT, qT, oT, actT, scratch;
    DevBuf<unsigned char> attT_ws;
    DevBuf<double> nll;
    size_t scratch_need = 0;

    ~Impl() {
        if (graph) cudaGraphExecDestroy(graph);
        if (logits_host) cudaFreeHost(logits_host);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }

    const uint16_t* head_dense() const { return head_tied ? embed.p : head_own.dense; }

    void note_scratch(const DevLinear& l) { if (l.packed()) scratch_need = std::max(scratch_need, size_t(l.out * l.in)); }

    // ---- GEMV / GEMM on one linear ----------------------------------------------------------------------------
    void gemv(const DevLinear& w, const float* xin, float* y, bool accumulate) {
        if (!w.packed()) bf16_gemv(w.dense, w.out, w.in, xin, y, accumulate, stream);
        else if (opt.exact_decode_gemv) quant_gemv(w.view(), xin, y, accumulate, stream);
        else quant_gemv_fast(w.view(), xin, y, accumulate, stream);
    }
    // The fused decode path applies to these parts: fast mode and every part packed.
    bool fusable_parts(const std::vector<Part>& parts) const {
        if (opt.exact_decode_gemv) return false;
        for (const Part& p : parts)
            if (!p.w.packed()) return false;
        return true;
    }
    // y (+)= parts · RMSNorm(xin; norm_w) through the fused prologue (fusable_parts): accumulate when y is known to be
    // zero already; the first part also zeroes `zero` [zero_n] for a later fused GEMV.
    void fused_norm_gemv(const std::vector<Part>& parts, const float* xin, const float* norm_w, float* y,
                         bool y_is_zero, float* zero, int64_t zero_n) {
        GemvInput in;
        in.op = GemvPrologue::RmsNorm;
        in.src = xin;
        in.norm_w = norm_w;
        in.eps = d.rms_eps;
        for (size_t i = 0; i < parts.size(); ++i)
            quant_gemv_fast(parts[i].w.view(), in, y + parts[i].offset, y_is_zero, stream, i == 0 ? zero : nullptr,
                            i == 0 ? zero_n : 0);
    }
    // Y [T, ldy] (columns [0, w.out)) = X [T, in] bf16 · wᵀ (+ Y when accumulate), FP32 out.
    void gemm(const DevLinear& w, const uint16_t* X, int64_t T, float* Y, int64_t ldy, bool accumulate) {
        const uint16_t* A = w.dense;
        if (w.packed()) {
            scratch.ensure(scratch_need, "the dequantized-weight scratch of the prefill GEMMs");
            quant_dequantize_bf16(w.view(), scratch.p, stream);
            A = scratch.p;
        }
        gemm_dense(A, w.out, w.in, X, T, Y, ldy, accumulate);
    }
    void gemm_dense(const uint16_t* A, int64_t out, int64_t in, const uint16_t* X, int64_t T, float* Y, int64_t ldy,
                    bool accumulate) {
        const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
        // column-major view: Y_cm [out, T] = (A_cm [in, out])ᵀ · X_cm [in, T]
        AR_CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(out), int(T), int(in), &alpha, A, CUDA_R_16BF,
                                     int(in), X, CUDA_R_16BF, int(in), &beta, Y, CUDA_R_32F, int(ldy),
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }

    // ---- KV cache -----------------------------------------------------------------------------------------------
    void reserve(int64_t tokens) {
        if (tokens <= cap) return;
        const int64_t new_cap = std::max(tokens, std::min<int64_t>(2 * cap, cap + 4096));
        const size_t row = size_t(d.n_kv_heads) * d.head_dim;
        for (DevLayer& L : layers) {
            DevBuf<uint16_t> k, v;
            k.alloc(size_t(new_cap) * row, "the KV cache");
            v.alloc(size_t(new_cap) * row, "the KV cache");
            if (len > 0) {
                AR_CUDA_CHECK(cudaMemcpyAsync(k.p, L.k_cache.p, size_t(len) * row * 2, cudaMemcpyDeviceToDevice, stream));
                AR_CUDA_CHECK(cudaMemcpyAsync(v.p, L.v_cache.p, size_t(len) * row * 2, cudaMemcpyDeviceToDevice, stream));
            }
            AR_CUDA_CHECK(cudaStreamSynchronize(stream));
            L.k_cache = std::move(k);
            L.v_cache = std::move(v);
        }
        drop_graph();
        att_ws.ensure(decode_attention_step_workspace_bytes(d.n_q_heads, d.head_dim, new_cap), "the attention workspace");
        cap = new_cap;  // last: a failed allocation above leaves cap as it was, so the next reserve retries
    }
    void drop_graph() {
        if (graph) cudaGraphExecDestroy(graph);
        graph = nullptr;
        graph_cap = -1;
    }

    // ---- decode ---------------------------------------------------------------------------------------------------
    // One token (id in tok, slot in slot) through every layer to logits [V]; graph-capturable.
    // Fast mode (packed layers): the RMSNorms run inside the q|k|v and gate|up GEMVs, SwiGLU inside the down GEMV.
    // Their outputs qkv and gu are accumulated (y +=) into zeros when the previous fused GEMV of this step zeroed
    // them as its side job (the q|k|v GEMV zeroes gu for the gate|up of its layer, the gate|up GEMV zeroes qkv for
    // the next layer); otherwise (the first layer, or after an unfused GEMV) they are written with y =. The zeroing
    // is tracked per step on the host, so a step never depends on what an earlier step left in these buffers.
    void decode_kernels() {
        const int64_t H = d.hidden, I = d.intermediate, D = d.head_dim;
        const float scale = 1.f / std::sqrt(float(D));
        embed_rows_bf16(embed.p, d.vocab, tok.p, 1, H, x.p, stream);
        bool qkv_zero = false, gu_zero = false;  // buffer known to hold zeros at this point of the step
        for (size_t li = 0; li < layers.size(); ++li) {
            DevLayer& L = layers[li];
            const bool fuse_qkv = fusable_parts(L.qkv), fuse_gu = fusable_parts(L.gate_up);
            const bool next_fuses_qkv = li + 1 < layers.size() && fusable_parts(layers[li + 1].qkv);
            const bool fuse_down = !opt.exact_decode_gemv && L.down.packed();
            if (fuse_qkv) {
                fused_norm_gemv(L.qkv, x.p, L.input_norm.p, qkv.p, qkv_zero, fuse_gu ? gu.p : nullptr,
                                fuse_gu ? 2 * I : 0);
                gu_zero = fuse_gu;
            } else {
                rms_norm_rows(x.p, L.input_norm.p, 1, H, d.rms_eps, h.p, nullptr, stream);
                for (const Part& p : L.qkv) gemv(p.w, h.p, qkv.p + p.offset, false);
                gu_zero = false;
            }
            qkv_zero = false;
            decode_attention_step(qkv.p, d.n_q_heads, d.n_kv_heads, d.head_dim, L.q_norm.p, L.k_norm.p, d.rms_eps,
                                  inv_freq.p, slot.p, pos_delta, L.k_cache.p, L.v_cache.p, cap, scale, att.p, att_ws.p,
                                  stream);
            gemv(L.o, att.p, x.p, true);
            if (fuse_gu) {
                fused_norm_gemv(L.gate_up, x.p, L.post_attn_norm.p, gu.p, gu_zero, next_fuses_qkv ? qkv.p : nullptr,
                                next_fuses_qkv ? W : 0);
                qkv_zero = next_fuses_qkv;
            } else {
                rms_norm_rows(x.p, L.post_attn_norm.p, 1, H, d.rms_eps, h.p, nullptr, stream);
                for (const Part& p : L.gate_up) gemv(p.w, h.p, gu.p + p.offset, false);
            }
            gu_zero = false;
            if (fuse_down) {
                GemvInput in;
                in.op = GemvPrologue::SwiGlu;
                in.src = gu.p;
                quant_gemv_fast(L.down.view(), in, x.p, true, stream);
            } else {
                swiglu_rows(gu.p, 1, I, act.p, nullptr, stream);
                gemv(L.down, act.p, x.p, true);
            }
        }
        if (!head_tied && head_own.packed() && !opt.exact_decode_gemv) {
            GemvInput in;
            in.op = GemvPrologue::RmsNorm;
            in.src = x.p;
            in.norm_w = final_norm.p;
            in.eps = d.rms_eps;
            quant_gemv_fast(head_own.view(), in, logits.p, false, stream);
            return;
        }
        rms_norm_rows(x.p, final_norm.p, 1, H, d.rms_eps, h.p, nullptr, stream);
        if (head_tied || !head_own.packed()) bf16_gemv(head_dense(), d.vocab, H, h.p, logits.p, false, stream);
        else gemv(head_own, h.p, logits.p, false);
    }

    // out_logits (host, [V]) and / or out_argmax (the logits' argmax, computed on the device): either may be null.
    // sync = false (only with both null): returns with the step queued on `stream`, for a caller that queues more work
    // on the logits before it waits.
    void decode_step(int32_t token, float* out_logits, int32_t* out_argmax = nullptr, bool sync = true) {
        reserve(len + 1);
        set_step_kernel<<<1, 1, 0, stream>>>(tok.p, token, slot.p, int32_t(len));
        AR_CUDA_CHECK(cudaGetLastError());
        if (opt.cuda_graphs) {
            if (!graph || graph_cap != cap || graph_delta != pos_delta) {
                drop_graph();
                cudaGraph_t g = nullptr;
                AR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
                try {
                    decode_kernels();
                } catch (...) {
                    cudaStreamEndCapture(stream, &g);
                    if (g) cudaGraphDestroy(g);
                    throw;
                }
                AR_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
                const cudaError_t e = cudaGraphInstantiate(&graph, g, 0);
                cudaGraphDestroy(g);
                AR_CUDA_CHECK(e);
                graph_cap = cap;
                graph_delta = pos_delta;
            }
            AR_CUDA_CHECK(cudaGraphLaunch(graph, stream));
        } else {
            decode_kernels();
        }
        ++len;
        if (out_argmax) {
            argmax_rows(logits.p, 1, d.vocab, next.p, stream);
            AR_CUDA_CHECK(cudaMemcpyAsync(out_argmax, next.p, sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
        }
        if (out_logits) {
            AR_CUDA_CHECK(cudaMemcpyAsync(logits_host, logits.p, size_t(d.vocab) * 4, cudaMemcpyDeviceToHost, stream));
            AR_CUDA_CHECK(cudaStreamSynchronize(stream));
            std::memcpy(out_logits, logits_host, size_t(d.vocab) * 4);
        } else if (sync || out_argmax) {
            AR_CUDA_CHECK(cudaStreamSynchronize(stream));
        }
    }

    // ---- prefill ----------------------------------------------------------------------------------------------------
    void ensure_rows(int64_t T) {
        if (T <= rows) return;
        rows = 0;  // until every buffer below exists (an out-of-memory error part-way must not leave stale sizes)
        const int64_t H = d.hidden, I = d.intermediate, QD = int64_t(d.n_q_heads) * d.head_dim;
        ids.alloc(T, "prefill token ids");
        targets.alloc(T, "prefill targets");
        xT.alloc(size_t(T * H), "prefill activations");
        hT.alloc(size_t(T * H), "prefill activations");
        qkvT.alloc(size_t(T * W), "prefill activations");
        qT.alloc(size_t(T * QD), "prefill activations");
        oT.alloc(size_t(T * QD), "prefill activations");
        guT.alloc(size_t(T * 2 * I), "prefill activations");
        actT.alloc(size_t(T * I), "prefill activations");
        lse.alloc(size_t(T) * d.n_q_heads, "prefill activations");
        nll.alloc(size_t(T), "prefill NLL");
        rows = T;
    }

    // Runs ids[0..T) (already on the device in `ids`) at slots [len, len + T) through every layer; the final residual
    // stream is left in xT [T, H].
    void prefill_layers(int64_t T) {
        const int64_t H = d.hidden, I = d.intermediate, D = d.head_dim, QD = int64_t(d.n_q_heads) * D;
        const float scale = 1.f / std::sqrt(float(D));
        const bool flash = opt.flash_attention && len == 0 && flash_attention_supports_head_dim(int(D));
        if (!flash) {
            qT32.ensure(size_t(T * QD), "prefill activations");
            oT32.ensure(size_t(T * QD), "prefill activations");
            attT_ws.ensure(decode_attention_workspace_bytes(T, d.n_q_heads, int(D), cap), "the attention workspace");
        }
        set_step_kernel<<<1, 1, 0, stream>>>(tok.p, 0, slot.p, int32_t(len));
        AR_CUDA_CHECK(cudaGetLastError());
        embed_rows_bf16(embed.p, d.vocab, ids.p, T, H, xT.p, stream);
        for (DevLayer& L : layers) {
            rms_norm_rows(xT.p, L.input_norm.p, T, H, d.rms_eps, nullptr, hT.p, stream);
            for (const Part& p : L.qkv) gemm(p.w, hT.p, T, qkvT.p + p.offset, W, false);
            qk_norm_rope_cache(qkvT.p, T, d.n_q_heads, d.n_kv_heads, int(D), L.q_norm.p, L.k_norm.p, d.rms_eps,
                               inv_freq.p, slot.p, pos_delta, flash ? nullptr : qT32.p, flash ? qT.p : nullptr,
                               L.k_cache.p, L.v_cache.p, cap, stream);
            if (flash) {
                flash_attention_forward(reinterpret_cast<const __nv_bfloat16*>(qT.p),
                                        reinterpret_cast<const __nv_bfloat16*>(L.k_cache.p),
                                        reinterpret_cast<const __nv_bfloat16*>(L.v_cache.p), 1, T, d.n_q_heads,
                                        d.n_kv_heads, int(D), scale, reinterpret_cast<__nv_bfloat16*>(oT.p), lse.p,
                                        stream);
            } else {
                decode_attention(qT32.p, L.k_cache.p, L.v_cache.p, T, d.n_q_heads, d.n_kv_heads, int(D), scale, slot.p,
                                 cap, oT32.p, attT_ws.p, stream);
                f32_to_bf16(oT32.p, oT.p, T * QD, stream);
            }
            gemm(L.o, oT.p, T, xT.p, H, true);
            rms_norm_rows(xT.p, L.post_attn_norm.p, T, H, d.rms_eps, nullptr, hT.p, stream);
            for (const Part& p : L.gate_up) gemm(p.w, hT.p, T, guT.p + p.offset, 2 * I, false);
            swiglu_rows(guT.p, T, I, nullptr, actT.p, stream);
            gemm(L.down, actT.p, T, xT.p, H, true);
        }
        len += T;
    }

    // logits rows [r0, r0 + n) of the current chunk (final-normed bf16 hidden in hT) into logitsT [n, V].
    void head_rows(int64_t r0, int64_t n) {
        logitsT.ensure(size_t(kLogitRows * d.vocab), "the logits rows");
        const uint16_t* X = hT.p + r0 * d.hidden;
        if (head_tied || !head_own.packed()) gemm_dense(head_dense(), d.vocab, d.hidden, X, n, logitsT.p, d.vocab, false);
        else gemm(head_own, X, n, logitsT.p, d.vocab, false);
    }

    int64_t chunk_rows() const { return std::clamp<int64_t>(opt.prefill_chunk, 1, kMaxChunk); }

    void prefill(const int32_t* tokens, int64_t T, float* out_logits, bool all_logits) {
        const int64_t chunk = chunk_rows(), H = d.hidden, V = d.vocab;
        reserve(len + T);
        for (int64_t c0 = 0; c0 < T; c0 += chunk) {
            const int64_t n = std::min(chunk, T - c0);
            ensure_rows(n);
            AR_CUDA_CHECK(cudaMemcpyAsync(ids.p, tokens + c0, size_t(n) * 4, cudaMemcpyHostToDevice, stream));
            prefill_layers(n);
            if (!out_logits || (!all_logits && c0 + n < T)) continue;
            rms_norm_rows(xT.p, final_norm.p, n, H, d.rms_eps, nullptr, hT.p, stream);
            if (all_logits) {
                for (int64_t r0 = 0; r0 < n; r0 += kLogitRows) {
                    const int64_t m = std::min(kLogitRows, n - r0);
                    head_rows(r0, m);
                    AR_CUDA_CHECK(cudaMemcpyAsync(out_logits + (c0 + r0) * V, logitsT.p, size_t(m * V) * 4,
                                                  cudaMemcpyDeviceToHost, stream));
                }
            } else {
                head_rows(n - 1, 1);
                AR_CUDA_CHECK(cudaMemcpyAsync(out_logits, logitsT.p, size_t(V) * 4, cudaMemcpyDeviceToHost, stream));
            }
            AR_CUDA_CHECK(cudaStreamSynchronize(stream));
        }
        AR_CUDA_CHECK(cudaStreamSynchronize(stream));
    }

    double window_nll(const int32_t* tokens, int64_t T, std::vector<double>* per_token) {
        len = 0;
        pos_delta = 0;  // a text window from an empty cache
        reserve(T);
        const int64_t chunk = chunk_rows(), H = d.hidden, V = d.vocab;
        std::vector<double> all(size_t(std::max<int64_t>(T - 1, 0)));
        for (int64_t c0 = 0; c0 < T; c0 += chunk) {
            const int64_t n = std::min(chunk, T - c0);
            ensure_rows(n);
            AR_CUDA_CHECK(cudaMemcpyAsync(ids.p, tokens + c0, size_t(n) * 4, cudaMemcpyHostToDevice, stream));
            const int64_t scored = std::min(n, T - 1 - c0);  // rows of this chunk that predict a next token
            if (scored > 0)
                AR_CUDA_CHECK(cudaMemcpyAsync(targets.p, tokens + c0 + 1, size_t(scored) * 4, cudaMemcpyHostToDevice,
                                              stream));
            prefill_layers(n);
            if (scored <= 0) continue;
            rms_norm_rows(xT.p, final_norm.p, n, H, d.rms_eps, nullptr, hT.p, stream);
            for (int64_t r0 = 0; r0 < scored; r0 += kLogitRows) {
                const int64_t m = std::min(kLogitRows, scored - r0);
                head_rows(r0, m);
                token_nll_rows(logitsT.p, targets.p + r0, m, V, nll.p + r0, stream);
            }
            AR_CUDA_CHECK(cudaMemcpyAsync(all.data() + c0, nll.p, size_t(scored) * 8, cudaMemcpyDeviceToHost, stream));
            AR_CUDA_CHECK(cudaStreamSynchronize(stream));
        }
        double s = 0;
        for (double v : all) s += v;
        if (per_token) *per_token = std::move(all);
        return s;
    }
};

CudaDecoder::CudaDecoder(const DecoderDims& dims, const CudaDecoderOptions& opt) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.d = dims;
    m.opt = opt;
    check(dims.hidden > 0 && dims.intermediate > 0 && dims.vocab > 0 && dims.n_layers > 0 && dims.n_q_heads > 0 &&
              dims.n_kv_heads > 0 && dims.n_q_heads % dims.n_kv_heads == 0 && dims.head_dim > 0 &&
              dims.head_dim % 2 == 0 && dims.inv_freq.size() == size_t(dims.head_dim / 2),
          "CudaDecoder: bad dimensions (hidden ", dims.hidden, ", heads ", dims.n_q_heads, "/", dims.n_kv_heads,
          ", head_dim ", dims.head_dim, ")");
    const int64_t QD = int64_t(dims.n_q_heads) * dims.head_dim;
    check(dims.head_dim <= 256 && dims.hidden % 8 == 0 && dims.intermediate % 8 == 0 && QD % 8 == 0,
          "--device cuda: the GPU runtime needs head_dim <= 256 and hidden, intermediate and heads x head_dim multiples "
          "of 8 (this model: head_dim ", dims.head_dim, ", hidden ", dims.hidden, ", intermediate ", dims.intermediate,
          "); use --device cpu");
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        cudaGetLastError();
        fail("--device cuda: no usable CUDA device; use --device cpu");
    }
    m.W = int64_t(dims.n_q_heads + 2 * dims.n_kv_heads) * dims.head_dim;
    AR_CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
    AR_CUBLAS_CHECK(cublasCreate(&m.blas));
    AR_CUBLAS_CHECK(cublasSetStream(m.blas, m.stream));
    AR_CUBLAS_CHECK(cublasSetMathMode(m.blas, CUBLAS_DEFAULT_MATH));
    m.layers.resize(size_t(dims.n_layers));
    m.inv_freq.upload(dims.inv_freq.data(), dims.inv_freq.size(), "RoPE tables");
    const int64_t H = dims.hidden, I = dims.intermediate;
    m.tok.alloc(1, "decode buffers");
    m.next.alloc(1, "decode buffers");
    m.slot.alloc(1, "decode buffers");
    m.x.alloc(size_t(H), "decode buffers");
    m.h.alloc(size_t(H), "decode buffers");
    m.qkv.alloc(size_t(m.W), "decode buffers");
    m.att.alloc(size_t(QD), "decode buffers");
    m.gu.alloc(size_t(2 * I), "decode buffers");
    m.act.alloc(size_t(I), "decode buffers");
    m.logits.alloc(size_t(dims.vocab), "decode buffers");
    if (cudaMallocHost(&m.logits_host, size_t(dims.vocab) * 4) != cudaSuccess) {
        cudaGetLastError();
        fail("out of pinned host memory for the logits (", dims.vocab, " floats)");
    }
    sync_uploads();
}

CudaDecoder::~CudaDecoder() = default;

void CudaDecoder::set_embedding(const uint16_t* bf16_table) {
    impl_->drop_graph();
    impl_->embed.upload(bf16_table, size_t(impl_->d.vocab * impl_->d.hidden), "the embedding table");
    sync_uploads();
}

void CudaDecoder::set_final_norm(const float* w) {
    impl_->drop_graph();
    impl_->final_norm.upload(w, size_t(impl_->d.hidden), "the final norm");
    sync_uploads();
}

void CudaDecoder::set_lm_head(const HostLinear& head) {
    Impl& m = *impl_;
    check(head.out == m.d.vocab && head.in == m.d.hidden, "LM head has shape [", head.out, ", ", head.in,
          "], expected [", m.d.vocab, ", ", m.d.hidden, "]");
    m.drop_graph();
    upload_linear(m.head_own, head, "the LM head");
    m.head_tied = false;
    m.note_scratch(m.head_own);
    sync_uploads();
}

void CudaDecoder::tie_lm_head_to_embedding() {
    impl_->drop_graph();
    impl_->head_tied = true;
    impl_->head_own = DevLinear{};
}

void CudaDecoder::set_layer(int l, const HostDecoderLayer& h) {
    Impl& m = *impl_;
    const DecoderDims& d = m.d;
    check(l >= 0 && l < d.n_layers, "set_layer: layer ", l, " out of range");
    const int64_t H = d.hidden, I = d.intermediate, QD = int64_t(d.n_q_heads) * d.head_dim,
                  KD = int64_t(d.n_kv_heads) * d.head_dim;
    auto shape = [&](const HostLinear* w, int64_t out, int64_t in, const char* name) {
        check(w && w->out == out && w->in == in, "layer ", l, " ", name, ": shape [", w ? w->out : 0, ", ",
              w ? w->in : 0, "], expected [", out, ", ", in, "]");
    };
    shape(h.q, QD, H, "q_proj");
    shape(h.k, KD, H, "k_proj");
    shape(h.v, KD, H, "v_proj");
    shape(h.o, H, QD, "o_proj");
    shape(h.gate, I, H, "gate_proj");
    shape(h.up, I, H, "up_proj");
    shape(h.down, H, I, "down_proj");
    check(h.input_norm && h.post_attn_norm && (h.q_norm != nullptr) == d.qk_norm && (h.k_norm != nullptr) == d.qk_norm,
          "layer ", l, ": the input/post-attention norms are required, and q_norm/k_norm must be given exactly when "
          "the model has QK-norm (", d.qk_norm ? "it has" : "it has not", ")");
    m.drop_graph();
    DevLayer& L = m.layers[size_t(l)];
    L.input_norm.upload(h.input_norm, size_t(H), "norm weights");
    L.post_attn_norm.upload(h.post_attn_norm, size_t(H), "norm weights");
    if (d.qk_norm) {
        L.q_norm.upload(h.q_norm, size_t(d.head_dim), "norm weights");
        L.k_norm.upload(h.k_norm, size_t(d.head_dim), "norm weights");
    }
    L.qkv = upload_parts({h.q, h.k, h.v}, "the q/k/v projections");
    L.gate_up = upload_parts({h.gate, h.up}, "the gate/up projections");
    upload_linear(L.o, *h.o, "o_proj");
    upload_linear(L.down, *h.down, "down_proj");
    for (const Part& p : L.qkv) m.note_scratch(p.w);
    for (const Part& p : L.gate_up) m.note_scratch(p.w);
    m.note_scratch(L.o);
    m.note_scratch(L.down);
    if (m.cap > 0) {  // layers set after reserve(): give this one its cache too
        const size_t row = size_t(d.n_kv_heads) * d.head_dim;
        L.k_cache.alloc(size_t(m.cap) * row, "the KV cache");
        L.v_cache.alloc(size_t(m.cap) * row, "the KV cache");
        m.len = 0;  // this layer's cached rows are gone, so the others' are meaningless
    }
    sync_uploads();
}

void CudaDecoder::reserve(int64_t tokens) { impl_->reserve(tokens); }
int64_t CudaDecoder::capacity() const { return impl_->cap; }
int64_t CudaDecoder::size() const { return impl_->len; }
void CudaDecoder::clear() {
    Impl& m = *impl_;
    m.len = 0;
    if (m.seen.p) {  // a new sequence: the sampler's history starts empty too (set_history)
        AR_CUDA_CHECK(cudaMemsetAsync(m.seen.p, 0, size_t(m.d.vocab), m.stream));
        AR_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    }
}
void CudaDecoder::set_position_delta(int64_t d) { impl_->pos_delta = d; }

void CudaDecoder::forward(const int32_t* tokens, int64_t T, float* logits, bool all_logits) {
    Impl& m = *impl_;
    check(m.embed.p && m.final_norm.p && (m.head_tied || m.head_own.out > 0), "CudaDecoder: weights not set");
    if (T <= 0) return;
    for (int64_t t = 0; t < T; ++t)
        check(tokens[t] >= 0 && tokens[t] < m.d.vocab, "token id ", tokens[t], " at position ", t,
              " is outside the vocabulary [0, ", m.d.vocab, ")");
    if (T == 1) m.decode_step(tokens[0], logits);
    else m.prefill(tokens, T, logits, all_logits);
}

void CudaDecoder::set_history(const int32_t* ids, int64_t n) {
    Impl& m = *impl_;
    std::vector<uint8_t> flags(size_t(m.d.vocab), 0);
    for (int64_t i = 0; i < n; ++i) {
        check(ids[i] >= 0 && ids[i] < m.d.vocab, "history id ", ids[i], " at position ", i,
              " is outside the vocabulary [0, ", m.d.vocab, ")");
        flags[size_t(ids[i])] = 1;
    }
    m.seen.upload(flags.data(), flags.size(), "the sampler's history flags");
    AR_CUDA_CHECK(cudaDeviceSynchronize());
}

bool CudaDecoder::forward_top_k(int32_t token, float penalty, float temperature, int k, std::vector<int32_t>& idx,
                                std::vector<float>& val, float* logits_fallback) {
    Impl& m = *impl_;
    check(m.embed.p && m.final_norm.p && (m.head_tied || m.head_own.out > 0), "CudaDecoder: weights not set");
    check(token >= 0 && token < m.d.vocab, "token id ", token, " is outside the vocabulary [0, ", m.d.vocab, ")");
    check(k >= 1 && k <= m.d.vocab, "forward_top_k: k = ", k, " must be in [1, ", m.d.vocab, "]");
    check(penalty == 1.f || m.seen.p, "forward_top_k: a repetition penalty needs set_history() first");
    m.decode_step(token, nullptr, nullptr, /*sync=*/false);  // one wait below, after the candidates
    const int cap = std::max(kTopKCandidates, k);
    m.topk_scratch.ensure(size_t(m.d.vocab), "the sampler's scratch");
    m.cand_idx.ensure(size_t(cap), "the sampler's candidates");
    m.cand_val.ensure(size_t(cap), "the sampler's candidates");
    m.cand_count.ensure(2, "the sampler's candidates");
    topk_candidates(m.logits.p, m.d.vocab, m.seen.p, m.seen.p ? token : -1, penalty, temperature, k, cap,
                    m.topk_scratch.p, m.cand_idx.p, m.cand_val.p, m.cand_count.p, m.stream);
    int32_t count[2] = {0, 0};
    AR_CUDA_CHECK(cudaMemcpyAsync(count, m.cand_count.p, sizeof(count), cudaMemcpyDeviceToHost, m.stream));
    AR_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    if (count[1] != 0 || count[0] < 1 || count[0] > cap) {  // NaN logits or too many ties: the whole logits
        if (logits_fallback)
            AR_CUDA_CHECK(cudaMemcpy(logits_fallback, m.logits.p, size_t(m.d.vocab) * 4, cudaMemcpyDeviceToHost));
        return false;
    }
    std::vector<int32_t> ci(static_cast<size_t>(count[0]));
    std::vector<float> cv(static_cast<size_t>(count[0]));
    AR_CUDA_CHECK(cudaMemcpy(ci.data(), m.cand_idx.p, ci.size() * 4, cudaMemcpyDeviceToHost));
    AR_CUDA_CHECK(cudaMemcpy(cv.data(), m.cand_val.p, cv.size() * 4, cudaMemcpyDeviceToHost));
    std::vector<int32_t> order(ci.size());  // ascending ids (the kernel writes them in any order)
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return ci[size_t(a)] < ci[size_t(b)]; });
    idx.resize(ci.size());
    val.resize(ci.size());
    for (size_t j = 0; j < order.size(); ++j) {
        idx[j] = ci[size_t(order[j])];
        val[j] = cv[size_t(order[j])];
    }
    return true;
}

int32_t CudaDecoder::forward_greedy(int32_t token) {
    Impl& m = *impl_;
    check(m.embed.p && m.final_norm.p && (m.head_tied || m.head_own.out > 0), "CudaDecoder: weights not set");
    check(token >= 0 && token < m.d.vocab, "token id ", token, " is outside the vocabulary [0, ", m.d.vocab, ")");
    int32_t next = 0;
    m.decode_step(token, nullptr, &next);
    return next;
}

double CudaDecoder::window_nll(const int32_t* tokens, int64_t T, std::vector<double>* per_token) {
    Impl& m = *impl_;
    check(m.embed.p && m.final_norm.p && (m.head_tied || m.head_own.out > 0), "CudaDecoder: weights not set");
    for (int64_t t = 0; t < T; ++t)
        check(tokens[t] >= 0 && tokens[t] < m.d.vocab, "token id ", tokens[t], " at position ", t,
              " is outside the vocabulary [0, ", m.d.vocab, ")");
    return m.window_nll(tokens, T, per_token);
}

size_t CudaDecoder::weight_bytes() const {
    const Impl& m = *impl_;
    size_t b = m.embed.bytes() + m.head_own.bytes();
    for (const DevLayer& L : m.layers) {
        for (const Part& p : L.qkv) b += p.w.bytes();
        for (const Part& p : L.gate_up) b += p.w.bytes();
        b += L.o.bytes() + L.down.bytes();
    }
    return b;
}

size_t CudaDecoder::decode_read_bytes() const {
    const Impl& m = *impl_;
    size_t b = m.head_tied ? size_t(m.d.vocab * m.d.hidden) * 2 : m.head_own.read_bytes();
    for (const DevLayer& L : m.layers) {
        for (const Part& p : L.qkv) b += p.w.read_bytes();
        for (const Part& p : L.gate_up) b += p.w.read_bytes();
        b += L.o.read_bytes() + L.down.read_bytes();
    }
    return b;
}

}  // namespace autoround
