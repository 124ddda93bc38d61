// ops/cpu/quant_matmul.cpp — see quant_matmul.h. Block layouts: export/gguf_blocks.h (read, never redefined).
#include "ops/cpu/quant_matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*() and warn about it where they are
// inlined (GCC bug 105593, fixed in 13): silenced for the header's own lines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define AR_QMM_AVX2 1
// 512-bit integer dot products (VPDPBUSD / VPDPWSSD) for Q4_0, Q4_K and Q6_K where the build targets them (-march=native
// on Zen 4/5, Ice Lake and later): about half the instructions per weight of the AVX2 dots below.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__AVX512VBMI__)
#define AR_QMM_AVX512VNNI 1
#endif
#endif


#include "core/error.h"
#include "ops/cpu/prefetch_stream.h"
#include "ops/cpu/qmm_repack.h"

namespace autoround {

using gguf::BlockType;
using gguf::kQK;
using gguf::kQKK;

WeightView packed_weight_view(const std::string& label, BlockType t, const void* data, int64_t out, int64_t in) {
    switch (t) {
        case BlockType::Q4_0: case BlockType::Q4_1: case BlockType::Q8_0:
        case BlockType::Q4_K: case BlockType::Q5_K: case BlockType::Q6_K: break;
        default: fail(label, ": ", gguf::block_type_name(t), " is not a packed block type");
    }
    const int64_t be = gguf::block_elems(t);
    check(in > 0 && out > 0 && in % be == 0, label, ": ", gguf::block_type_name(t), " weight [", out, ", ",
          in, "] has rows of ", in, " values, not a whole number of ", be, "-value blocks");
    WeightView w{DType::U8, data, out, in};
    w.block = t;
    return w;
}

int64_t quant_act_block(BlockType t) { return gguf::block_elems(t) == kQKK ? kQKK : kQK; }

void quant_matmul_ref(const float* x, int64_t N, const WeightView& w, const float* bias, float* y) {
    check(w.packed(), "quant_matmul_ref: weight is not packed");
    std::vector<float> row(static_cast<size_t>(w.in));
    for (int64_t o = 0; o < w.out; ++o) {
        gguf::dequantize_row(*w.block, w.packed_row(o), w.in, row.data());
        for (int64_t t = 0; t < N; ++t) {
            float acc = 0.f;
            for (int64_t i = 0; i < w.in; ++i) acc += x[t * w.in + i] * row[i];
            y[t * w.out + o] = acc + (bias ? bias[o] : 0.f);
        }
    }
}

namespace {
// Whether the dots for w under isa read its repacked copy (ops/cpu/qmm_repack.h).
bool uses_repacked(const WeightView& w, QmmIsa isa) {
#ifdef AR_QMM_AVX512VNNI
    if (w.repacked && isa == QmmIsa::Best) return true;
#endif
#ifdef AR_QMM_AVX2
    return w.repacked && isa == QmmIsa::RepackRef;
#else
    (void)w, (void)isa;
    return false;
#endif
}
}  // namespace

bool qmm_repacked_dots_available() {
#ifdef AR_QMM_AVX512VNNI
    return true;
#else
    return false;
#endif
}

void add_qmm_part_ranges(PrefetchStream& pf, const WeightView& w, int64_t r0, int64_t r1, QmmIsa isa) {
    if (r1 <= r0) return;
    if (uses_repacked(w, isa)) {
        const QmmRepacked& R = *w.repacked;
        const int64_t e = std::min(r1, R.rows);
        if (r0 < e) {
            const int64_t g0 = r0 / kRepackRows, g1 = (e + kRepackRows - 1) / kRepackRows;
            pf.add(R.group(g0), (g1 - g0) * R.group_bytes);
        }
        r0 = std::max(r0, R.rows);
    }
    if (r0 < r1) pf.add(w.packed_row(r0), (r1 - r0) * w.row_bytes());
}

#ifdef AR_QMM_AVX2
namespace {

// ---- activation blocks (our own in-memory layout) ----------------------------------------------------------
// x[32] ≈ d * qs[j]; s = d * Σ qs (for Q4_1's min term).
struct ActQ8x32 {
    float d, s;
    int8_t qs[kQK];
};
// x[256] ≈ d * qs[j]; bsums[g] = Σ qs[16g .. 16g+15] (for the K-quants' mins and Q6_K's -32 offset).
struct ActQ8x256 {
    float d;
    int16_t bsums[kQKK / 16];
    int8_t qs[kQKK];
};

// For the repacked 16-row dots (ops/cpu/qmm_repack.h): a 32-value block with Q4_0's offset term −8·Σ qs in integers,
// and a 256-value block with the sums of its 32-value sub-blocks (the Q4_K mins' term, one VPDPWSSD per two).
struct ActQ8x32R {
    float d;
    int32_t neg8;
    int8_t qs[kQK];
};
struct ActQ8x256R {
    float d;
    int16_t bsums32[kQKK / 32];
    int8_t qs[kQKK];
};
// and for Q6_K: each 16-value sub-block's −32·Σ qs (its −32 offset term in integers, the start of the sub-block's
// VPDPBUSD chain, as Q4_0's neg8).
struct ActQ8x256R6 {
    float d;
    int32_t neg32[kQKK / 16];
    int8_t qs[kQKK];
};

// q[j] = round(x[j] * 127 / amax), |q| <= 127; returns d = amax / 127 (0 for an all-zero block).
inline float quantize_i8(const float* x, int n, int8_t* q) {
#ifdef AR_QMM_AVX512VNNI
    // the same values 16 at a time: VCVTPS2DQ rounds to nearest even like nearbyint in the default rounding mode
    if (n % 16 == 0) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < n; j += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
        const __m512 vid = _mm512_set1_ps(id);
        for (int j = 0; j < n; j += 16)
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j),
                             _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vid))));
        return d;
    }
#endif
    float amax = 0.f;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    for (int j = 0; j < n; ++j) q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
    return d;
}

#ifdef AR_QMM_AVX512VNNI
// Four 32-value blocks per element, laid out for the VNNI Q4_0 dot: the codes 0–15 of blocks 0..3 (16 bytes each, in
// the 128-bit lanes the low nibbles of the four weight blocks land in), then codes 16–31 (the high nibbles), the
// VPDPBUSD accumulator start −8·Σ of the 8 codes each int32 lane takes (Q4_0's −8 offset, in integers), and each
// lane's activation scale (block b's d in lanes 4b..4b+3). Blocks past the row's end stay zero.
struct alignas(64) ActQ8x128 {
    int8_t lo[64], hi[64];
    int32_t neg8[16];
    float d[16];
};
// ActQ8x256 with the codes of each 128-value half reordered [0–31, 64–95, 32–63, 96–127], the order the VNNI Q4_K
// dot pairs its sub-blocks in (low nibbles of two 32-byte chunks, then high nibbles): one aligned load per operand.
// bsums32[j]: Σ of the 32 codes of sub-block j (the two 16-value sums of ActQ8x256 added), for the mins' one VPMADDWD.
struct alignas(64) ActQ8x256K {
    float d;
    alignas(16) int16_t bsums32[kQKK / 32];
    alignas(64) int8_t qs[kQKK];
};
#endif

// Activation elements of type Act covering a row of n values (n a whole number of 32-value blocks).
inline int64_t act_count(const ActQ8x32*, int64_t n) { return n / kQK; }
inline int64_t act_count(const ActQ8x256*, int64_t n) { return n / kQKK; }
inline int64_t act_count(const ActQ8x32R*, int64_t n) { return n / kQK; }
inline int64_t act_count(const ActQ8x256R*, int64_t n) { return n / kQKK; }
inline int64_t act_count(const ActQ8x256R6*, int64_t n) { return n / kQKK; }
#ifdef AR_QMM_AVX512VNNI
inline int64_t act_count(const ActQ8x128*, int64_t n) { return (n / kQK + 3) / 4; }
inline int64_t act_count(const ActQ8x256K*, int64_t n) { return n / kQKK; }
#endif

void quantize_act(const float* x, int64_t n, ActQ8x32* a) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        a[b].d = quantize_i8(x + b * kQK, kQK, a[b].qs);
        int s = 0;
        for (int j = 0; j < kQK; ++j) s += a[b].qs[j];
        a[b].s = a[b].d * static_cast<float>(s);
    }
}
void quantize_act(const float* x, int64_t n, ActQ8x256* a) {
    for (int64_t b = 0; b < n / kQKK; ++b) {
        a[b].d = quantize_i8(x + b * kQKK, kQKK, a[b].qs);
        for (int g = 0; g < kQKK / 16; ++g) {
            int s = 0;
            for (int j = 0; j < 16; ++j) s += a[b].qs[16 * g + j];
            a[b].bsums[g] = static_cast<int16_t>(s);
        }
    }
}

