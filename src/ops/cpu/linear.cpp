// ops/cpu/linear.cpp — see linear.h.
#include "ops/cpu/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define AR_HAVE_AVX2 1
#endif

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cpu/qmm_repack.h"
#include "ops/cpu/quant_matmul.h"

namespace autoround {

void weight_row_to_f32(const WeightView& w, int64_t r, float* dst) {
    if (w.packed()) {
        if (w.repacked && r < w.repacked->rows) {
            // from the repacked copy, whose rows' file pages the loader may have released (model/qwen3_model.h):
            // the row's blocks back in file order, then the same dequantization as the file's row
            thread_local std::vector<uint8_t> blocks;
            blocks.resize(static_cast<size_t>(w.row_bytes()));
            qmm_repack_unpack_row(*w.repacked, r, blocks.data());
            gguf::dequantize_row(*w.block, blocks.data(), w.in, dst);
            return;
        }
        gguf::dequantize_row(*w.block, w.packed_row(r), w.in, dst);
        return;
    }
    switch (w.dtype) {
        case DType::F32: std::copy_n(w.f32_row(r), w.in, dst); return;
        case DType::BF16: {
            const uint16_t* s = w.u16_row(r);
            int64_t i = 0;
#ifdef AR_HAVE_AVX2
            for (; i + 8 <= w.in; i += 8) {
                __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
                __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
                _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(u));
            }
#endif
            for (; i < w.in; ++i) dst[i] = bf16_to_float(s[i]);
            return;
        }
        case DType::F16: {
            const uint16_t* s = w.u16_row(r);
            for (int64_t i = 0; i < w.in; ++i) dst[i] = fp16_to_float(s[i]);
            return;
        }
        default: fail("linear: unsupported weight dtype ", dtype_name(w.dtype));
    }
}

void linear_ref(const float* x, int64_t T, const WeightView& w, const float* bias, float* y) {
    std::vector<float> row(w.in);
    for (int64_t o = 0; o < w.out; ++o) {
        weight_row_to_f32(w, o, row.data());
        for (int64_t t = 0; t < T; ++t) {
            float acc = 0.f;
            for (int64_t i = 0; i < w.in; ++i) acc += x[t * w.in + i] * row[i];
            y[t * w.out + o] = acc + (bias ? bias[o] : 0.f);
        }
    }
}

#ifdef AR_HAVE_AVX2
static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
static inline __m256 load8_bf16(const uint16_t* p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
static inline __m256 load8_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
#endif

// Dot products of one weight row with NT (1..4) input rows; out[t] = w_r · x_t.
template <int NT>
static void dot_rows(const WeightView& w, int64_t r, const float* x, float* out) {
    const int64_t n = w.in;
    int64_t i = 0;
    float acc[NT] = {};
#ifdef AR_HAVE_AVX2
    {
        __m256 a0[NT], a1[NT];
        for (int t = 0; t < NT; ++t) { a0[t] = _mm256_setzero_ps(); a1[t] = _mm256_setzero_ps(); }
        for (; i + 16 <= n; i += 16) {
            __m256 w0, w1;
            if (w.dtype == DType::BF16) { w0 = load8_bf16(w.u16_row(r) + i); w1 = load8_bf16(w.u16_row(r) + i + 8); }
            else if (w.dtype == DType::F16) { w0 = load8_f16(w.u16_row(r) + i); w1 = load8_f16(w.u16_row(r) + i + 8); }
            else { w0 = _mm256_loadu_ps(w.f32_row(r) + i); w1 = _mm256_loadu_ps(w.f32_row(r) + i + 8); }
            for (int t = 0; t < NT; ++t) {
                a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * n + i), a0[t]);
                a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * n + i + 8), a1[t]);
            }
        }
        for (int t = 0; t < NT; ++t) acc[t] = hsum(_mm256_add_ps(a0[t], a1[t]));
    }
#endif
    for (; i < n; ++i) {
        float wv;
        if (w.dtype == DType::BF16) wv = bf16_to_float(w.u16_row(r)[i]);
        else if (w.dtype == DType::F16) wv = fp16_to_float(w.u16_row(r)[i]);
        else wv = w.f32_row(r)[i];
        for (int t = 0; t < NT; ++t) acc[t] += wv * x[t * n + i];
    }
    for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

