// ops/cuda/device_info.cu — see device_info.h (CUDA build).
#include "ops/cuda/device_info.h"

#include <cuda_runtime.h>

namespace autoround {

std::vector<CudaDeviceInfo> cuda_list_devices() {
    std::vector<CudaDeviceInfo> out;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver/device" error
        return out;
    }
    for (int i = 0; i < n; ++i) {
        cudaDeviceProp p{};
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        out.push_back({i, p.name, p.major, p.minor, static_cast<int64_t>(p.totalGlobalMem), p.multiProcessorCount});
    }
    return out;
}

bool cuda_available() { return !cuda_list_devices().empty(); }

int64_t cuda_memory_used() {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return static_cast<int64_t>(total_b - free_b);
}

}  // namespace autoround