void quantize_act(const float* x, int64_t n, ActQ8x32R* a) {
    for (int64_t b = 0; b < n / kQK; ++b) {
        a[b].d = quantize_i8(x + b * kQK, kQK, a[b].qs);
        int s = 0;
        for (int j = 0; j < kQK; ++j) s += a[b].qs[j];
        a[b].neg8 = -8 * s;
    }
}
void quantize_act(const float* x, int64_t n, ActQ8x256R* a) {
    ActQ8x256 t;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_act(x + b * kQKK, kQKK, &t);
        a[b].d = t.d;
        for (int j = 0; j < kQKK / 32; ++j) a[b].bsums32[j] = static_cast<int16_t>(t.bsums[2 * j] + t.bsums[2 * j + 1]);
        std::memcpy(a[b].qs, t.qs, kQKK);
    }
}
void quantize_act(const float* x, int64_t n, ActQ8x256R6* a) {
    ActQ8x256 t;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_act(x + b * kQKK, kQKK, &t);
        a[b].d = t.d;
        for (int j = 0; j < kQKK / 16; ++j) a[b].neg32[j] = -32 * t.bsums[j];
        std::memcpy(a[b].qs, t.qs, kQKK);
    }
}

#ifdef AR_QMM_AVX512VNNI
void quantize_act(const float* x, int64_t n, ActQ8x128* a) {
    const int64_t nb = n / kQK;
    std::memset(static_cast<void*>(a), 0, sizeof(ActQ8x128) * static_cast<size_t>(act_count(a, n)));
    for (int64_t blk = 0; blk < nb; ++blk) {
        ActQ8x128& p = a[blk / 4];
        const int b = static_cast<int>(blk % 4);
        int8_t q[kQK];
        const float d = quantize_i8(x + blk * kQK, kQK, q);
        std::memcpy(p.lo + 16 * b, q, 16);
        std::memcpy(p.hi + 16 * b, q + 16, 16);
        // −8 · (Σ q[4k..4k+3] + Σ q[16+4k..16+4k+3]) for k = 0..3: quad sums of the 32 codes by VPMADDUBSW (1 × q)
        // and VPMADDWD, then lanes k and k + 4 added (the scalar loop this replaces was most of the time it took)
        const __m256i quads = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))),
                                                _mm256_set1_epi16(1));
        const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(quads), _mm256_extracti128_si256(quads, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p.neg8 + 4 * b), _mm_mullo_epi32(s, _mm_set1_epi32(-8)));
        _mm_storeu_ps(p.d + 4 * b, _mm_set1_ps(d));
    }
}
void quantize_act(const float* x, int64_t n, ActQ8x256K* a) {
    ActQ8x256 t;
    for (int64_t b = 0; b < n / kQKK; ++b) {
        quantize_act(x + b * kQKK, kQKK, &t);
        a[b].d = t.d;
        for (int j = 0; j < kQKK / 32; ++j) a[b].bsums32[j] = static_cast<int16_t>(t.bsums[2 * j] + t.bsums[2 * j + 1]);
        for (int h = 0; h < 2; ++h)
            for (int k = 0; k < 4; ++k) std::memcpy(a[b].qs + 128 * h + 32 * k, t.qs + 128 * h + 32 * ((k & 1) * 2 + (k >> 1)), 32);
    }
}
#endif

// ---- AVX2 helpers ------------------------------------------------------------------------------------------
inline float fp16(uint16_t h) { return _cvtsh_ss(h); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
// Software prefetch kPrefetchBytes ahead of the weight stream (a thread's rows are contiguous, so this runs on
// into its next row): with the hardware prefetcher alone, 0.6B q4_0 decode on 2 cores reached ~27 tok/s; with
// 512 / 1024 / 2048 / 4096 bytes ahead ~33 / ~32 / ~35 / ~31 (bench_inference, best of 3). With the faster VNNI dots
// (four Q4_0 blocks per step) the longer distance pays: the decode step's matmuls alone (28 layers of Q4_0 + the Q6_K
// head, 2 threads) ran 83-88 / 92 / 92-102 tok/s at 2048 / 4096 / 8192 bytes, and the 0.6B Q4_0 decode 72.6 -> 77.1
// tok/s from 2048 to 4096.
constexpr int kPrefetchBytes = 4096;
template <bool Pf = true>
inline void prefetch_ahead(const void* p) {
    if constexpr (Pf) _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
}
// Prefetches every cache line of one block.
template <bool Pf, typename Block>
inline void prefetch_block(const Block* b) {
    for (int l = 0; l < static_cast<int>(sizeof(Block)); l += 64) prefetch_ahead<Pf>(reinterpret_cast<const uint8_t*>(b) + l);
}
// 16 bytes of nibbles -> 32 bytes: low nibbles in bytes 0..15, high nibbles in 16..31 (Q4_0/Q4_1 order).
inline __m256i nibbles32(const uint8_t* qs) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}
// Σ of u8 × i8 products in 8 int32 lanes (pairs summed by maddubs: |pair| <= 2·63·127 < 2^15 here).
inline __m256i dot_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// Σ of i8 × i8 products (|x| <= 127 on both sides), by moving x's sign onto y.
inline __m256i dot_i8i8(__m256i x, __m256i y) {
    return dot_u8i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// The 8 six-bit scales (sc[0..8)) and mins (sc[8..16)) of a Q4_K / Q5_K block from its 12 packed bytes, four
// 32-bit words at a time (the layout of gguf::q4k_get_scale_min: scales 0–3 / mins 0–3 in the low 6 bits of bytes
// 0–3 / 4–7; scales and mins 4–7 from the nibbles of bytes 8–11 with the top 2 bits of bytes 0–3 / 4–7 above them).
inline void q4k_scales_mins(const uint8_t* packed, uint8_t (&sc)[16]) {
    uint32_t u[3];
    std::memcpy(u, packed, 12);
    const uint32_t m6 = 0x3F3F3F3Fu, m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
    const uint32_t out[4] = {u[0] & m6, (u[2] & m4) | (((u[0] >> 6) & m2) << 4), u[1] & m6,
                             ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4)};
    std::memcpy(sc, out, 16);
}
// Σ_j mn[j] · (bsums[2j] + bsums[2j + 1]) over the 8 sub-blocks (mn = sc + 8 of q4k_scales_mins).
inline int q4k_min_sum(const uint8_t* mn, const int16_t* bsums) {
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums)),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8)));
    const __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
    __m128i p = _mm_madd_epi16(m, pairs);
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(1, 0, 3, 2)));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(p);
}

// ---- per-type row dots: Σ_i w_i x̂_i over nb blocks ---------------------------------------------------------
// Σ (q − 8)·qa = Σ q·qa − 8·Σ qa: unsigned nibbles straight into maddubs, the offset from the block sum.
template <bool Pf>
float dot_q4_0(const uint8_t* row, const ActQ8x32* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ4_0*>(row);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float offs = 0.f;  // Σ d_w · 8 · d_a·Σqa
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        prefetch_ahead<Pf>(w + i);
        const float d0 = fp16(w[i].d), d1 = fp16(w[i + 1].d);
        const __m256i p0 = dot_u8i8(nibbles32(w[i].qs), load256(a[i].qs));
        const __m256i p1 = dot_u8i8(nibbles32(w[i + 1].qs), load256(a[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a[i].d), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * a[i + 1].d), _mm256_cvtepi32_ps(p1), acc1);
        offs += d0 * a[i].s + d1 * a[i + 1].s;
    }
    for (; i < nb; ++i) {
        const float d0 = fp16(w[i].d);
        const __m256i p = dot_u8i8(nibbles32(w[i].qs), load256(a[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a[i].d), _mm256_cvtepi32_ps(p), acc0);
        offs += d0 * a[i].s;
    }
    return hsum(_mm256_add_ps(acc0, acc1)) - 8.f * offs;
}

template <bool Pf>
float dot_q4_1(const uint8_t* row, const ActQ8x32* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ4_1*>(row);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.f;  // Σ m · Σ x̂ over blocks
    for (int64_t i = 0; i < nb; ++i) {
        if (i % 2 == 0) prefetch_ahead<Pf>(w + i);
        const __m256i p = dot_u8i8(nibbles32(w[i].qs), load256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(w[i].d) * a[i].d), _mm256_cvtepi32_ps(p), acc);
        mins += fp16(w[i].m) * a[i].s;
    }
    return hsum(acc) + mins;
}

