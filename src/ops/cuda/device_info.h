// ops/cuda/device_info.h — which CUDA devices this process can use (empty without a GPU or
// without a CUDA build). Plain C++ header so CPU-only code can call it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace autoround {

struct CudaDeviceInfo {
    int index = 0;
    std::string name;
    int sm_major = 0, sm_minor = 0;
    int64_t total_memory = 0;   // bytes
    int multiprocessors = 0;
};

// Lists devices; returns an empty list (never throws) when no driver or GPU is present.
std::vector<CudaDeviceInfo> cuda_list_devices();
bool cuda_available();
// Bytes of the current device's memory in use by anyone (total − free, cudaMemGetInfo); 0 without a GPU.
int64_t cuda_memory_used();
// The SM version (e.g. 90) this library's kernel code that runs on the current device was compiled for, i.e. its
// __CUDA_ARCH__ / 10: the best-matching cubin's, or that of the PTX the driver JIT-compiled (every kernel of the
// library is built for the same architectures; a binary built only for sm_80 also runs on a Hopper GPU, through
// the compute_80 PTX, and then reports 80). From cudaFuncGetAttributes (safe during stream capture); cached per
// device. 0 without CUDA.
int device_code_sm();
// The same read from a kernel launched now (it writes its __CUDA_ARCH__): the test of device_code_sm(). Synchronous;
// not for use inside a stream capture. 0 without CUDA.
int device_code_sm_launched();

}  // namespace autoround
