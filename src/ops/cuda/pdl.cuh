// ops/cuda/pdl.cuh — programmatic dependent launch (PDL, Hopper): a kernel of the decode chain may start while the
// kernel before it drains, do the work that does not depend on it (the GEMVs issue their first weight loads), and
// wait for it (griddepcontrol.wait) before it reads that kernel's outputs or writes anything.
//
// Why: a decode step is ~250 small kernels; each one's ramp (launch, first loads from device memory) used to start
// only after the previous one had fully finished. With PDL the ramp overlaps the previous kernel's tail.
//
// Contract for a kernel launched with launch_pdl: it calls pdl_wait() before its first read of data another kernel
// writes and before its first global write (so the chain stays ordered: a kernel completes only after the one
// before it completed), and may call pdl_trigger() to let the next kernel launch early. Both are no-ops when the
// kernel was launched normally and before sm_90. AUTOROUND_NO_PDL=1 launches normally (A/B measurements).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device_info.h"

namespace autoround {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether the kernels that run on the current device were compiled for sm_90 or newer — what PDL and thread-block
// clusters need: a binary built only for sm_80 also runs on a Hopper GPU, with griddepcontrol compiled out.
inline bool device_runs_sm90_code() { return device_code_sm() >= 90; }

// Whether the current device takes PDL launches (its kernel code is sm_90+, not disabled by AUTOROUND_NO_PDL=1).
inline bool pdl_enabled() {
    static const bool disabled = [] {
        const char* e = std::getenv("AUTOROUND_NO_PDL");
        return e && e[0] == '1';
    }();
    return !disabled && device_runs_sm90_code();
}

// kernel<<<grid, block, smem, stream>>>(args...), with programmatic stream serialization where pdl_enabled(), in
// thread-block clusters of cluster_x CTAs along x when cluster_x > 1 (sm_90 and newer only; grid.x a multiple of it).
template <typename... KArgs, typename... Args>
void launch_pdl_cluster(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        unsigned cluster_x, Args&&... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[2];
    unsigned n = 0;
    if (pdl_enabled()) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n].val.programmaticStreamSerializationAllowed = 1;
        ++n;
    }
    if (cluster_x > 1) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = cluster_x;
        attr[n].val.clusterDim.y = 1;
        attr[n].val.clusterDim.z = 1;
        ++n;
    }
    cfg.attrs = attr;
    cfg.numAttrs = n;
    AR_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

// kernel<<<grid, block, smem, stream>>>(args...), with programmatic stream serialization where pdl_enabled().
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
    launch_pdl_cluster(kernel, grid, block, smem, stream, 1u, std::forward<Args>(args)...);
}

}  // namespace autoround
