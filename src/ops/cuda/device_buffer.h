// ops/cuda/device_buffer.h — an owned device array (cudaMalloc / cudaFree) for the GPU runtime's and the GPU tuner's
// buffers, and the allocation that fails with a message a user can act on.
//
// Why one type: the decoder (ops/cuda/decoder_runtime.cu) and the block engine (ops/cuda/block_engine.cu) each
// allocate dozens of buffers; both need move-only ownership, exact or grow-only allocation, uploads, and an
// out-of-memory error that says which buffer, how much it needed, how much was free and what to change — the advice
// differs (inference: a shorter context or a quantized model; tuning: --low_gpu_mem_usage or a smaller batch), so
// it is a type parameter: a struct with `static constexpr const char* advice`.
// CUDA builds only (included from .cu files).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"

namespace autoround {

inline std::string device_mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// cudaMalloc of `bytes` (null for 0); out of memory: "out of GPU memory: <what> needs N MiB but only F of T MiB are
// free (<CUDA error>); <advice>".
inline void* device_alloc_or_fail(size_t bytes, const char* what, const char* advice) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        fail("out of GPU memory: ", what, " needs ", device_mib(bytes), " but only ", device_mib(free_b), " of ",
             device_mib(total_b), " are free (", cudaGetErrorString(e), "); ", advice);
    }
    return p;
}

// n elements of T in use, cap allocated. Move-only; freed on destruction.
template <typename T, typename Oom>
struct DeviceBuffer {
    T* p = nullptr;
    size_t n = 0, cap = 0;
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept
        : p(std::exchange(o.p, nullptr)), n(std::exchange(o.n, 0)), cap(std::exchange(o.cap, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release();
            p = std::exchange(o.p, nullptr);
            n = std::exchange(o.n, 0);
            cap = std::exchange(o.cap, 0);
        }
        return *this;
    }
    ~DeviceBuffer() { release(); }
    void release() noexcept {
        if (p) cudaFree(p);
        p = nullptr;
        n = cap = 0;
    }
    // Exactly `count` elements (contents dropped; reallocated unless the size is already count).
    void alloc(size_t count, const char* what) {
        if (count != cap) {
            release();
            p = static_cast<T*>(device_alloc_or_fail(count * sizeof(T), what, Oom::advice));
            cap = count;
        }
        n = count;
    }
    // At least `count` elements: reallocated (contents dropped) only when the buffer is smaller.
    void ensure(size_t count, const char* what) {
        if (count > cap) alloc(count, what);
        n = count;
    }
    // ensure(count), then the host array copied in with a plain cudaMemcpy on the legacy default stream (callers
    // synchronise the device before a kernel on another stream reads it).
    void upload(const T* host, size_t count, const char* what) {
        ensure(count, what);
        if (count) AR_CUDA_CHECK(cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice));
    }
    size_t bytes() const { return n * sizeof(T); }
};

}  // namespace autoround
