// ops/cpu/no_cuda_device_info.cpp — the CPU-only build's answer to ops/cuda/device_info.h: no devices.
#ifndef AUTOROUND_HAVE_CUDA
#include "ops/cuda/device_info.h"

namespace autoround {
std::vector<CudaDeviceInfo> cuda_list_devices() { return {}; }
bool cuda_available() { return false; }
int64_t cuda_memory_used() { return 0; }
int device_code_sm() { return 0; }
int device_code_sm_launched() { return 0; }
}  // namespace autoround
#endif
