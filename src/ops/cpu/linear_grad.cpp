// ops/cpu/linear_grad.cpp — see linear_grad.h.
#include "ops/cpu/linear_grad.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "core/error.h"

namespace autoround {
namespace {

void blas_single_thread_once() {
    static const bool done = [] {
        openblas_set_num_threads(1);  // the OpenMP threads split the work (same policy as linear.cpp)
        return true;
    }();
    (void)done;
}

void call_blas(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}
void call_blas(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda, const double* B,
               int ldb, double beta, double* C, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

int to_int(int64_t v, const char* what) {
    check(v >= 0 && v <= INT32_MAX, "gemm: ", what, " = ", v, " does not fit a BLAS int");
    return static_cast<int>(v);
}

}  // namespace

template <typename T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                 int64_t ldb, T beta, T* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {  // BLAS would do this too, but some builds reject K = 0 with lda checks
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
        return;
    }
    blas_single_thread_once();
    call_blas(ta, tb, to_int(M, "M"), to_int(N, "N"), to_int(K, "K"), alpha, A, to_int(lda, "lda"), B,
              to_int(ldb, "ldb"), beta, C, to_int(ldc, "ldc"));
}

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const double flops = double(M) * double(N) * double(K);
    if (nt <= 1 || flops < 4e6) {
        gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // Slabs of rows of C when there are enough rows, else slabs of columns; ~4 slabs per thread.
    const bool split_rows = M >= N || M >= 64 * nt;
    const int64_t dim = split_rows ? M : N;
    const int64_t align = 16;
    int64_t chunk = std::max<int64_t>(align, (dim + 4 * nt - 1) / (4 * nt));
    chunk = (chunk + align - 1) / align * align;
    const int64_t nchunks = (dim + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; ++c) {
        const int64_t a0 = c * chunk, n = std::min(chunk, dim - a0);
        if (split_rows) {
            const T* Ap = ta ? A + a0 : A + a0 * lda;  // op(A) rows a0.. : stored columns (ta) or rows
            gemm_serial(ta, tb, n, N, K, alpha, Ap, lda, B, ldb, beta, C + a0 * ldc, ldc);
        } else {
            const T* Bp = tb ? B + a0 * ldb : B + a0;  // op(B) columns a0.. : stored rows (tb) or columns
            gemm_serial(ta, tb, M, n, K, alpha, A, lda, Bp, ldb, beta, C + a0, ldc);
        }
    }
}

template <typename T>
void linear_forward(const T* x, int64_t rows, const T* W, int64_t out, int64_t in, const T* bias, T* y) {
    gemm<T>(false, true, rows, out, in, T(1), x, in, W, in, T(0), y, out);
    if (bias) {
#pragma omp parallel for schedule(static) if (rows * out > 65536)
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t o = 0; o < out; ++o) y[r * out + o] += bias[o];
    }
}

template <typename T>
void linear_backward_weight(const T* dy, const T* x, int64_t rows, int64_t out, int64_t in, T* dW, bool accumulate) {
    gemm<T>(true, false, out, in, rows, T(1), dy, out, x, in, accumulate ? T(1) : T(0), dW, in);
}

template <typename T>
void linear_backward_input(const T* dy, const T* W, int64_t rows, int64_t out, int64_t in, T* dx, bool accumulate) {
    gemm<T>(false, false, rows, in, out, T(1), dy, out, W, in, accumulate ? T(1) : T(0), dx, in);
}

#define AR_INSTANTIATE(T)                                                                                            \
    template void gemm_serial<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, \
                                 T*, int64_t);                                                                      \
    template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,    \
                          int64_t);                                                                                 \
    template void linear_forward<T>(const T*, int64_t, const T*, int64_t, int64_t, const T*, T*);                   \
    template void linear_backward_weight<T>(const T*, const T*, int64_t, int64_t, int64_t, T*, bool);               \
    template void linear_backward_input<T>(const T*, const T*, int64_t, int64_t, int64_t, T*, bool);
AR_INSTANTIATE(float)
AR_INSTANTIATE(double)
#undef AR_INSTANTIATE

}  // namespace autoround
