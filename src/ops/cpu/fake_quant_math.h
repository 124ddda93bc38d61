// ops/cpu/fake_quant_math.h — the scalar steps PyTorch's fake quantization is made of, shared by the int kinds
// (fake_quant.cpp) and the GGUF double-quant kinds (fake_quant_dq.cpp) so both round exactly alike: the fp16 /
// bf16 casts (round to nearest even through float32), the [0, 1] clamp of α / β, and rint (half to even).
#pragma once

#include <algorithm>
#include <cmath>

#include "core/bf16.h"

namespace autoround::fq {

template <typename T>
T cast_fp16(T v) {
    return static_cast<T>(fp16_to_float(float_to_fp16(static_cast<float>(v))));
}

template <typename T>
T cast_bf16(T v) {
    return static_cast<T>(round_to_bf16(static_cast<float>(v)));
}

template <typename T>
T clamp01(T v) {
    return std::min(std::max(v, T(0)), T(1));
}

template <typename T>
T rint_even(T v) {
    return std::nearbyint(v);  // default rounding mode: to nearest, ties to even
}

}  // namespace autoround::fq