template <bool Pf>
float dot_q8_0(const uint8_t* row, const ActQ8x32* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ8_0*>(row);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        prefetch_ahead<Pf>(w + i);
        const __m256i p = dot_i8i8(load256(w[i].qs), load256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(w[i].d) * a[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum(acc);
}

// Q4_K and Q5_K share the scale/min packing: x = d·sc[j]·q − dmin·mn[j] per 32-value sub-block j.
// Σ_i w_i x̂_i = d_a·(d·Σ_j sc[j]·Σ q·qa − dmin·Σ_j mn[j]·Σ qa), Σ qa from the activation's 16-value sums.
template <bool kQ5, bool Pf>
float dot_q45_k(const uint8_t* row, const ActQ8x256* a, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.f;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *scales, *qs, *qh = nullptr;
        uint16_t d16, dmin16;
        if constexpr (kQ5) {
            const auto& b = reinterpret_cast<const gguf::BlockQ5_K*>(row)[i];
            prefetch_block<Pf>(&b);
            scales = b.scales, qs = b.qs, qh = b.qh, d16 = b.d, dmin16 = b.dmin;
        } else {
            const auto& b = reinterpret_cast<const gguf::BlockQ4_K*>(row)[i];
            prefetch_block<Pf>(&b);
            scales = b.scales, qs = b.qs, d16 = b.d, dmin16 = b.dmin;
        }
        uint8_t sc[16];  // scales, then mins
        q4k_scales_mins(scales, sc);
        mins += fp16(dmin16) * a[i].d * static_cast<float>(q4k_min_sum(sc + 8, a[i].bsums));

        const __m256i hbits = kQ5 ? load256(qh) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {  // 64-value chunk c: sub-blocks 2c (low nibbles) and 2c+1 (high)
            const __m256i q4 = load256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            if constexpr (kQ5) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c + 1), one), 4));
            }
            const __m256i plo = _mm256_maddubs_epi16(lo, load256(a[i].qs + 64 * c));
            const __m256i phi = _mm256_maddubs_epi16(hi, load256(a[i].qs + 64 * c + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16(d16) * a[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc) - mins;
}

// A Q6_K block's common start on both paths: prefetch, d = d_w·d_a, and the −32 offset's integer term in 8 int32
// lanes (32 · scales·Σqa over the 16-value groups, Σqa from the activation's 16-value sums, one VPMADDWD) that the
// caller subtracts from its integer sum before the block's one float multiply: no scalar loop per block.
template <bool Pf>
inline float q6k_block_start(const gguf::BlockQ6_K& b, const ActQ8x256& a, __m256i& off) {
    prefetch_block<Pf>(&b);
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    off = _mm256_slli_epi32(_mm256_madd_epi16(s16, load256(a.bsums)), 5);
    return fp16(b.d) * a.d;
}

// Byte shuffles that broadcast int16 scale 2t (low 128-bit lane) and 2t+1 (high lane) of a lane of 8.
const __m256i kQ6ScaleShuffle[4] = {
    _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
    _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
    _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
                     10, 11, 10, 11),
    _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15,
                     14, 15, 14, 15, 14, 15, 14, 15),
};

// Q6_K: x = d·scales[e/16]·(q − 32), q 0..63. Σ scales·(Σ q·qa − 32·Σ qa), Σ qa from the 16-value sums.
template <bool Pf>
float dot_q6_k(const uint8_t* row, const ActQ8x256* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ6_K*>(row);
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < nb; ++i) {
        const gguf::BlockQ6_K& b = w[i];
        __m256i off;
        const float d = q6k_block_start<Pf>(b, a[i], off);
        // The 16 scales as int16, scales 8h..8h+7 in both 128-bit lanes of sc[h]; shuffle t picks scale 8h+2t
        // for the low lane (values 32t..32t+15 of the half) and 8h+2t+1 for the high lane.
        const __m128i s16a = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales)));
        const __m128i s16b = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 8)));
        const __m256i sc[2] = {_mm256_broadcastsi128_si256(s16a), _mm256_broadcastsi128_si256(s16b)};
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), off);
        for (int h = 0; h < 2; ++h) {  // 128-value halves
            const __m256i qh = load256(b.qh + 32 * h);
            const __m256i ql0 = load256(b.ql + 64 * h), ql1 = load256(b.ql + 64 * h + 32);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4)),
            };
            for (int t = 0; t < 4; ++t) {  // values 128h + 32t .. +31: scales 8h+2t (first 16), 8h+2t+1
                const __m256i p = _mm256_maddubs_epi16(q[t], load256(a[i].qs + 128 * h + 32 * t));
                const __m256i s = _mm256_shuffle_epi8(sc[h], kQ6ScaleShuffle[t]);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

// ---- 16-row dots on the repacked layout (ops/cpu/qmm_repack.h) -------------------------------------------------
// y[r] for the 16 rows of one group against one activation row. Per row and block the same integer dot as the
// in-place dots; the float side is one multiply-add per block and row, acc += (d_w·d_a)·Σ: Q4_0 into two
// accumulators (even / odd blocks) added at the end, Q4_K the scale part and the mins part each in one, subtracted
// at the end. The scalar versions (QmmIsa::RepackRef) do exactly the VNNI versions' float operations, so the two
// agree bit for bit. How the group's bytes are prefetched: by the thread's stream, or a fixed distance ahead.
struct GroupPf {
    PrefetchStream* stream;  // advanced by the bytes of each step, or null
    bool self;               // without a stream: prefetch kPrefetchBytes ahead of each step's bytes
};
inline void group_prefetch(const GroupPf& pf, const uint8_t* p, int64_t bytes) {
    if (pf.stream) pf.stream->advance(bytes);
    else if (pf.self)
        for (int64_t l = 0; l < bytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + l + kPrefetchBytes, _MM_HINT_T0);
}
inline float f16_at(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16(h);
}

void q4_0r_group_ref(const uint8_t* grp, const ActQ8x32R* a, int64_t nb, GroupPf pf, float* y) {
    for (int64_t b = 0; b < nb; b += 2) group_prefetch(pf, grp + q4_0r_scales(b), b + 1 < nb ? 576 : 320);
    for (int r = 0; r < kRepackRows; ++r) {
        float acc[2] = {0.f, 0.f};
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* c = grp + q4_0r_codes(b);
            int32_t p = a[b].neg8;
            for (int j = 0; j < kQK; ++j) {
                const uint8_t byte = c[64 * ((j % 16) / 4) + 4 * r + j % 4];
                p += (j < 16 ? byte & 0xF : byte >> 4) * a[b].qs[j];
            }
            const float s = f16_at(grp + q4_0r_scales(b) + 2 * r) * a[b].d;
            acc[b % 2] = std::fma(s, static_cast<float>(p), acc[b % 2]);
        }
        y[r] = acc[0] + acc[1];
    }
}

void q4_kr_group_ref(const uint8_t* grp, const ActQ8x256R* a, int64_t nb, GroupPf pf, float* y) {
    for (int64_t b = 0; b < nb; ++b) group_prefetch(pf, grp + b * kQ4KrBlockBytes, kQ4KrBlockBytes);
    for (int r = 0; r < kRepackRows; ++r) {
        float acc_d = 0.f, acc_m = 0.f;
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = grp + b * kQ4KrBlockBytes;
            uint8_t packed[12], sc[16];
            for (int k = 0; k < 3; ++k) std::memcpy(packed + 4 * k, blk + 64 + 64 * k + 4 * r, 4);
            q4k_scales_mins(packed, sc);
            int32_t s = 0, m = 0;
            for (int j = 0; j < 8; ++j) {
                int32_t p = 0;
                for (int v = 0; v < 32; ++v) {
                    const int c = j / 2, q = v / 4;
                    const uint8_t byte = blk[256 + 512 * c + 64 * q + 4 * r + v % 4];
                    p += (j % 2 ? byte >> 4 : byte & 0xF) * a[b].qs[32 * j + v];
                }
                s += sc[j] * p;
                m += sc[8 + j] * a[b].bsums32[j];
            }
            acc_d = std::fma(f16_at(blk + 2 * r) * a[b].d, static_cast<float>(s), acc_d);
            acc_m = std::fma(f16_at(blk + 32 + 2 * r) * a[b].d, static_cast<float>(m), acc_m);
        }
        y[r] = acc_d - acc_m;
    }
}

