// export/gguf_blocks.cpp — llama.cpp's reference quantizers (quantize_row_{q4_0,q4_1,q8_0,q4_K,q5_K,q6_K}_ref,
// with make_qkx2_quants / make_qx_quants) and the row dequantizers, following docs/checkpoint-formats.md
// §5.5 statement by statement: float32 arithmetic, sums accumulated in index order, nearest_int = ties to
// even, roundf = ties away from zero, (int8_t) casts truncate, fp16 stores are round-to-nearest-even.
//
// Floating-point contraction is switched off for this file: ggml's C reference is compiled without FMA
// contraction (GCC, ISO C mode), and an a*b+c fused here would change low bits of the search and thus
// codes. Nothing in here may be reordered for speed without breaking bit-exactness.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "export/gguf_blocks.h"

#include <cmath>
#include <cstring>

#include "core/bf16.h"
#include "core/error.h"

namespace autoround::gguf {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

uint16_t fp16(float v) { return float_to_fp16(v); }

// (int8_t) cast of a float in C: truncation toward zero (values here are always in range).
int trunc_to_int8(float v) { return static_cast<int8_t>(static_cast<int>(v)); }

// make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad = false).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        const float w = weights[i];
        best_error += w * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = std::max(0, std::min(nmax, l));
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                const float w = weights[i];
                cur_error += w * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): weights x^2.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = std::max(-nmax, std::min(nmax - 1, l));
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = std::max(-nmax, std::min(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

}  // namespace

int nearest_int(float fval) {
    const float val = fval + 12582912.f;
    int i;
    std::memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

// ---- single blocks ----------------------------------------------------------------------------------------

void quantize_block_q4_0(const float* x, BlockQ4_0& y) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
        const float v = x[j];
        if (amax < std::fabs(v)) {
            amax = std::fabs(v);
            max = v;
        }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y.d = fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
        const float x0 = x[j] * id;
        const float x1 = x[kQK / 2 + j] * id;
        const int xi0 = std::min(15, trunc_to_int8(x0 + 8.5f));
        const int xi1 = std::min(15, trunc_to_int8(x1 + 8.5f));
        y.qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
}

void quantize_block_q4_1(const float* x, BlockQ4_1& y) {
    float min = 3.402823466e+38f, max = -3.402823466e+38f;
    for (int j = 0; j < kQK; ++j) {
        const float v = x[j];
        if (v < min) min = v;
        if (v > max) max = v;
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y.d = fp16(d);
    y.m = fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
        const float x0 = (x[j] - min) * id;
        const float x1 = (x[kQK / 2 + j] - min) * id;
        const int xi0 = std::min(15, trunc_to_int8(x0 + 0.5f));
        const int xi1 = std::min(15, trunc_to_int8(x1 + 0.5f));
        y.qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
}

void quantize_block_q8_0(const float* x, BlockQ8_0& y) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y.d = fp16(d);
    for (int j = 0; j < kQK; ++j) y.qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
}

namespace {
// quantize_row_q{4,5}_K_ref for one super-block: per-32 weighted scale+min search (weights av_x + |x|),
// 6-bit double quantization of scales and mins, requantization with the fp16-rounded d / dmin.
// Writes the 12 scale bytes, d, dmin and the 256 codes L (0..nmax); the caller packs L.
void quantize_k_scale_min(const float* x, int nmax, float rmin, int nstep, uint8_t* scales12, uint16_t& d_out,
                          uint16_t& dmin_out, uint8_t* L) {
    uint8_t Laux[32];
    float weights[32];
    float mins[kQKK / 32];
    float scales[kQKK / 32];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQKK / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        const float scale = scales[j];
        if (scale > max_scale) max_scale = scale;
        const float min = mins[j];
        if (min > max_min) max_min = min;
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t sc[8], mn[8];
    for (int j = 0; j < kQKK / 32; ++j) {
        const uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));  // (uint8_t) as ggml: wraps
        const uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
        sc[j] = std::min<uint8_t>(63, ls);
        mn[j] = std::min<uint8_t>(63, lm);
    }
    q4k_pack_scale_min(sc, mn, scales12);
    d_out = fp16(max_scale / 63.f);
    dmin_out = fp16(max_min / 63.f);
    for (int j = 0; j < kQKK / 32; ++j) {
        uint8_t s, m;
        q4k_get_scale_min(j, scales12, s, m);
        const float d = fp16_to_f32(d_out) * s;
        if (!d) continue;
        const float dm = fp16_to_f32(dmin_out) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            l = std::max(0, std::min(nmax, l));
            L[32 * j + ii] = static_cast<uint8_t>(l);
        }
    }
}
}  // namespace

