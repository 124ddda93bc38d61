// ops/cuda/flash_attention_common.cuh — device helpers shared by the two flash-attention kernel families
// (flash_attention.cu: mma.sync; flash_attention_sm90.cu: wgmma): the cp.async copies of row tiles into shared memory
// (each kernel gives its own shared-memory address of a 16-byte chunk: padded rows, or the swizzled wgmma layout), the
// backward's walk over (query head, query tile) steps, and the small PTX wrappers both use.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace autoround::fa_detail {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// 16-byte global → shared copy; !valid zero-fills the destination (src must still be a mapped address).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {  // all but the newest N groups of this thread complete
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ float fast_exp2(float x) {  // 2^x; 2^-inf = 0
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Rows row0 .. row0 + rows − 1 (D = 8·cpr bf16 each, row stride ld elements) of one array, or of two that share the
// row layout (K and V, Q and dO), into shared memory by the CTA's `threads` threads: chunk cc of tile row r goes to
// dst(r, cc) bytes past a_smem (and past b_smem: the same offset); rows ≥ L are zero-filled.
template <bool kTwo, typename Dst>
__device__ __forceinline__ void load_rows_async_impl(const __nv_bfloat16* a, uint32_t a_smem, const __nv_bfloat16* b,
                                                     uint32_t b_smem, int64_t ld, int row0, int rows, int cpr, int L,
                                                     int tid, int threads, Dst dst) {
    for (int c = tid; c < rows * cpr; c += threads) {
        const int r = c / cpr, cc = c % cpr, row = row0 + r;
        const bool ok = row < L;
        const int64_t off = int64_t(ok ? row : 0) * ld + cc * 8;
        const uint32_t so = dst(r, cc);
        cp_async16(a_smem + so, a + off, ok);
        if constexpr (kTwo) cp_async16(b_smem + so, b + off, ok);
    }
}
template <typename Dst>
__device__ __forceinline__ void load_rows_async(const __nv_bfloat16* a, uint32_t a_smem, int64_t ld, int row0, int rows,
                                                int cpr, int L, int tid, int threads, Dst dst) {
    load_rows_async_impl<false>(a, a_smem, nullptr, 0, ld, row0, rows, cpr, L, tid, threads, dst);
}
template <typename Dst>
__device__ __forceinline__ void load_rows_async(const __nv_bfloat16* a, uint32_t a_smem, const __nv_bfloat16* b,
                                                uint32_t b_smem, int64_t ld, int row0, int rows, int cpr, int L,
                                                int tid, int threads, Dst dst) {
    load_rows_async_impl<true>(a, a_smem, b, b_smem, ld, row0, rows, cpr, L, tid, threads, dst);
}

// The backward's steps for the CTA of keys k0 ..: every query tile of br rows at or after k0, for each of the r query
// heads of the kv group (head-major), so a CTA sums its dK, dV over all of them in registers.
struct BwdSteps {
    int qb0, per_head, n_steps;
    __device__ BwdSteps(int L, int k0, int br, int r) {
        const int nqb = (L + br - 1) / br;
        qb0 = k0 / br;          // first query tile that sees a key of this CTA
        per_head = nqb - qb0;   // query tiles qb0 .. nqb − 1
        n_steps = r * per_head;
    }
    __device__ int head(int st, int g, int r) const { return g * r + st / per_head; }
    __device__ int row0(int st, int br) const { return (qb0 + st % per_head) * br; }
};

// lse and Δ of the rows row0 .. row0 + br − 1 of head h (threads 0 .. 2·br − 1 copy one float each; rows ≥ L zero).
__device__ __forceinline__ void load_row_stats_async(const float* lse, const float* delta, int64_t head_off, int row0,
                                                     int br, int L, int tid, uint32_t l_smem, uint32_t d_smem) {
    if (tid < 2 * br) {
        const int rr = tid % br, row = row0 + rr;
        const bool ok = row < L;
        const int64_t off = head_off + (ok ? row : 0);
        if (tid < br)
            cp_async4(l_smem + 4 * rr, lse + off, ok);
        else
            cp_async4(d_smem + 4 * rr, delta + off, ok);
    }
}

}  // namespace autoround::fa_detail