// Q6_K: per row and block Σ_j sc_j·(−32·Σqa_j + Σ q·qa) over the 16-value sub-blocks j, the in-place dots' integer.
void q6_kr_group_ref(const uint8_t* grp, const ActQ8x256R6* a, int64_t nb, GroupPf pf, float* y) {
    for (int64_t b = 0; b < nb; ++b) group_prefetch(pf, grp + b * kQ6KrBlockBytes, kQ6KrBlockBytes);
    for (int r = 0; r < kRepackRows; ++r) {
        float acc = 0.f;
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* blk = grp + b * kQ6KrBlockBytes;
            int32_t s = 0;
            for (int j = 0; j < 16; ++j) {
                int32_t p = a[b].neg32[j];
                for (int v = 0; v < 16; ++v) {
                    const int e = 16 * j + v, h = e / 128, t = e % 128 / 32, q = e % 32 / 4, k = e % 4;
                    const uint8_t* st = blk + q6_kr_step(h, q) + 4 * r + k;
                    const uint8_t l = st[t % 2 ? 128 : 64];
                    const int code = (t < 2 ? l & 0xF : l >> 4) | ((st[0] >> (2 * t)) & 3) << 4;
                    p += code * a[b].qs[e];
                }
                s += static_cast<int8_t>(blk[64 + 16 * j + r]) * p;
            }
            acc = std::fma(f16_at(blk + 2 * r) * a[b].d, static_cast<float>(s), acc);
        }
        y[r] = acc;
    }
}

#ifdef AR_QMM_AVX512VNNI
// ---- AVX-512 VNNI dots ---------------------------------------------------------------------------------------
// Each byte's high nibble as a value 0–15: one GF2P8AFFINEQB (bit 4 + k of each byte to bit k) instead of a shift and
// a mask.
inline __m512i hi_nibbles(__m512i v) {
#ifdef __GFNI__
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(0x1020408000000000LL), 0);
#else
    return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
#endif
}
// Four Q4_0 blocks (72 bytes) per step: VPERMT2B gathers their 4 × 16 code bytes into the four 128-bit lanes, the low
// nibbles (codes 0–15 of each block) and high nibbles (16–31) go through two VPDPBUSD against ActQ8x128's matching
// halves, starting from its −8·Σ terms, so lanes 4b..4b+3 hold block b's exact integer dot; the four fp16 scales come
// from the same load by VPERMW (words 0, 9, 18, 27), times the activation scales, into one FMA per four blocks. No
// scalar work per block; a last group of 1–3 blocks loads only its own bytes (the activation's rest is zero).
inline __m512 q4_0_quad_vnni(const uint8_t* wp, int nblk, const ActQ8x128& a, __m512 acc) {
    const __m512i kPerm = _mm512_set_epi8(
        71, 70, 69, 68, 67, 66, 65, 64, 63, 62, 61, 60, 59, 58, 57, 56, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42,
        41, 40, 39, 38, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 17, 16, 15, 14, 13, 12, 11, 10, 9,
        8, 7, 6, 5, 4, 3, 2);
    const __m512i kScaleIdx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 27, 27, 27, 18, 18,
                                               18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    __m512i r0, r1;
    if (nblk == 4) {
        r0 = _mm512_loadu_si512(wp);
        r1 = _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wp + 64)));
    } else {  // 18·nblk <= 54 bytes
        r0 = _mm512_maskz_loadu_epi8((__mmask64(1) << (18 * nblk)) - 1, wp);
        r1 = _mm512_setzero_si512();
    }
    const __m512i q = _mm512_permutex2var_epi8(r0, kPerm, r1);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i p = _mm512_dpbusd_epi32(_mm512_load_si512(a.neg8), _mm512_and_si512(q, m4), _mm512_load_si512(a.lo));
    p = _mm512_dpbusd_epi32(p, hi_nibbles(q), _mm512_load_si512(a.hi));
    const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(kScaleIdx, r0)));
    return _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_load_ps(a.d)), _mm512_cvtepi32_ps(p), acc);
}

template <bool Pf>
float dot_q4_0_vnni(const uint8_t* row, const ActQ8x128* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ4_0*>(row);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        prefetch_ahead<Pf>(w + i);
        prefetch_ahead<Pf>(w + i + 4);
        acc0 = q4_0_quad_vnni(reinterpret_cast<const uint8_t*>(w + i), 4, a[i / 4], acc0);
        acc1 = q4_0_quad_vnni(reinterpret_cast<const uint8_t*>(w + i + 4), 4, a[i / 4 + 1], acc1);
    }
    for (; i < nb; i += 4)
        acc0 = q4_0_quad_vnni(reinterpret_cast<const uint8_t*>(w + i), static_cast<int>(std::min<int64_t>(4, nb - i)),
                              a[i / 4], acc0);
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// Q6_K, 128 values (one half of a block) per step as two 64-value vectors in value order: [ql0 | ql1] & 0x0F with
// qh bits 0–1 / 2–3 above them (values 0–63), [ql0 | ql1] >> 4 with qh bits 4–5 / 6–7 (values 64–127); pair sums
// by VPMADDUBSW, then VPDPWSSD with the int16 scales (each of the 16-value groups in order) into int32.
template <bool Pf>
float dot_q6_k_vnni(const uint8_t* row, const ActQ8x256* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ6_K*>(row);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
#ifdef __GFNI__
    // GF2P8AFFINEQB matrices (byte 7 − i of a lane's matrix selects the input bits of output bit i): qh bits 0–1 (lower
    // 256 bits) / 2–3 (upper) to bits 4–5, and bits 4–5 / 6–7 to bits 4–5; every other output bit zero
    const __m512i qsel_lo = _mm512_set_epi64(0x04080000, 0x04080000, 0x04080000, 0x04080000, 0x01020000, 0x01020000,
                                             0x01020000, 0x01020000);
    const __m512i qsel_hi = _mm512_set_epi64(0x40800000, 0x40800000, 0x40800000, 0x40800000, 0x10200000, 0x10200000,
                                             0x10200000, 0x10200000);
#else
    // per 16-bit element: the qh shift of the lower / upper 256 bits
    const __m512i m2 = _mm512_set1_epi8(3);
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
#endif
    // the scale each int16 pair sum takes
    alignas(64) static const uint16_t kIdx[2][32] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
        {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};
    const __m512i idx_lo = _mm512_load_si512(kIdx[0]), idx_hi = _mm512_load_si512(kIdx[1]);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const gguf::BlockQ6_K& b = w[i];
        __m256i off;
        const float d = q6k_block_start<Pf>(b, a[i], off);
        __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), off));
        for (int h = 0; h < 2; ++h) {
            const __m512i l = _mm512_loadu_si512(b.ql + 64 * h);
            const __m512i qh = _mm512_broadcast_i64x4(load256(b.qh + 32 * h));
#ifdef __GFNI__
            // each 6-bit code in one bit-matrix step per operand: GF2P8AFFINEQB moves the two qh bits of a value to bits
            // 4–5 (a different bit pair in the lower and upper 256 bits, one matrix per 64-bit lane), VPTERNLOG merges
            // them with the low nibble (l & 0x0F | bits), hi_nibbles takes l >> 4
            const __m512i lo = _mm512_ternarylogic_epi32(l, m4, _mm512_gf2p8affine_epi64_epi8(qh, qsel_lo, 0), 0xEA);
            const __m512i hi = _mm512_or_si512(hi_nibbles(l), _mm512_gf2p8affine_epi64_epi8(qh, qsel_hi, 0));
#else
            const __m512i lo = _mm512_or_si512(_mm512_and_si512(l, m4),
                                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_lo), m2), 4));
            const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh_hi), m2), 4));
#endif
            const __m512i s8 = _mm512_zextsi128_si512(
                _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales + 8 * h))));
            const __m512i plo = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(a[i].qs + 128 * h));
            const __m512i phi = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(a[i].qs + 128 * h + 64));
            sumi = _mm512_dpwssd_epi32(sumi, plo, _mm512_permutexvar_epi16(idx_lo, s8));
            sumi = _mm512_dpwssd_epi32(sumi, phi, _mm512_permutexvar_epi16(idx_hi, s8));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
