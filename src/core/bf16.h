// core/bf16.h — bfloat16 / float16 <-> float32 conversions (scalar, exact, round-to-nearest-even).
//
// bf16 is the upper half of an IEEE float32; converting to float is a shift. Converting from
// float rounds to nearest even and keeps NaN a (quiet) NaN, as PyTorch does.
#pragma once

#include <cstdint>
#include <cstring>

namespace autoround {

inline float bf16_to_float(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

// Rounds a float to the nearest bf16-representable float.
inline float round_to_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

inline float fp16_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
            mant &= 0x3ffu;
            u = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline uint16_t float_to_fp16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00u;           // NaN
    if (abs >= 0x477ff000u) return sign | 0x7c00u;          // overflow -> inf (>= 65520)
    if (abs < 0x38800000u) {                                // subnormal or zero in fp16
        if (abs < 0x33000000u) return sign;                 // < 2^-25 rounds to 0
        // value = m * 2^(e-150); in units of the fp16 subnormal step 2^-24 that is m >> (126 - e)
        const uint32_t e = abs >> 23;
        const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e;  // 14..24
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) ++q;  // round to nearest even
        return static_cast<uint16_t>(sign | q);
    }
    uint32_t v = abs + 0xc8000000u;  // rebias exponent: (e - 112) << 23
    v += 0xfffu + ((v >> 13) & 1u);
    return static_cast<uint16_t>(sign | (v >> 13));
}

}  // namespace autoround
