// export/gguf_blocks.h — THE one definition of the llama.cpp GGUF block layouts autoround.cpp reads or
// writes: Q4_0, Q4_1, Q8_0 (32 weights per block), Q4_K, Q5_K, Q6_K (256 per super-block), with their
// dequantization, plus the reference quantizers that reproduce llama.cpp's `*_ref` routines bit for bit
// (docs/checkpoint-formats.md §5.4 layouts, §5.5 quantizers; ggml-common.h / ggml-quants.c). Q5_K is not in
// the doc: it is Q4_K with 5-bit codes (make_qkx2_quants nmax 31, rmin -0.5, 15 steps) whose fifth bits
// live in qh[32]; q4_k_s files need it (llama-quantize promotes the first attn_v / ffn_down to Q5_K).
//
// Why one file: the GGUF writer (export/gguf_export.cpp), the GGUF loader (model/gguf_checkpoint.cpp) and
// later the CUDA dequant kernels must agree on every bit. The part above "host only" is plain C++17 with
// only <cstdint> (structs + host/device inline functions, as export/pack_layout.h), so a .cu file can
// include it; the row-level quantizers/dequantizers are defined in gguf_blocks.cpp.
//
// Layouts (all fields little-endian, structs packed; d, dmin, m are IEEE fp16 bit patterns):
//   Q4_0 (18 B / 32):  d | qs[16]      element j (0..15) = low nibble of qs[j], j+16 = high nibble;
//                      x = d * (nibble - 8)
//   Q4_1 (20 B / 32):  d | m | qs[16]  same nibbles; x = d * nibble + m
//   Q8_0 (34 B / 32):  d | int8 qs[32]; x = d * qs[j]
//   Q4_K (144 B / 256): d | dmin | scales[12] | qs[128]; 8 sub-blocks of 32 with 6-bit scale sc[j] and
//                      6-bit min mn[j] packed in scales[] (see q4k_get_scale_min); chunk c (64 elements):
//                      qs[32c + l] low nibble = element 64c + l, high nibble = element 64c + 32 + l;
//                      x = d*sc[j]*q - dmin*mn[j], j = element / 32
//   Q5_K (176 B / 256): d | dmin | scales[12] | qh[32] | qs[128]; scales and nibbles as Q4_K; element
//                      64c + l (c = 0..3, l < 32) adds 16 when qh[l] bit 2c is set, 64c + 32 + l when bit
//                      2c+1 is set; x = d*sc[j]*q - dmin*mn[j] with q in 0..31
//   Q6_K (210 B / 256): ql[128] | qh[64] | int8 scales[16] | d; element e: h = e/128, r = e%128, t = r/32,
//                      l = r%32; low 4 bits in ql[64h + l + 32*(t&1)] (low nibble for t < 2, high for t >= 2),
//                      high 2 bits = (qh[32h + l] >> 2t) & 3; x = d * scales[e/16] * (q - 32)
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define AR_GGUF_HD __host__ __device__ __forceinline__
#else
#define AR_GGUF_HD inline
#endif

namespace autoround::gguf {

constexpr int kQK = 32;    // weights per Q4_0 / Q4_1 / Q8_0 block
constexpr int kQKK = 256;  // weights per K-quant super-block

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK / 2];
};
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK];
};
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[kQKK / 8];
    uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
    uint8_t ql[kQKK / 2];
    uint8_t qh[kQKK / 4];
    int8_t scales[kQKK / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block must be 18 bytes");
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block must be 20 bytes");
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block must be 34 bytes");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block must be 144 bytes");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block must be 176 bytes");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block must be 210 bytes");