// Q4_K, 128 values per step: [qs chunk c | chunk c + 1] & 0x0F are sub-blocks 2c and 2c + 2, >> 4 sub-blocks 2c + 1
// and 2c + 3; pair sums by VPMADDUBSW against the matching activation halves, then VPDPWSSD with each sub-block's
// 6-bit scale (the activation codes pre-ordered to match, ActQ8x256K); the mins from its 32-value sums in 4 float lanes.
template <bool Pf>
float dot_q4_k_vnni(const uint8_t* row, const ActQ8x256K* a, int64_t nb) {
    const auto* w = reinterpret_cast<const gguf::BlockQ4_K*>(row);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    // The scale of each int16 pair sum: sub-blocks (0, 2), (1, 3), (4, 6), (5, 7) over the two 256-bit halves, by an
    // in-lane byte shuffle (VPSHUFB) of the 8 scale bytes broadcast to every 128-bit lane: scale byte, then a zero
    // byte (index bit 7 set) for each int16 — cheaper than a cross-lane VPERMW and no widening step.
    auto ctrl = [](int a, int b) {
        alignas(64) int8_t t[64];
        for (int k = 0; k < 64; k += 2) t[k] = static_cast<int8_t>(k < 32 ? a : b), t[k + 1] = -128;
        return _mm512_load_si512(t);
    };
    static const __m512i kSel[4] = {ctrl(0, 2), ctrl(1, 3), ctrl(4, 6), ctrl(5, 7)};
    const __m512i sel0 = kSel[0], sel1 = kSel[1], sel2 = kSel[2], sel3 = kSel[3];
    __m512 acc = _mm512_setzero_ps();
    __m128 mins = _mm_setzero_ps();  // Σ over blocks of dmin·d_a·(mn[j]·Σqa_j + mn[j+1]·Σqa_{j+1}) in 4 lanes
    for (int64_t i = 0; i < nb; ++i) {
        const gguf::BlockQ4_K& b = w[i];
        prefetch_block<Pf>(&b);
        alignas(16) uint8_t sc[16];  // scales, then mins
        q4k_scales_mins(b.scales, sc);
        // the mins' integer term in 4 int32 lanes (one VPMADDWD against the 32-value sums), one FMA per block: no
        // horizontal sum or scalar conversion per block
        const __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8)));
        const __m128i pm = _mm_madd_epi16(mn16, _mm_load_si128(reinterpret_cast<const __m128i*>(a[i].bsums32)));
        mins = _mm_fmadd_ps(_mm_set1_ps(fp16(b.dmin) * a[i].d), _mm_cvtepi32_ps(pm), mins);
        const __m512i sc8 = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(sc)));
        const int8_t* x = a[i].qs;  // [codes 0..31, 64..95], [32..63, 96..127], then the same for 128..255
        const __m512i l0 = _mm512_loadu_si512(b.qs), l1 = _mm512_loadu_si512(b.qs + 64);
        // two independent chains (values 0–127, 128–255), added once per block
        __m512i s0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
                                         _mm512_maddubs_epi16(_mm512_and_si512(l0, m4), _mm512_load_si512(x)),
                                         _mm512_shuffle_epi8(sc8, sel0));
        __m512i s1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
                                         _mm512_maddubs_epi16(_mm512_and_si512(l1, m4), _mm512_load_si512(x + 128)),
                                         _mm512_shuffle_epi8(sc8, sel2));
        s0 = _mm512_dpwssd_epi32(s0, _mm512_maddubs_epi16(hi_nibbles(l0), _mm512_load_si512(x + 64)),
                                 _mm512_shuffle_epi8(sc8, sel1));
        s1 = _mm512_dpwssd_epi32(s1, _mm512_maddubs_epi16(hi_nibbles(l1), _mm512_load_si512(x + 192)),
                                 _mm512_shuffle_epi8(sc8, sel3));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(fp16(b.d) * a[i].d), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
    }
    __m128 m = _mm_add_ps(mins, _mm_movehl_ps(mins, mins));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

