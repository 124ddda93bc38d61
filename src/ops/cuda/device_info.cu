// ops/cuda/device_info.cu — see device_info.h (CUDA build).
#include "ops/cuda/device_info.h"

#include <cuda_runtime.h>

#include <atomic>

#include "ops/cuda/cuda_check.h"

namespace autoround {
namespace {
__global__ void code_arch_probe_kernel() {}  // device_code_sm(): never launched

__global__ void code_arch_report_kernel(int* out) {  // device_code_sm_launched(): __CUDA_ARCH__ as compiled
#ifdef __CUDA_ARCH__
    *out = __CUDA_ARCH__ / 10;
#endif
}
}  // namespace

int device_code_sm() {
    static std::atomic<int> cache[64];  // per device: 0 unknown, else the SM version
    int dev = 0;
    AR_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < 64) {
        const int v = cache[dev].load(std::memory_order_relaxed);
        if (v) return v;
    }
    // ptxVersion: the virtual architecture the code was generated for, i.e. its __CUDA_ARCH__ (what decides the
    // code compiled under `#if __CUDA_ARCH__ >= 900`). Not binaryVersion: PTX of compute_80 JIT-compiled on a Hopper
    // GPU gives an sm_90 binary whose sm_90-only parts were compiled out.
    cudaFuncAttributes fa{};
    AR_CUDA_CHECK(cudaFuncGetAttributes(&fa, code_arch_probe_kernel));
    const int sm = fa.ptxVersion > 0 ? fa.ptxVersion : fa.binaryVersion;
    if (dev < 64) cache[dev].store(sm, std::memory_order_relaxed);
    return sm;
}

int device_code_sm_launched() {
    int* d = nullptr;
    AR_CUDA_CHECK(cudaMalloc(&d, sizeof(int)));
    int v = 0;
    AR_CUDA_CHECK(cudaMemset(d, 0, sizeof(int)));
    code_arch_report_kernel<<<1, 1>>>(d);
    const cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) AR_CUDA_CHECK(cudaMemcpy(&v, d, sizeof(int), cudaMemcpyDeviceToHost));
    cudaFree(d);
    AR_CUDA_CHECK(e);
    return v;
}

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
