// tests/core/test_bf16.cpp — bf16/fp16 conversions against exhaustive round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/bf16.h"

using namespace autoround;

TEST(Bf16, RoundTripAllBf16Values) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = bf16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        EXPECT_EQ(float_to_bf16(f), h);
    }
}

TEST(Bf16, RoundsToNearestEven) {
    // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (1.0).
    EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
    // 1 + 3*2^-8 is halfway between 1+2^-7 and 1+2^-6: ties to even (1+2^-6).
    EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST(Fp16, RoundTripAllFp16Values) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        EXPECT_EQ(float_to_fp16(f), h) << "h=" << h;
    }
}

TEST(Fp16, RoundsToNearestEvenIncludingSubnormals) {
    // Reference: for each pair of neighbouring fp16 values, the midpoint ties to the even one and
    // points just above/below go to the nearer one.
    for (uint32_t h = 0; h < 0x7bff; ++h) {
        const double a = fp16_to_float(static_cast<uint16_t>(h));
        const double b = fp16_to_float(static_cast<uint16_t>(h + 1));
        const float mid = static_cast<float>((a + b) / 2);
        if (static_cast<double>(mid) != (a + b) / 2) continue;
        const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
        EXPECT_EQ(float_to_fp16(mid), even) << "h=" << h;
        EXPECT_EQ(float_to_fp16(std::nextafter(mid, -1.0f)), h) << "h=" << h;
        EXPECT_EQ(float_to_fp16(std::nextafter(mid, 1e9f)), h + 1) << "h=" << h;
    }
    EXPECT_EQ(float_to_fp16(70000.0f), 0x7c00);
    EXPECT_EQ(float_to_fp16(-70000.0f), 0xfc00);
}