// The repacked 16-row dots: one int32 lane per row. A 64-byte code vector holds 4 code bytes of each of the 16 rows;
// its low nibbles (AND) and high nibbles (hi_nibbles) go through VPDPBUSD against one 32-bit broadcast of the
// matching 4 activation codes (shared by the 16 rows), so no code is moved and no lane is summed across.
inline __m512i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
// Q4_0: a block's integer dots of the 16 rows, Σ (q − 8)·qa (four independent VPDPBUSD chains of two).
inline __m512i q4_0r_block_vnni(const uint8_t* c, const ActQ8x32R& a) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i w0 = _mm512_load_si512(c), w1 = _mm512_load_si512(c + 64), w2 = _mm512_load_si512(c + 128),
                  w3 = _mm512_load_si512(c + 192);
    __m512i p0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(a.neg8), _mm512_and_si512(w0, m4), bcast4(a.qs));
    __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(w1, m4), bcast4(a.qs + 4));
    __m512i p2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(w2, m4), bcast4(a.qs + 8));
    __m512i p3 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(w3, m4), bcast4(a.qs + 12));
    p0 = _mm512_dpbusd_epi32(p0, hi_nibbles(w0), bcast4(a.qs + 16));
    p1 = _mm512_dpbusd_epi32(p1, hi_nibbles(w1), bcast4(a.qs + 20));
    p2 = _mm512_dpbusd_epi32(p2, hi_nibbles(w2), bcast4(a.qs + 24));
    p3 = _mm512_dpbusd_epi32(p3, hi_nibbles(w3), bcast4(a.qs + 28));
    return _mm512_add_epi32(_mm512_add_epi32(p0, p1), _mm512_add_epi32(p2, p3));
}
// Q4_0, two pairs of blocks per step (1152 bytes, 18 lines: the stream advanced once, the four blocks' integer dots
// first, then their scales), then the last 1–3 blocks by pairs as before. Same float operations in the same order
// as one pair per step (acc0: even blocks, acc1: odd blocks), so the results do not change. Why two pairs: with one
// pair (576 bytes) per step the dot streamed a cold weight at 24–27 GB/s on one Zen 5 core whatever the prefetch
// distance (2048–12288) or hint, and barely faster than with no software prefetch at all (24 GB/s), while the same
// kernel with half its arithmetic removed or reduced to a sum of the loaded vectors was no faster either; with two
// pairs per step 30–31 GB/s in the same minutes (Q4_K's 2304-byte step 28–29), four pairs no better (30–31)
// (bench_quant_matmul --team 1, 2026-11-29). In the 0.6B decode the Q4_0 matmuls' time against the Q6_K head's in
// the same step went from 2.43–2.56× to 2.08–2.17×.
void q4_0r_group_vnni(const uint8_t* grp, const ActQ8x32R* a, int64_t nb, GroupPf pf, float* y) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    auto scales = [&](const uint8_t* u, int64_t b) {  // the 16 rows' d of block b (scale line at u) times a[b].d
        return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(u))),
                             _mm512_set1_ps(a[b].d));
    };
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t* u = grp + q4_0r_scales(b);
        group_prefetch(pf, u, 1152);
        const __m512i i0 = q4_0r_block_vnni(u + 64, a[b]), i1 = q4_0r_block_vnni(u + 320, a[b + 1]),
                      i2 = q4_0r_block_vnni(u + 640, a[b + 2]), i3 = q4_0r_block_vnni(u + 896, a[b + 3]);
        acc0 = _mm512_fmadd_ps(scales(u, b), _mm512_cvtepi32_ps(i0), acc0);
        acc1 = _mm512_fmadd_ps(scales(u + 32, b + 1), _mm512_cvtepi32_ps(i1), acc1);
        acc0 = _mm512_fmadd_ps(scales(u + 576, b + 2), _mm512_cvtepi32_ps(i2), acc0);
        acc1 = _mm512_fmadd_ps(scales(u + 608, b + 3), _mm512_cvtepi32_ps(i3), acc1);
    }
    for (; b < nb; b += 2) {  // 1–3 blocks left: pairs of 576 bytes (320 for a last single block)
        const uint8_t* u = grp + q4_0r_scales(b);
        const bool two = b + 1 < nb;
        group_prefetch(pf, u, two ? 576 : 320);
        acc0 = _mm512_fmadd_ps(scales(u, b), _mm512_cvtepi32_ps(q4_0r_block_vnni(u + 64, a[b])), acc0);
        if (two) acc1 = _mm512_fmadd_ps(scales(u + 32, b + 1), _mm512_cvtepi32_ps(q4_0r_block_vnni(u + 320, a[b + 1])), acc1);
    }
    _mm512_storeu_ps(y, _mm512_add_ps(acc0, acc1));
}
// Q4_K, a block (2304 bytes) per step: the 16 rows' 6-bit scales and mins unpacked from their three u32 words at once
// (the bit operations of q4k_scales_mins, one lane per row), sub-block j's scale to an int32 lane by VPSHUFB, one
// VPMULLD per sub-block; the mins' integer term by four VPDPWSSD of (mn_j, mn_j+1) pairs against the activation's
// 32-value sums.
void q4_kr_group_vnni(const uint8_t* grp, const ActQ8x256R* a, int64_t nb, GroupPf pf, float* y) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m6 = _mm512_set1_epi8(0x3F), m2 = _mm512_set1_epi8(0x03);
    // VPSHUFB controls (byte indices within a 128-bit lane, so dword i of it adds 4i): per 32-bit lane its byte k
    // zero-extended (k = 0..3); its bytes (0, 1) / (2, 3) as int16 pairs
    auto per_dword = [](uint32_t ctrl, uint32_t step) {
        return _mm512_set4_epi32(static_cast<int32_t>(ctrl + 3 * step), static_cast<int32_t>(ctrl + 2 * step),
                                 static_cast<int32_t>(ctrl + step), static_cast<int32_t>(ctrl));
    };
    const __m512i byte_k[4] = {per_dword(0x80808000u, 4), per_dword(0x80808001u, 4), per_dword(0x80808002u, 4),
                               per_dword(0x80808003u, 4)};
    const __m512i pair01 = per_dword(0x80018000u, 0x00040004u), pair23 = per_dword(0x80038002u, 0x00040004u);
    __m512 acc_d = _mm512_setzero_ps(), acc_m = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kQ4KrBlockBytes;
        group_prefetch(pf, blk, kQ4KrBlockBytes);
        const ActQ8x256R& x = a[b];
        const __m512i u0 = _mm512_load_si512(blk + 64), u1 = _mm512_load_si512(blk + 128),
                      u2 = _mm512_load_si512(blk + 192);
        const __m512i sc03 = _mm512_and_si512(u0, m6), mn03 = _mm512_and_si512(u1, m6);
        const __m512i sc47 = _mm512_or_si512(_mm512_and_si512(u2, m4),
                                             _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m2), 4));
        const __m512i mn47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m4),
                                             _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m2), 4));
        __m512i mins = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(mn03, pair01),
                                           bcast4(reinterpret_cast<const int8_t*>(x.bsums32)));
        mins = _mm512_dpwssd_epi32(mins, _mm512_shuffle_epi8(mn03, pair23),
                                   bcast4(reinterpret_cast<const int8_t*>(x.bsums32 + 2)));
        mins = _mm512_dpwssd_epi32(mins, _mm512_shuffle_epi8(mn47, pair01),
                                   bcast4(reinterpret_cast<const int8_t*>(x.bsums32 + 4)));
        mins = _mm512_dpwssd_epi32(mins, _mm512_shuffle_epi8(mn47, pair23),
                                   bcast4(reinterpret_cast<const int8_t*>(x.bsums32 + 6)));
        __m512i sum = _mm512_setzero_si512();
        for (int c = 0; c < 4; ++c) {  // sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles)
            const uint8_t* w = blk + 256 + 512 * c;
            const int8_t* xl = x.qs + 64 * c;
            const int8_t* xh = xl + 32;
            __m512i lo0 = _mm512_setzero_si512(), lo1 = _mm512_setzero_si512(), hi0 = _mm512_setzero_si512(),
                    hi1 = _mm512_setzero_si512();
            for (int q = 0; q < 8; q += 2) {
                const __m512i w0 = _mm512_load_si512(w + 64 * q), w1 = _mm512_load_si512(w + 64 * q + 64);
                lo0 = _mm512_dpbusd_epi32(lo0, _mm512_and_si512(w0, m4), bcast4(xl + 4 * q));
                lo1 = _mm512_dpbusd_epi32(lo1, _mm512_and_si512(w1, m4), bcast4(xl + 4 * q + 4));
                hi0 = _mm512_dpbusd_epi32(hi0, hi_nibbles(w0), bcast4(xh + 4 * q));
                hi1 = _mm512_dpbusd_epi32(hi1, hi_nibbles(w1), bcast4(xh + 4 * q + 4));
            }
            const __m512i sc = c < 2 ? sc03 : sc47;
            sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(_mm512_add_epi32(lo0, lo1),
                                                           _mm512_shuffle_epi8(sc, byte_k[(2 * c) % 4])));
            sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(_mm512_add_epi32(hi0, hi1),
                                                           _mm512_shuffle_epi8(sc, byte_k[(2 * c + 1) % 4])));
        }
        const __m512 da = _mm512_set1_ps(x.d);
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk))), da);
        const __m512 dm =
            _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 32))), da);
        acc_d = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sum), acc_d);
        acc_m = _mm512_fmadd_ps(dm, _mm512_cvtepi32_ps(mins), acc_m);
    }
    _mm512_storeu_ps(y, _mm512_sub_ps(acc_d, acc_m));
}
// Q6_K, a block (3392 bytes) per step; per 64-byte step of the layout (one qh and two ql vectors: 4 values of each of
// the four 32-value quarters t of a 128-value half) the four 6-bit code vectors: t = 0 / 1: the low nibbles of the ql
// vector with qh bits 0–1 / 2–3 moved to bits 4–5; t = 2: the high nibbles with qh bits 4–5 (already in place);
// t = 3: the high nibbles with qh bits 6–7 moved (GF2P8AFFINEQB bit matrices where the build has GFNI, else shifts and
// masks). Four VPDPBUSD chains per quarter of sub-blocks, each starting from the activation's −32·Σ term of its
// sub-block, then one VPMOVSXBD + VPMULLD per sub-block for the 16 rows' int8 scales.
inline __m512i q6_qh_bits(__m512i qh, int t) {  // bits 2t, 2t + 1 of each byte at bits 4–5, the rest zero (t != 2)
#ifdef __GFNI__
    static const int64_t kM[4] = {0x01020000, 0x04080000, 0x10200000, 0x40800000};
    return _mm512_gf2p8affine_epi64_epi8(qh, _mm512_set1_epi64(kM[t]), 0);
#else
    const __m512i m30 = _mm512_set1_epi8(0x30);
    if (t == 0) return _mm512_and_si512(_mm512_slli_epi32(qh, 4), m30);
    if (t == 1) return _mm512_and_si512(_mm512_slli_epi32(qh, 2), m30);
    if (t == 2) return _mm512_and_si512(qh, m30);
    return _mm512_and_si512(_mm512_srli_epi32(qh, 2), m30);
#endif
}
void q6_kr_group_vnni(const uint8_t* grp, const ActQ8x256R6* a, int64_t nb, GroupPf pf, float* y) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = grp + b * kQ6KrBlockBytes;
        group_prefetch(pf, blk, kQ6KrBlockBytes);
        const ActQ8x256R6& x = a[b];
        __m512i sum = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h)
            for (int u = 0; u < 2; ++u) {  // steps q = 4u .. 4u+3: sub-blocks 8h + 2t + u
                const int j0 = 8 * h + u;
                __m512i p0 = _mm512_set1_epi32(x.neg32[j0]), p1 = _mm512_set1_epi32(x.neg32[j0 + 2]),
                        p2 = _mm512_set1_epi32(x.neg32[j0 + 4]), p3 = _mm512_set1_epi32(x.neg32[j0 + 6]);
                for (int q = 4 * u; q < 4 * u + 4; ++q) {
                    const uint8_t* st = blk + q6_kr_step(h, q);
                    const __m512i qh = _mm512_load_si512(st), l0 = _mm512_load_si512(st + 64),
                                  l1 = _mm512_load_si512(st + 128);
                    const int8_t* xq = x.qs + 128 * h + 4 * q;
                    // (l & 0x0F) | bits: VPTERNLOG 0xEA; hi | (qh & 0x30): 0xF8
                    p0 = _mm512_dpbusd_epi32(p0, _mm512_ternarylogic_epi32(l0, m4, q6_qh_bits(qh, 0), 0xEA), bcast4(xq));
                    p1 = _mm512_dpbusd_epi32(p1, _mm512_ternarylogic_epi32(l1, m4, q6_qh_bits(qh, 1), 0xEA),
                                             bcast4(xq + 32));
                    p2 = _mm512_dpbusd_epi32(p2, _mm512_ternarylogic_epi32(hi_nibbles(l0), qh, m30, 0xF8),
                                             bcast4(xq + 64));
                    p3 = _mm512_dpbusd_epi32(p3, _mm512_or_si512(hi_nibbles(l1), q6_qh_bits(qh, 3)), bcast4(xq + 96));
                }
                auto scale = [&](int j) {
                    return _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(blk + 64 + 16 * j)));
                };
                sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_mullo_epi32(p0, scale(j0)),
                                                             _mm512_mullo_epi32(p1, scale(j0 + 2))));
                sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_mullo_epi32(p2, scale(j0 + 4)),
                                                             _mm512_mullo_epi32(p3, scale(j0 + 6))));
            }
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk))),
                                       _mm512_set1_ps(x.d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sum), acc);
    }
    _mm512_storeu_ps(y, acc);
}
#endif  // AR_QMM_AVX512VNNI