void quantize_block_q4_k(const float* x, BlockQ4_K& y) {
    uint8_t L[kQKK];
    quantize_k_scale_min(x, 15, -1.f, 20, y.scales, y.d, y.dmin, L);
    uint8_t* q = y.qs;
    for (int j = 0; j < kQKK; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

void quantize_block_q5_k(const float* x, BlockQ5_K& y) {
    uint8_t L[kQKK];
    quantize_k_scale_min(x, 31, -0.5f, 15, y.scales, y.d, y.dmin, L);
    q5k_pack_codes(L, y);
}

void quantize_block_q6_k(const float* x, BlockQ6_K& y) {
    int8_t L[kQKK];
    float scales[kQKK / 16];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQKK / 16; ++ib) {
        const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
        scales[ib] = scale;
        const float abs_scale = std::fabs(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < kGroupMaxEps) {
        std::memset(&y, 0, sizeof y);
        y.d = fp16(0.f);
        return;
    }
    const float iscale = -128.f / max_scale;
    y.d = fp16(1 / iscale);
    for (int ib = 0; ib < kQKK / 16; ++ib) y.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < kQKK / 16; ++j) {
        const float d = fp16_to_f32(y.d) * y.scales[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            int l = nearest_int(x[16 * j + ii] / d);
            l = std::max(-32, std::min(31, l));
            L[16 * j + ii] = static_cast<int8_t>(l + 32);
        }
    }
    uint8_t codes[kQKK];
    for (int e = 0; e < kQKK; ++e) codes[e] = static_cast<uint8_t>(L[e]);
    q6k_pack_codes(codes, y);
}

// ---- rows -------------------------------------------------------------------------------------------------

bool is_supported(uint32_t t) {
    switch (static_cast<BlockType>(t)) {
        case BlockType::F32: case BlockType::F16: case BlockType::BF16: case BlockType::Q4_0: case BlockType::Q4_1:
        case BlockType::Q8_0: case BlockType::Q4_K: case BlockType::Q5_K: case BlockType::Q6_K: return true;
    }
    return false;
}

int64_t block_elems(BlockType t) {
    switch (t) {
        case BlockType::F32: case BlockType::F16: case BlockType::BF16: return 1;
        case BlockType::Q4_0: case BlockType::Q4_1: case BlockType::Q8_0: return kQK;
        case BlockType::Q4_K: case BlockType::Q5_K: case BlockType::Q6_K: return kQKK;
    }
    fail("gguf: unsupported block type ", static_cast<uint32_t>(t));
}

int64_t block_bytes(BlockType t) {
    switch (t) {
        case BlockType::F32: return 4;
        case BlockType::F16: case BlockType::BF16: return 2;
        case BlockType::Q4_0: return sizeof(BlockQ4_0);
        case BlockType::Q4_1: return sizeof(BlockQ4_1);
        case BlockType::Q8_0: return sizeof(BlockQ8_0);
        case BlockType::Q4_K: return sizeof(BlockQ4_K);
        case BlockType::Q5_K: return sizeof(BlockQ5_K);
        case BlockType::Q6_K: return sizeof(BlockQ6_K);
    }
    fail("gguf: unsupported block type ", static_cast<uint32_t>(t));
}

int64_t row_bytes(BlockType t, int64_t n) {
    const int64_t be = block_elems(t);
    check(n % be == 0, "gguf: a row of ", n, " values is not a whole number of ", block_type_name(t), " blocks (", be, ")");
    return n / be * block_bytes(t);
}

std::string_view block_type_name(BlockType t) {
    switch (t) {
        case BlockType::F32: return "F32";
        case BlockType::F16: return "F16";
        case BlockType::BF16: return "BF16";
        case BlockType::Q4_0: return "Q4_0";
        case BlockType::Q4_1: return "Q4_1";
        case BlockType::Q8_0: return "Q8_0";
        case BlockType::Q4_K: return "Q4_K";
        case BlockType::Q5_K: return "Q5_K";
        case BlockType::Q6_K: return "Q6_K";
    }
    return "?";
}

namespace {
template <typename Block, typename Fn>
void each_block(const float* x, int64_t n, uint8_t* out, int64_t qk, Fn fn) {
    for (int64_t b = 0; b < n / qk; ++b) {
        Block blk;
        fn(x + b * qk, blk);
        std::memcpy(out + b * static_cast<int64_t>(sizeof(Block)), &blk, sizeof(Block));
    }
}
template <typename Block, typename Fn>
void each_block_dq(const uint8_t* in, int64_t n, float* y, int64_t qk, Fn fn) {
    for (int64_t b = 0; b < n / qk; ++b) {
        Block blk;
        std::memcpy(&blk, in + b * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
        fn(blk, y + b * qk);
    }
}
}  // namespace

void quantize_row(BlockType t, const float* x, int64_t n, uint8_t* out) {
    (void)row_bytes(t, n);  // validates n
    switch (t) {
        case BlockType::F32: std::memcpy(out, x, static_cast<size_t>(n) * 4); return;
        case BlockType::F16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = float_to_fp16(x[i]);
                std::memcpy(out + 2 * i, &h, 2);
            }
            return;
        case BlockType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = float_to_bf16(x[i]);
                std::memcpy(out + 2 * i, &h, 2);
            }
            return;
        case BlockType::Q4_0: each_block<BlockQ4_0>(x, n, out, kQK, quantize_block_q4_0); return;
        case BlockType::Q4_1: each_block<BlockQ4_1>(x, n, out, kQK, quantize_block_q4_1); return;
        case BlockType::Q8_0: each_block<BlockQ8_0>(x, n, out, kQK, quantize_block_q8_0); return;
        case BlockType::Q4_K: each_block<BlockQ4_K>(x, n, out, kQKK, quantize_block_q4_k); return;
        case BlockType::Q5_K: each_block<BlockQ5_K>(x, n, out, kQKK, quantize_block_q5_k); return;
        case BlockType::Q6_K: each_block<BlockQ6_K>(x, n, out, kQKK, quantize_block_q6_k); return;
    }
}

