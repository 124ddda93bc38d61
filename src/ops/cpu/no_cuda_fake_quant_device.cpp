// ops/cpu/no_cuda_fake_quant_device.cpp — the CPU-only build's ops/cuda/fake_quant_device.h: every entry
// point says that this build has no CUDA.
#ifndef AUTOROUND_HAVE_CUDA
#include "ops/cuda/fake_quant_device.h"

#include "core/error.h"

namespace autoround {

namespace {
[[noreturn]] void no_cuda() {
    fail("on-device fake quantization needs a CUDA build (cmake -DAUTOROUND_CUDA=ON); this autoround has none");
}
}  // namespace

void fake_quant_device_forward(const FakeQuantDeviceLayer&, float*, uint16_t*, CUstream_st*) { no_cuda(); }
void fake_quant_device_backward_step(const FakeQuantDeviceLayer&, const float*, float, float, float*, float*, float*,
                                     CUstream_st*, const float*, float*, uint16_t*, bool) {
    no_cuda();
}
FakeQuantDeviceResult fake_quant_device_run(const FakeQuantTensors<float>&, const FakeQuantShape&,
                                            const FakeQuantConfig&, bool, const std::vector<float>&, float, float,
                                            bool) {
    no_cuda();
}
FakeQuantDeviceFusedCheck fake_quant_device_fused_check(const FakeQuantTensors<float>&, const FakeQuantShape&,
                                                        const FakeQuantConfig&, bool, const std::vector<float>&, float,
                                                        float) {
    no_cuda();
}

}  // namespace autoround
#endif