// ---- fp16 (IEEE binary16) -> float, exact (host and device) -------------------------------------------
AR_GGUF_HD float f32_from_bits(uint32_t u) {
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}
AR_GGUF_HD float fp16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    if (exp == 0) {  // zero / subnormal: mant * 2^-24, exact in float
        const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

// ---- Q4_0 / Q4_1 / Q8_0: element access ------------------------------------------------------------------
// Nibble of element j (0..31) in a 16-byte qs array: j < 16 low nibble of qs[j], else high nibble of qs[j-16].
AR_GGUF_HD uint8_t q4_nibble(const uint8_t* qs, int j) {
    return j < 16 ? static_cast<uint8_t>(qs[j] & 0xF) : static_cast<uint8_t>(qs[j - 16] >> 4);
}

AR_GGUF_HD void dequant_q4_0(const BlockQ4_0& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>((b.qs[j] & 0xF) - 8) * d;
        y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
}
AR_GGUF_HD void dequant_q4_1(const BlockQ4_1& b, float* y) {
    const float d = fp16_to_f32(b.d), m = fp16_to_f32(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>(b.qs[j] & 0xF) * d + m;
        y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
}
AR_GGUF_HD void dequant_q8_0(const BlockQ8_0& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

// ---- Q4_K ------------------------------------------------------------------------------------------------
// 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes (ggml's get_scale_min_k4).
AR_GGUF_HD void q4k_get_scale_min(int j, const uint8_t* s, uint8_t& sc, uint8_t& mn) {
    if (j < 4) {
        sc = s[j] & 63;
        mn = s[j + 4] & 63;
    } else {
        sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}
// Packs 8 six-bit scales and mins (each < 64) into the 12 bytes (inverse of q4k_get_scale_min).
AR_GGUF_HD void q4k_pack_scale_min(const uint8_t* sc, const uint8_t* mn, uint8_t* s) {
    for (int j = 0; j < 12; ++j) s[j] = 0;
    for (int j = 0; j < 8; ++j) {
        const uint8_t ls = sc[j] & 63, lm = mn[j] & 63;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
            s[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
            s[j] |= static_cast<uint8_t>((lm >> 4) << 6);
        }
    }
}
// 4-bit code of element e (0..255).
AR_GGUF_HD uint8_t q4k_code(const BlockQ4_K& b, int e) {
    const int c = e / 64, r = e % 64;
    const uint8_t byte = b.qs[32 * c + (r % 32)];
    return r < 32 ? static_cast<uint8_t>(byte & 0xF) : static_cast<uint8_t>(byte >> 4);
}
AR_GGUF_HD void dequant_q4_k(const BlockQ4_K& b, float* y) {
    const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < kQKK; j += 64) {
        uint8_t sc, mn;
        q4k_get_scale_min(j / 32, b.scales, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        q4k_get_scale_min(j / 32 + 1, b.scales, sc, mn);
        const float d2 = d * sc, m2 = dmin * mn;
        for (int l = 0; l < 32; ++l) y[j + l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
        q += 32;
    }
}

// ---- Q5_K ------------------------------------------------------------------------------------------------
// 5-bit code of element e (0..255).
AR_GGUF_HD uint8_t q5k_code(const BlockQ5_K& b, int e) {
    const int c = e / 64, r = e % 64, l = r % 32;
    const uint8_t byte = b.qs[32 * c + l];
    const uint8_t lo = r < 32 ? static_cast<uint8_t>(byte & 0xF) : static_cast<uint8_t>(byte >> 4);
    const int bit = 2 * c + (r < 32 ? 0 : 1);
    return static_cast<uint8_t>(lo | (((b.qh[l] >> bit) & 1) << 4));
}
// Packs 256 codes (0..31) into qs/qh (inverse of q5k_code).
AR_GGUF_HD void q5k_pack_codes(const uint8_t* L, BlockQ5_K& b) {
    for (int j = 0; j < kQKK / 8; ++j) b.qh[j] = 0;
    uint8_t m1 = 1, m2 = 2;
    uint8_t* ql = b.qs;
    for (int n = 0; n < kQKK; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                b.qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                b.qh[j] |= m2;
            }
            ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
        m1 = static_cast<uint8_t>(m1 << 2);
        m2 = static_cast<uint8_t>(m2 << 2);
        ql += 32;
    }
}
AR_GGUF_HD void dequant_q5_k(const BlockQ5_K& b, float* y) {
    const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
    for (int j = 0; j < kQKK; j += 64) {
        uint8_t sc, mn;
        q4k_get_scale_min(j / 32, b.scales, sc, mn);
        const float d1 = d * sc, m1 = dmin * mn;
        q4k_get_scale_min(j / 32 + 1, b.scales, sc, mn);
        const float d2 = d * sc, m2 = dmin * mn;
        for (int l = 0; l < 32; ++l) y[j + l] = d1 * static_cast<float>(q5k_code(b, j + l)) - m1;
        for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * static_cast<float>(q5k_code(b, j + 32 + l)) - m2;
    }
}

// ---- Q6_K ------------------------------------------------------------------------------------------------
// 6-bit code (0..63) of element e (0..255).
AR_GGUF_HD uint8_t q6k_code(const BlockQ6_K& b, int e) {
    const int h = e / 128, r = e % 128, t = r / 32, l = r % 32;
    const uint8_t lo_byte = b.ql[64 * h + l + ((t & 1) ? 32 : 0)];
    const uint8_t lo = t < 2 ? static_cast<uint8_t>(lo_byte & 0xF) : static_cast<uint8_t>(lo_byte >> 4);
    const uint8_t hi = static_cast<uint8_t>((b.qh[32 * h + l] >> (2 * t)) & 3);
    return static_cast<uint8_t>(lo | (hi << 4));
}
// Packs 256 codes (0..63) into ql/qh (inverse of q6k_code); scales and d are set by the caller.
AR_GGUF_HD void q6k_pack_codes(const uint8_t* L, BlockQ6_K& b) {
    uint8_t* ql = b.ql;
    uint8_t* qh = b.qh;
    for (int j = 0; j < kQKK; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF,
                          q4 = L[j + l + 96] & 0xF;
            ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
            ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
            qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                         ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}
AR_GGUF_HD void dequant_q6_k(const BlockQ6_K& b, float* y) {
    const float d = fp16_to_f32(b.d);
    for (int e = 0; e < kQKK; ++e)
        y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(static_cast<int>(q6k_code(b, e)) - 32);
}

}  // namespace autoround::gguf

// ---- host only: row-level reference quantizers and dequantizers (gguf_blocks.cpp) ------------------------
#if !defined(__CUDACC__)
#include <span>
#include <string>
#include <vector>

namespace autoround::gguf {

// ggml type ids handled here (values as in io/gguf.h GgmlType).
enum class BlockType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30 };

bool is_supported(uint32_t ggml_type);           // one of BlockType
int64_t block_elems(BlockType t);                // 1, 32 or 256
int64_t block_bytes(BlockType t);
int64_t row_bytes(BlockType t, int64_t n);       // n must be a multiple of block_elems
std::string_view block_type_name(BlockType t);   // "Q4_K", ...

// llama.cpp's nearest_int: round half to even via the 1.5*2^23 trick (|v| <= 4194303).
int nearest_int(float v);

// Reference quantizers (llama.cpp quantize_row_*_ref, no importance matrix), bit-exact. `x` has n values,
// n a multiple of the block size; `out` receives row_bytes(type, n) bytes. F32/F16/BF16 convert with
// round-to-nearest-even.
void quantize_row(BlockType t, const float* x, int64_t n, uint8_t* out);
// Dequantizes n values of a row of `t` (inverse of the layouts above; exact float32 products).
void dequantize_row(BlockType t, const uint8_t* in, int64_t n, float* y);

// Single-block reference quantizers (exposed for tests and for callers that build blocks themselves).
void quantize_block_q4_0(const float* x, BlockQ4_0& y);
void quantize_block_q4_1(const float* x, BlockQ4_1& y);
void quantize_block_q8_0(const float* x, BlockQ8_0& y);
void quantize_block_q4_k(const float* x, BlockQ4_K& y);
void quantize_block_q5_k(const float* x, BlockQ5_K& y);
void quantize_block_q6_k(const float* x, BlockQ6_K& y);

}  // namespace autoround::gguf
#endif