void dequantize_row(BlockType t, const uint8_t* in, int64_t n, float* y) {
    (void)row_bytes(t, n);
    switch (t) {
        case BlockType::F32: std::memcpy(y, in, static_cast<size_t>(n) * 4); return;
        case BlockType::F16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, in + 2 * i, 2);
                y[i] = fp16_to_float(h);
            }
            return;
        case BlockType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, in + 2 * i, 2);
                y[i] = bf16_to_float(h);
            }
            return;
        case BlockType::Q4_0: each_block_dq<BlockQ4_0>(in, n, y, kQK, [](const BlockQ4_0& b, float* o) { dequant_q4_0(b, o); }); return;
        case BlockType::Q4_1: each_block_dq<BlockQ4_1>(in, n, y, kQK, [](const BlockQ4_1& b, float* o) { dequant_q4_1(b, o); }); return;
        case BlockType::Q8_0: each_block_dq<BlockQ8_0>(in, n, y, kQK, [](const BlockQ8_0& b, float* o) { dequant_q8_0(b, o); }); return;
        case BlockType::Q4_K: each_block_dq<BlockQ4_K>(in, n, y, kQKK, [](const BlockQ4_K& b, float* o) { dequant_q4_k(b, o); }); return;
        case BlockType::Q5_K: each_block_dq<BlockQ5_K>(in, n, y, kQKK, [](const BlockQ5_K& b, float* o) { dequant_q5_k(b, o); }); return;
        case BlockType::Q6_K: each_block_dq<BlockQ6_K>(in, n, y, kQKK, [](const BlockQ6_K& b, float* o) { dequant_q6_k(b, o); }); return;
    }
}

}  // namespace autoround::gguf