float dot_row(const WeightView& w, int64_t r, const float* x) {
    float out;
    dot_rows<1>(w, r, x, &out);
    return out;
}

static void gemv_small(const float* x, int64_t T, const WeightView& w, const float* bias, float* y) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < w.out; ++o) {
        float acc[4];
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) {
            dot_rows<4>(w, o, x + t * w.in, acc);
            for (int k = 0; k < 4; ++k) y[(t + k) * w.out + o] = acc[k] + (bias ? bias[o] : 0.f);
        }
        for (; t < T; ++t) {
            dot_rows<1>(w, o, x + t * w.in, acc);
            y[t * w.out + o] = acc[0] + (bias ? bias[o] : 0.f);
        }
    }
}

// Packed GGUF weights: up to this many rows (decode) take the int8 path (ops/cpu/quant_matmul.h); more rows
// (prefill, `eval ppl`) dequantize 256-row weight tiles to float32 and use sgemm, which keeps perplexity equal
// to the dequantized-float model's (the int8 activations move nano's by 0.2-0.6 %), at 0.7x llama.cpp's
// int8 prefill speed (bench/results/gguf-cpu-vs-llamacpp.md).
constexpr int64_t kPackedInt8MaxRows = 4;

static void init_blas_once() {
    static const bool done = [] {
        openblas_set_num_threads(1);  // we parallelise over tiles with OpenMP
        return true;
    }();
    (void)done;
}

void linear_group(const float* x, int64_t T, std::span<const LinearOut> outs) {
    bool grouped = T <= kPackedInt8MaxRows && outs.size() <= 8;
    for (const LinearOut& o : outs) grouped = grouped && o.w->packed() && o.w->in == outs[0].w->in;
    if (grouped) {
        QmmOut q[8];
        for (size_t i = 0; i < outs.size(); ++i) q[i] = QmmOut{outs[i].w, outs[i].bias, outs[i].y};
        quant_matmul_q8_group(x, T, std::span<const QmmOut>(q, outs.size()));
        return;
    }
    for (const LinearOut& o : outs) linear(x, T, *o.w, o.bias, o.y);
}

void linear(const float* x, int64_t T, const WeightView& w, const float* bias, float* y) {
    if (w.packed()) {
        if (T <= kPackedInt8MaxRows) {
            quant_matmul_q8(x, T, w, bias, y);
            return;
        }
    } else {
        check(w.dtype == DType::BF16 || w.dtype == DType::F16 || w.dtype == DType::F32,
              "linear: unsupported weight dtype ", dtype_name(w.dtype));
        if (T <= 4) {
            gemv_small(x, T, w, bias, y);
            return;
        }
    }
    init_blas_once();
    // Weight rows converted per tile; packed rows are dequantized in larger tiles so sgemm re-packs x less often.
    const int64_t kTile = w.packed() ? 256 : 64;
    const int64_t ntiles = (w.out + kTile - 1) / kTile;
#pragma omp parallel
    {
        std::vector<float> buf;
        if (w.dtype != DType::F32) buf.resize(static_cast<size_t>(kTile * w.in));
#pragma omp for schedule(dynamic, 1)
        for (int64_t tile = 0; tile < ntiles; ++tile) {
            const int64_t r0 = tile * kTile, nr = std::min(kTile, w.out - r0);
            const float* wt;
            if (w.dtype == DType::F32) {
                wt = w.f32_row(r0);
            } else {
                for (int64_t r = 0; r < nr; ++r) weight_row_to_f32(w, r0 + r, buf.data() + r * w.in);
                wt = buf.data();
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(nr),
                        static_cast<int>(w.in), 1.0f, x, static_cast<int>(w.in), wt, static_cast<int>(w.in), 0.0f,
                        y + r0, static_cast<int>(w.out));
            if (bias)
                for (int64_t t = 0; t < T; ++t)
                    for (int64_t r = 0; r < nr; ++r) y[t * w.out + r0 + r] += bias[r0 + r];
        }
    }
}

}  // namespace autoround
