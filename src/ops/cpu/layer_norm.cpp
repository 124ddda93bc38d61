// ops/cpu/layer_norm.cpp — see layer_norm.h. The arithmetic lives once, in layer_norm_grad.cpp's training
// forward (two-pass mean/variance in double, float32 output); inference calls it without saving mean/rstd.
#include "ops/cpu/layer_norm.h"

#include "ops/cpu/layer_norm_grad.h"

namespace autoround {

void layer_norm(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y) {
    layer_norm_forward_train<float>(x, w, b, rows, dim, eps, y, nullptr, nullptr);
}

}  // namespace autoround
