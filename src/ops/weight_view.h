// ops/weight_view.h — a non-owning view of a 2-D weight matrix [out, in] as stored in a checkpoint
// (row-major, PyTorch nn.Linear layout). The linear ops read bf16/f16/f32 rows directly, so the
// mmap'd checkpoint is used in place without a float32 copy of the whole model.
#pragma once

#include <cstdint>

#include "io/safetensors.h"

namespace autoround {

struct WeightView {
    DType dtype = DType::F32;   // BF16, F16 or F32
    const void* data = nullptr; // [out, in] row-major
    int64_t out = 0;            // rows
    int64_t in = 0;             // columns

    const uint16_t* u16_row(int64_t r) const { return static_cast<const uint16_t*>(data) + r * in; }
    const float* f32_row(int64_t r) const { return static_cast<const float*>(data) + r * in; }
};

// Converts row r of w to float32 (len w.in).
void weight_row_to_f32(const WeightView& w, int64_t r, float* dst);

}  // namespace autoround
