// ops/cpu/linear_grad.h — dense float32/float64 matrix products for training the decoder block:
// the Linear forward on float32 (fake-quantized) weights and its two gradients, via BLAS.
//
// Why not ops/cpu/linear.h: that one reads 16-bit checkpoint weights for inference; the tuner's
// weights change every iteration (fake quantization) and are plain float32 (or float64 in the
// gradient checks), and it also needs dW = dYᵀ·X and dX = dY·W.
//
// All matrices are row-major. BLAS runs single-threaded (as linear.cpp sets it); the products are
// split into row or column slabs over the OpenMP threads.
#pragma once

#include <cstdint>

namespace autoround {

// C[M, N] = alpha · op(A) · op(B) + beta · C, op(A) [M, K], op(B) [K, N]; ta/tb: A/B stored transposed.
// Leading dimensions are the row strides of the stored matrices. float → sgemm, double → dgemm.
// gemm_serial makes one BLAS call (for use inside parallel regions); gemm splits over threads.
template <typename T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc);
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// y [rows, out] = x [rows, in] · Wᵀ (+ bias [out]); W [out, in].
template <typename T>
void linear_forward(const T* x, int64_t rows, const T* W, int64_t out, int64_t in, const T* bias, T* y);

// dW [out, in] = dyᵀ · x  (dy [rows, out], x [rows, in]); accumulate: dW += instead of =.
template <typename T>
void linear_backward_weight(const T* dy, const T* x, int64_t rows, int64_t out, int64_t in, T* dW, bool accumulate);

// dx [rows, in] = dy [rows, out] · W [out, in]; accumulate: dx += instead of =.
template <typename T>
void linear_backward_input(const T* dy, const T* W, int64_t rows, int64_t out, int64_t in, T* dx, bool accumulate);

}  // namespace autoround