// One weight's share of a (grouped) matmul: y[t, o] = w_o · x̂_t (+ bias[o]) for rows [o0, o1), the row dot inlined
// into the row loop (one indirect call per chunk of rows, not per row). run: the dots prefetch a fixed distance ahead
// of themselves; run_pf (the persistent decode team's): the dots do not prefetch, the thread's PrefetchStream is
// advanced by each row's bytes instead (it runs on into the thread's next weight).
struct RowJob {
    const uint8_t* base;
    int64_t rb, nb, out, na, N;  // row bytes, weight blocks per row, rows, activation elements per x row, x rows
    const void* act;             // [N, na] of the dot's activation type
    const float* bias;
    float* y;
    void (*run)(const RowJob&, int64_t o0, int64_t o1);
    void (*run_pf)(const RowJob&, int64_t o0, int64_t o1, PrefetchStream& pf);
    // rows [0, rp->rows) by the 16-row dots on the weight's repacked copy (rp null: none); group(j, g, o0, o1, pf)
    // computes group g and stores its rows in [o0, o1)
    const QmmRepacked* rp;
    const void* ract;  // [N, nb] activation of the repacked dots
    void (*group)(const RowJob&, int64_t g, int64_t o0, int64_t o1, PrefetchStream* pf);
};

template <typename Act, void (*Group)(const uint8_t*, const Act*, int64_t, GroupPf, float*)>
void run_group(const RowJob& j, int64_t g, int64_t o0, int64_t o1, PrefetchStream* pf) {
    const Act* act = static_cast<const Act*>(j.ract);
    const int64_t g0 = g * kRepackRows, r0 = std::max(o0, g0), r1 = std::min(o1, g0 + kRepackRows);
    alignas(64) float y16[kRepackRows];
    for (int64_t t = 0; t < j.N; ++t) {  // the group's bytes are prefetched (or the stream advanced) once
        Group(j.rp->group(g), act + t * j.nb, j.nb, GroupPf{t == 0 ? pf : nullptr, t == 0}, y16);
        for (int64_t o = r0; o < r1; ++o) j.y[t * j.out + o] = y16[o - g0] + (j.bias ? j.bias[o] : 0.f);
    }
}
// Rows [o0, o1) of a job: the repacked groups that hold rows of the range (a group cut by the range is computed
// whole and only its rows in the range stored, so any split gives the same values), then the rows past them.
void run_rows(const RowJob& j, int64_t o0, int64_t o1, PrefetchStream* pf) {
    if (j.rp) {
        const int64_t e = std::min(o1, j.rp->rows);
        for (int64_t g = o0 / kRepackRows; g * kRepackRows < e; ++g) j.group(j, g, o0, e, pf);
        o0 = std::max(o0, j.rp->rows);
    }
    if (o0 >= o1) return;
    if (pf) j.run_pf(j, o0, o1, *pf);
    else j.run(j, o0, o1);
}

template <typename Act, float (*Dot)(const uint8_t*, const Act*, int64_t)>
inline void row_dots(const RowJob& j, const Act* act, int64_t o) {
    const uint8_t* row = j.base + o * j.rb;
    for (int64_t t = 0; t < j.N; ++t) j.y[t * j.out + o] = Dot(row, act + t * j.na, j.nb) + (j.bias ? j.bias[o] : 0.f);
}
template <typename Act, float (*Dot)(const uint8_t*, const Act*, int64_t)>
void run_chunk(const RowJob& j, int64_t o0, int64_t o1) {
    const Act* act = static_cast<const Act*>(j.act);
    for (int64_t o = o0; o < o1; ++o) row_dots<Act, Dot>(j, act, o);
}
template <typename Act, float (*Dot)(const uint8_t*, const Act*, int64_t)>
void run_chunk_pf(const RowJob& j, int64_t o0, int64_t o1, PrefetchStream& pf) {
    const Act* act = static_cast<const Act*>(j.act);
    for (int64_t o = o0; o < o1; ++o) {
        pf.advance(j.rb);
        row_dots<Act, Dot>(j, act, o);
    }
}

// x [N, in] quantized at most once per activation layout, whichever weights of a group need it. reset() starts a new
// x and keeps the buffers (the decode team calls it once per matmul per thread).
class ActCache {
public:
    ActCache() = default;
    ActCache(const float* x, int64_t N, int64_t in) { reset(x, N, in); }
    void reset(const float* x, int64_t N, int64_t in) {
        x_ = x, N_ = N, in_ = in;
        for (bool& f : fresh_) f = false;
    }
    template <typename Act>
    const Act* get() {
        std::vector<Act>& v = store<Act>();
        bool& fresh = fresh_[slot<Act>()];
        if (!fresh) {
            const int64_t na = act_count(static_cast<const Act*>(nullptr), in_);
            v.resize(static_cast<size_t>(N_ * na));
            for (int64_t t = 0; t < N_; ++t) quantize_act(x_ + t * in_, in_, v.data() + t * na);
            fresh = true;
        }
        return v.data();
    }

private:
    template <typename Act>
    static constexpr int slot() {
        if constexpr (std::is_same_v<Act, ActQ8x32>) return 0;
        else if constexpr (std::is_same_v<Act, ActQ8x256>) return 1;
        else if constexpr (std::is_same_v<Act, ActQ8x32R>) return 4;
        else if constexpr (std::is_same_v<Act, ActQ8x256R>) return 5;
        else if constexpr (std::is_same_v<Act, ActQ8x256R6>) return 6;
#ifdef AR_QMM_AVX512VNNI
        else if constexpr (std::is_same_v<Act, ActQ8x128>) return 2;
        else if constexpr (std::is_same_v<Act, ActQ8x256K>) return 3;
#endif
        else static_assert(sizeof(Act) == 0, "no activation store for this type");
    }
    template <typename Act>
    std::vector<Act>& store() {
        if constexpr (std::is_same_v<Act, ActQ8x32>) return a32_;
        else if constexpr (std::is_same_v<Act, ActQ8x256>) return a256_;
        else if constexpr (std::is_same_v<Act, ActQ8x32R>) return a32r_;
        else if constexpr (std::is_same_v<Act, ActQ8x256R>) return a256r_;
        else if constexpr (std::is_same_v<Act, ActQ8x256R6>) return a256r6_;
#ifdef AR_QMM_AVX512VNNI
        else if constexpr (std::is_same_v<Act, ActQ8x128>) return a128_;
        else if constexpr (std::is_same_v<Act, ActQ8x256K>) return a256k_;
#endif
        else static_assert(sizeof(Act) == 0, "no activation store for this type");
    }
    const float* x_ = nullptr;
    int64_t N_ = 0, in_ = 0;
    bool fresh_[7] = {};
    std::vector<ActQ8x32> a32_;
    std::vector<ActQ8x256> a256_;
    std::vector<ActQ8x32R> a32r_;
    std::vector<ActQ8x256R> a256r_;
    std::vector<ActQ8x256R6> a256r6_;
#ifdef AR_QMM_AVX512VNNI
    std::vector<ActQ8x128> a128_;
    std::vector<ActQ8x256K> a256k_;
#endif
};

template <typename Act, float (*Dot)(const uint8_t*, const Act*, int64_t),
          float (*DotNoPf)(const uint8_t*, const Act*, int64_t)>
RowJob job(const WeightView& w, int64_t N, ActCache& acts, const float* bias, float* y) {
    return RowJob{static_cast<const uint8_t*>(w.data), w.row_bytes(), w.in / gguf::block_elems(*w.block), w.out,
                  act_count(static_cast<const Act*>(nullptr), w.in), N, acts.get<Act>(), bias, y,
                  run_chunk<Act, Dot>, run_chunk_pf<Act, DotNoPf>, nullptr, nullptr, nullptr};
}
#define AR_QMM_JOB(Act, dot) job<Act, dot<true>, dot<false>>(w, N, acts, bias, y)
#define AR_QMM_JOB_K(Act, q5) job<Act, dot_q45_k<q5, true>, dot_q45_k<q5, false>>(w, N, acts, bias, y)

RowJob make_inplace_job(const WeightView& w, int64_t N, ActCache& acts, const float* bias, float* y, QmmIsa isa) {
    (void)isa;
    switch (*w.block) {
        case BlockType::Q4_0:
#ifdef AR_QMM_AVX512VNNI
            if (isa == QmmIsa::Best) return AR_QMM_JOB(ActQ8x128, dot_q4_0_vnni);
#endif
            return AR_QMM_JOB(ActQ8x32, dot_q4_0);
        case BlockType::Q6_K:
#ifdef AR_QMM_AVX512VNNI
            if (isa == QmmIsa::Best) return AR_QMM_JOB(ActQ8x256, dot_q6_k_vnni);
#endif
            return AR_QMM_JOB(ActQ8x256, dot_q6_k);
        case BlockType::Q4_1: return AR_QMM_JOB(ActQ8x32, dot_q4_1);
        case BlockType::Q8_0: return AR_QMM_JOB(ActQ8x32, dot_q8_0);
        case BlockType::Q4_K:
#ifdef AR_QMM_AVX512VNNI
            if (isa == QmmIsa::Best) return AR_QMM_JOB(ActQ8x256K, dot_q4_k_vnni);
#endif
            return AR_QMM_JOB_K(ActQ8x256, false);
        case BlockType::Q5_K: return AR_QMM_JOB_K(ActQ8x256, true);
        default: fail("quant_matmul_q8: unsupported block type ", gguf::block_type_name(*w.block));
    }
}
#undef AR_QMM_JOB
#undef AR_QMM_JOB_K

// A weight's job: its repacked rows by the 16-row dots where it has a repacked copy and isa takes it, the other
// rows (all of them without a copy) by the in-place dots (Best's for RepackRef).
RowJob make_job(const WeightView& w, int64_t N, ActCache& acts, const float* bias, float* y, QmmIsa isa) {
    const QmmIsa inplace = isa == QmmIsa::RepackRef ? QmmIsa::Best : isa;
    if (!uses_repacked(w, isa)) return make_inplace_job(w, N, acts, bias, y, inplace);
    const QmmRepacked& R = *w.repacked;
    RowJob j = R.rows < w.out ? make_inplace_job(w, N, acts, bias, y, inplace)
                              : RowJob{static_cast<const uint8_t*>(w.data), w.row_bytes(), R.nb, w.out, 0, N, nullptr,
                                       bias, y, nullptr, nullptr, nullptr, nullptr, nullptr};
    j.rp = &R;
    const bool ref = isa == QmmIsa::RepackRef;
    if (*w.block == BlockType::Q4_0) {
        j.ract = acts.get<ActQ8x32R>();
        j.group = run_group<ActQ8x32R, q4_0r_group_ref>;
#ifdef AR_QMM_AVX512VNNI
        if (!ref) j.group = run_group<ActQ8x32R, q4_0r_group_vnni>;
#endif
    } else if (*w.block == BlockType::Q6_K) {
        j.ract = acts.get<ActQ8x256R6>();
        j.group = run_group<ActQ8x256R6, q6_kr_group_ref>;
#ifdef AR_QMM_AVX512VNNI
        if (!ref) j.group = run_group<ActQ8x256R6, q6_kr_group_vnni>;
#endif
    } else {
        j.ract = acts.get<ActQ8x256R>();
        j.group = run_group<ActQ8x256R, q4_kr_group_ref>;
#ifdef AR_QMM_AVX512VNNI
        if (!ref) j.group = run_group<ActQ8x256R, q4_kr_group_vnni>;
#endif
    }
    (void)ref;
    return j;
}

// All jobs' rows in one parallel region: dynamic chunks of rows (about 8 per thread and weight), so a thread that
// loses its core to another process does not hold up the others at the join; `nowait` lets a thread that runs out
// of one weight's chunks go on to the next weight's, so a group pays one fork/join.
// Groups of fewer than 2^16 weights (summed) run on the calling thread.
void run_jobs(const RowJob* jobs, int n, int64_t weights) {
    const int threads = omp_get_max_threads();
#pragma omp parallel if (weights >= (1 << 16))
    for (int i = 0; i < n; ++i) {
        const RowJob& j = jobs[i];
        int64_t chunk = std::max<int64_t>(8, j.out / (8 * threads));
        if (j.rp) chunk = (chunk + kRepackRows - 1) / kRepackRows * kRepackRows;  // whole repacked groups
        const int64_t nc = (j.out + chunk - 1) / chunk;
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t c = 0; c < nc; ++c) run_rows(j, c * chunk, std::min(j.out, (c + 1) * chunk), nullptr);
    }
}

}  // namespace
#endif  // AR_QMM_AVX2

namespace {
void check_packed(const WeightView& w) {
    check(w.packed(), "quant_matmul_q8: weight is not packed");
    check(w.in % gguf::block_elems(*w.block) == 0, "quant_matmul_q8: row of ", w.in, " values is not whole ",
          gguf::block_type_name(*w.block), " blocks");
}
}  // namespace

void quant_matmul_q8(const float* x, int64_t N, const WeightView& w, const float* bias, float* y, QmmIsa isa) {
    const QmmOut one{&w, bias, y};
    quant_matmul_q8_group(x, N, std::span<const QmmOut>(&one, 1), isa);
}

void quant_matmul_q8_group(const float* x, int64_t N, std::span<const QmmOut> outs, QmmIsa isa) {
    check(!outs.empty() && outs.size() <= 8, "quant_matmul_q8_group: 1 to 8 weights, got ", outs.size());
    for (const QmmOut& o : outs) {
        check_packed(*o.w);
        check(o.w->in == outs[0].w->in, "quant_matmul_q8_group: weights read ", o.w->in, " and ", outs[0].w->in,
              " values: a group shares one input");
    }
#ifdef AR_QMM_AVX2
    ActCache acts(x, N, outs[0].w->in);
    RowJob jobs[8];
    int64_t weights = 0;
    for (size_t i = 0; i < outs.size(); ++i) {
        jobs[i] = make_job(*outs[i].w, N, acts, outs[i].bias, outs[i].y, isa);
        weights += outs[i].w->out * outs[i].w->in;
    }
    run_jobs(jobs, static_cast<int>(outs.size()), weights);
#else
    (void)isa;
    for (const QmmOut& o : outs) quant_matmul_ref(x, N, *o.w, o.bias, o.y);
#endif
}

// ---- persistent-team parts -----------------------------------------------------------------------------------
struct QmmScratch::Impl {
#ifdef AR_QMM_AVX2
    ActCache acts;
#endif
    std::vector<float> row;  // the reference path's dequantized row
};
QmmScratch::QmmScratch() : impl_(std::make_unique<Impl>()) {}
QmmScratch::~QmmScratch() = default;
QmmScratch::QmmScratch(QmmScratch&&) noexcept = default;
QmmScratch& QmmScratch::operator=(QmmScratch&&) noexcept = default;

void check_qmm_parts(std::span<const QmmPart> parts) {
    check(!parts.empty(), "quant_matmul_q8_part: no weights");
    for (const QmmPart& p : parts) {
        check_packed(*p.w);
        check(p.w->in == parts[0].w->in, "quant_matmul_q8_part: weights read ", p.w->in, " and ", parts[0].w->in,
              " values: a group shares one input");
        check(0 <= p.r0 && p.r0 <= p.r1 && p.r1 <= p.w->out, "quant_matmul_q8_part: rows [", p.r0, ", ", p.r1,
              ") of a weight of ", p.w->out);
    }
}

void quant_matmul_q8_part(const float* x, int64_t N, std::span<const QmmPart> parts, QmmScratch& scratch,
                          PrefetchStream* pf, QmmIsa isa) noexcept {
    if (parts.empty()) return;
#ifdef AR_QMM_AVX2
    ActCache& acts = scratch.impl_->acts;
    acts.reset(x, N, parts[0].w->in);
    for (const QmmPart& p : parts) {
        if (p.r1 <= p.r0) continue;
        const RowJob j = make_job(*p.w, N, acts, p.bias, p.y, isa);
        run_rows(j, p.r0, p.r1, pf);
    }
#else
    (void)isa;
    std::vector<float>& row = scratch.impl_->row;
    for (const QmmPart& p : parts) {
        const WeightView& w = *p.w;
        row.resize(static_cast<size_t>(w.in));
        for (int64_t o = p.r0; o < p.r1; ++o) {
            if (pf) pf->advance(w.row_bytes());
            gguf::dequantize_row(*w.block, w.packed_row(o), w.in, row.data());
            for (int64_t t = 0; t < N; ++t) {
                float acc = 0.f;
                for (int64_t i = 0; i < w.in; ++i) acc += x[t * w.in + i] * row[i];
                p.y[t * w.out + o] = acc + (p.bias ? p.bias[o] : 0.f);
            }
        }
    }
#endif
}

}  // namespace autoround
