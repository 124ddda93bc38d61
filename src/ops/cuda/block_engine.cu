// ops/cuda/block_engine.cu — see block_engine.h. Kernels for the element-wise and row-wise parts of a
// Qwen3 block (RMSNorm, RoPE, SwiGLU, causal softmax, masked MSE) and the cuBLAS GEMM plumbing; the math of
// every kernel is the float32 formula of its CPU counterpart in ops/cpu/*_grad.h.
#include "ops/cuda/block_engine.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "ops/cpu/rope_grad.h"
#include "ops/cuda/cuda_check.h"

#define AR_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        const cublasStatus_t ar_st_ = (call);                                                      \
        if (ar_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
            ::autoround::fail("cuBLAS error ", static_cast<int>(ar_st_), " in ", #call, " at ", __FILE__, ":", \
                              __LINE__);                                                          \
    } while (0)

namespace autoround {
namespace {

constexpr int kThreads = 256;

// ---- device buffers -----------------------------------------------------------------------------------------

template <typename T>
struct DevBuf {
    T* p = nullptr;
    size_t n = 0;
    DevBuf() = default;
    DevBuf(const DevBuf&) = delete;
    DevBuf& operator=(const DevBuf&) = delete;
    ~DevBuf() {
        if (p) cudaFree(p);
    }
    void alloc(size_t count, const char* what) {
        if (count <= n) return;
        if (p) cudaFree(p);
        p = nullptr;
        n = 0;
        const cudaError_t e = cudaMalloc(&p, count * sizeof(T));
        if (e != cudaSuccess)
            fail("CUDA: cannot allocate ", count * sizeof(T) / 1048576.0, " MiB for ", what, " (", cudaGetErrorString(e),
                 "); use a smaller --batch_size, --seqlen or --nsamples");
        n = count;
    }
    void upload(const T* host, size_t count, const char* what) {
        alloc(count, what);
        AR_CUDA_CHECK(cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice));
    }
};

// ---- GEMM (row-major through column-major cuBLAS: C^T = op(B)^T · op(A)^T) --------------------------------------

void gemm_rm(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
             int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    AR_CUBLAS_CHECK(cublasSgemm(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M),
                                int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc)));
}

void gemm_rm_batched(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C,
                     int64_t ldc, int64_t sC, int64_t batch) {
    AR_CUBLAS_CHECK(cublasSgemmStridedBatched(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
                                              int(M), int(K), &alpha, B, int(ldb), sB, A, int(lda), sA, &beta, C,
                                              int(ldc), sC, int(batch)));
}

// ---- kernels ----------------------------------------------------------------------------------------------------

__device__ float block_sum(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = 0.f;
    const int nw = (blockDim.x + 31) / 32;
    for (int i = 0; i < nw; ++i) t += sh[i];
    return t;
}

__device__ float block_max(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = -INFINITY;
    const int nw = (blockDim.x + 31) / 32;
    for (int i = 0; i < nw; ++i) t = fmaxf(t, sh[i]);
    return t;
}

// y = w ∘ (x · r), r = (mean(x²) + eps)^(-1/2); one block per row.
__global__ void rmsnorm_fwd_kernel(const float* x, const float* w, int64_t dim, float eps, float* y, float* rstd) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    const float* xr = x + row * dim;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i] * xr[i];
    s = block_sum(s, sh);
    const float r = rsqrtf(s / float(dim) + eps);
    if (rstd && threadIdx.x == 0) rstd[row] = r;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) y[row * dim + i] = w[i] * (xr[i] * r);
}

// dx_i = r·w_i·dy_i − x_i·r³/dim · Σ_k w_k·dy_k·x_k (dx may alias dy).
__global__ void rmsnorm_bwd_kernel(const float* x, const float* w, const float* rstd, const float* dy, int64_t dim,
                                   float* dx) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    const float* xr = x + row * dim;
    const float* dyr = dy + row * dim;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += w[i] * dyr[i] * xr[i];
    s = block_sum(s, sh);
    const float r = rstd[row];
    const float c = r * r * r / float(dim) * s;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dx[row * dim + i] = r * w[i] * dyr[i] - xr[i] * c;
}

// rotate-half RoPE in place on x [N, nh, D], position of row n = n % L; backward = rotation by −θ.
__global__ void rope_kernel(float* x, int64_t N, int64_t L, int64_t nh, int64_t D, const float* cos_t,
                            const float* sin_t, float sign) {
    const int64_t half = D / 2, total = N * nh * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, nhh = e / half, n = nhh / nh;
        const int64_t pos = n % L;
        const float c = cos_t[pos * half + i], s = sign * sin_t[pos * half + i];
        float* v = x + nhh * D;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

__device__ float sigmoidf_(float g) { return 1.f / (1.f + expf(-g)); }

__global__ void swiglu_fwd_kernel(const float* g, const float* u, int64_t n, float* act) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const float s = sigmoidf_(g[i]);
        act[i] = g[i] * s * u[i];
    }
}

// act = silu(g)·u: du = da·silu(g), dg = da·u·σ(g)·(1 + g·(1 − σ(g))). dg may alias da.
__global__ void swiglu_bwd_kernel(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const float gi = g[i], ui = u[i], d = da[i];
        const float s = sigmoidf_(gi);
        du[i] = d * gi * s;
        dg[i] = d * ui * s * (1.f + gi * (1.f - s));
    }
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {  // y += x
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        y[i] += x[i];
}

// Causal softmax in place over rows of P [B·nq, L, L]: row r has query position i = r % L; j > i → 0.
__global__ void softmax_causal_kernel(float* P, int64_t L) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x, i = row % L;
    float* p = P + row * L;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, p[j]);
    m = block_max(m, sh);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
        const float e = expf(p[j] - m);
        p[j] = e;
        s += e;
    }
    s = block_sum(s, sh);
    const float inv = 1.f / s;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) p[j] = j <= i ? p[j] * inv : 0.f;
}

// dS = P ∘ (dP − Σ_j P·dP) per row, in place in dP.
__global__ void softmax_bwd_kernel(const float* P, float* dP, int64_t L) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    const float* p = P + row * L;
    float* d = dP + row * L;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) s += p[j] * d[j];
    s = block_sum(s, sh);
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) d[j] = p[j] * (d[j] - s);
}

// Per row of [N, H]: partial[row] = Σ mask·(pred − ref)²; grad = scale·2·mask·(pred − ref)/denom.
__global__ void mse_kernel(const float* pred, const float* ref, int64_t L, int64_t H, bool mask_last, double denom,
                           double scale, float* grad, double* partial) {
    __shared__ double shd[32];
    const int64_t row = blockIdx.x;
    const bool on = !(mask_last && row % L == L - 1);
    double acc = 0.0;
    for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
        const double e = on ? double(pred[row * H + h]) - double(ref[row * H + h]) : 0.0;
        acc += e * e;
        grad[row * H + h] = float(scale * 2.0 * e / denom);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shd[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int i = 0; i < (int(blockDim.x) + 31) / 32; ++i) t += shd[i];
        partial[row] = t;
    }
}

int grid_for(int64_t n) { return int(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }

}  // namespace

struct CudaBlockEngine::Impl {
    Qwen3BlockDims d;
    int64_t n = 0, L = 0, batch = 0;
    cublasHandle_t blas = nullptr;
    DevBuf<float> train, ref;
    std::array<DevBuf<float>, kNumBlockLinears> W, dW;
    DevBuf<float> in_norm, post_norm, q_norm, k_norm, cos_t, sin_t;
    // activations for `batch` samples
    DevBuf<float> X, R, h1, q_lin, k_lin, rstd_q, rstd_k, q, k, v, P, dP, att, x2, rstd2, h2, gate, up, act, Y, dY, dI,
        dH, dA, dq, dk, dv;
    DevBuf<double> partial;
    std::vector<double> partial_host;
    int64_t fwd_b = 0;  // samples of the last forward

    ~Impl() {
        if (blas) cublasDestroy(blas);
    }

    void forward(const float* Xd, int64_t b, float* Yd);
    void backward(const float* dYd, bool accumulate);
};

void CudaBlockEngine::Impl::forward(const float* Xd, int64_t b, float* Yd) {
    const int64_t N = b * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim, I = d.intermediate,
                  QD = nq * D, KD = nkv * D, r = nq / nkv;
    const float eps = float(d.rms_eps);
    fwd_b = b;
    rmsnorm_fwd_kernel<<<unsigned(N), kThreads>>>(Xd, in_norm.p, H, eps, h1.p, nullptr);
    float* qa = d.qk_norm ? q_lin.p : q.p;
    float* ka = d.qk_norm ? k_lin.p : k.p;
    gemm_rm(blas, false, true, N, QD, H, 1.f, h1.p, H, W[kLinQ].p, H, 0.f, qa, QD);
    gemm_rm(blas, false, true, N, KD, H, 1.f, h1.p, H, W[kLinK].p, H, 0.f, ka, KD);
    gemm_rm(blas, false, true, N, KD, H, 1.f, h1.p, H, W[kLinV].p, H, 0.f, v.p, KD);
    if (d.qk_norm) {
        rmsnorm_fwd_kernel<<<unsigned(N * nq), 128>>>(q_lin.p, q_norm.p, D, eps, q.p, rstd_q.p);
        rmsnorm_fwd_kernel<<<unsigned(N * nkv), 128>>>(k_lin.p, k_norm.p, D, eps, k.p, rstd_k.p);
    }
    rope_kernel<<<grid_for(N * nq * D / 2), kThreads>>>(q.p, N, L, nq, D, cos_t.p, sin_t.p, 1.f);
    rope_kernel<<<grid_for(N * nkv * D / 2), kThreads>>>(k.p, N, L, nkv, D, cos_t.p, sin_t.p, 1.f);
    // attention: per head h (kv head h / r), batched over the b samples
    const float scale = 1.f / std::sqrt(float(D));
    const int64_t sQ = L * QD, sK = L * KD, LL = L * L, sS = nq * LL;
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / r;
        gemm_rm_batched(blas, false, true, L, L, D, scale, q.p + h * D, QD, sQ, k.p + g * D, KD, sK, 0.f, P.p + h * LL, L,
                        sS, b);
    }
    softmax_causal_kernel<<<unsigned(b * nq * L), 128>>>(P.p, L);
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / r;
        gemm_rm_batched(blas, false, false, L, D, L, 1.f, P.p + h * LL, L, sS, v.p + g * D, KD, sK, 0.f, att.p + h * D,
                        QD, sQ, b);
    }
    gemm_rm(blas, false, true, N, H, QD, 1.f, att.p, QD, W[kLinO].p, QD, 0.f, x2.p, H);
    add_kernel<<<grid_for(N * H), kThreads>>>(x2.p, Xd, N * H);
    rmsnorm_fwd_kernel<<<unsigned(N), kThreads>>>(x2.p, post_norm.p, H, eps, h2.p, rstd2.p);
    gemm_rm(blas, false, true, N, I, H, 1.f, h2.p, H, W[kLinGate].p, H, 0.f, gate.p, I);
    gemm_rm(blas, false, true, N, I, H, 1.f, h2.p, H, W[kLinUp].p, H, 0.f, up.p, I);
    swiglu_fwd_kernel<<<grid_for(N * I), kThreads>>>(gate.p, up.p, N * I, act.p);
    gemm_rm(blas, false, true, N, H, I, 1.f, act.p, I, W[kLinDown].p, I, 0.f, Yd, H);
    add_kernel<<<grid_for(N * H), kThreads>>>(Yd, x2.p, N * H);
    AR_CUDA_CHECK(cudaGetLastError());
}

void CudaBlockEngine::Impl::backward(const float* dYd, bool accumulate) {
    const int64_t b = fwd_b, N = b * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim,
                  I = d.intermediate, QD = nq * D, KD = nkv * D, r = nq / nkv;
    const float beta_w = accumulate ? 1.f : 0.f;
    auto weight_grad = [&](int which, const float* dy, const float* x, int64_t out, int64_t in) {
        gemm_rm(blas, true, false, out, in, N, 1.f, dy, out, x, in, beta_w, dW[which].p, in);
    };
    // MLP
    weight_grad(kLinDown, dYd, act.p, H, I);
    gemm_rm(blas, false, false, N, I, H, 1.f, dYd, H, W[kLinDown].p, I, 0.f, dI.p, I);  // d act
    swiglu_bwd_kernel<<<grid_for(N * I), kThreads>>>(gate.p, up.p, dI.p, N * I, dI.p, act.p);  // dI = dgate, act = dup
    weight_grad(kLinGate, dI.p, h2.p, I, H);
    weight_grad(kLinUp, act.p, h2.p, I, H);
    gemm_rm(blas, false, false, N, H, I, 1.f, dI.p, I, W[kLinGate].p, H, 0.f, dH.p, H);
    gemm_rm(blas, false, false, N, H, I, 1.f, act.p, I, W[kLinUp].p, H, 1.f, dH.p, H);
    rmsnorm_bwd_kernel<<<unsigned(N), kThreads>>>(x2.p, post_norm.p, rstd2.p, dH.p, H, dH.p);
    add_kernel<<<grid_for(N * H), kThreads>>>(dH.p, dYd, N * H);  // dX2
    // attention
    weight_grad(kLinO, dH.p, att.p, H, QD);
    gemm_rm(blas, false, false, N, QD, H, 1.f, dH.p, H, W[kLinO].p, QD, 0.f, dA.p, QD);
    const float scale = 1.f / std::sqrt(float(D));
    const int64_t sQ = L * QD, sK = L * KD, LL = L * L, sS = nq * LL;
    for (int64_t h = 0; h < nq; ++h) {  // dP = dO·Vᵀ
        const int64_t g = h / r;
        gemm_rm_batched(blas, false, true, L, L, D, 1.f, dA.p + h * D, QD, sQ, v.p + g * D, KD, sK, 0.f, dP.p + h * LL, L,
                        sS, b);
    }
    softmax_bwd_kernel<<<unsigned(b * nq * L), 128>>>(P.p, dP.p, L);  // dP -> dS
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / r;
        const float bacc = (h % r == 0) ? 0.f : 1.f;  // the r query heads of a kv head add up
        gemm_rm_batched(blas, false, false, L, D, L, scale, dP.p + h * LL, L, sS, k.p + g * D, KD, sK, 0.f,
                        dq.p + h * D, QD, sQ, b);
        gemm_rm_batched(blas, true, false, L, D, L, scale, dP.p + h * LL, L, sS, q.p + h * D, QD, sQ, bacc,
                        dk.p + g * D, KD, sK, b);
        gemm_rm_batched(blas, true, false, L, D, L, 1.f, P.p + h * LL, L, sS, dA.p + h * D, QD, sQ, bacc, dv.p + g * D,
                        KD, sK, b);
    }
    weight_grad(kLinV, dv.p, h1.p, KD, H);
    rope_kernel<<<grid_for(N * nq * D / 2), kThreads>>>(dq.p, N, L, nq, D, cos_t.p, sin_t.p, -1.f);
    rope_kernel<<<grid_for(N * nkv * D / 2), kThreads>>>(dk.p, N, L, nkv, D, cos_t.p, sin_t.p, -1.f);
    if (d.qk_norm) {
        rmsnorm_bwd_kernel<<<unsigned(N * nq), 128>>>(q_lin.p, q_norm.p, rstd_q.p, dq.p, D, dq.p);
        rmsnorm_bwd_kernel<<<unsigned(N * nkv), 128>>>(k_lin.p, k_norm.p, rstd_k.p, dk.p, D, dk.p);
    }
    weight_grad(kLinQ, dq.p, h1.p, QD, H);
    weight_grad(kLinK, dk.p, h1.p, KD, H);
    AR_CUDA_CHECK(cudaGetLastError());
}

CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>& c, int64_t n, int64_t L, int64_t batch,
                                 const float* train_in, const float* ref_out)
    : p_(std::make_unique<Impl>()) {
    Impl& s = *p_;
    s.d = c.dims;
    s.n = n;
    s.L = L;
    s.batch = std::min(batch, n);
    const Qwen3BlockDims& d = s.d;
    check(n > 0 && L > 0 && batch > 0, "CUDA block engine: empty input (n ", n, ", L ", L, ", batch ", batch, ")");
    check(c.q_bias.empty(), "CUDA tuning does not support q/k/v biases yet (Qwen2-style models); use --device cpu");
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
        fail("--device cuda: no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    AR_CUBLAS_CHECK(cublasCreate(&s.blas));
    AR_CUBLAS_CHECK(cublasSetMathMode(s.blas, CUBLAS_PEDANTIC_MATH));  // true FP32, like the CPU path
    const int64_t H = d.hidden, D = d.head_dim, LH = L * H;
    s.train.upload(train_in, size_t(n * LH), "the cached block inputs");
    if (ref_out) s.ref.upload(ref_out, size_t(n * LH), "the block's FP targets");
    s.in_norm.upload(c.input_norm.data(), c.input_norm.size(), "norm weights");
    s.post_norm.upload(c.post_attn_norm.data(), c.post_attn_norm.size(), "norm weights");
    if (d.qk_norm) {
        s.q_norm.upload(c.q_norm.data(), c.q_norm.size(), "q_norm");
        s.k_norm.upload(c.k_norm.data(), c.k_norm.size(), "k_norm");
    }
    std::vector<float> cs(size_t(L * (D / 2))), sn(cs.size());
    rope_table<float>(c.inv_freq, L, cs.data(), sn.data());
    s.cos_t.upload(cs.data(), cs.size(), "RoPE tables");
    s.sin_t.upload(sn.data(), sn.size(), "RoPE tables");
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const auto sh = block_linear_shape(d, i);
        s.W[i].alloc(size_t(sh[0] * sh[1]), "block weights");
        s.dW[i].alloc(size_t(sh[0] * sh[1]), "weight gradients");
    }
    const size_t N = size_t(s.batch * L), nq = size_t(d.n_q_heads), nkv = size_t(d.n_kv_heads), I = size_t(d.intermediate);
    const size_t QD = nq * size_t(D), KD = nkv * size_t(D);
    for (DevBuf<float>* bf : {&s.X, &s.R, &s.h1, &s.x2, &s.h2, &s.Y, &s.dY, &s.dH}) bf->alloc(N * size_t(H), "activations");
    for (DevBuf<float>* bf : {&s.q_lin, &s.q, &s.att, &s.dA, &s.dq}) bf->alloc(N * QD, "activations");
    for (DevBuf<float>* bf : {&s.k_lin, &s.k, &s.v, &s.dk, &s.dv}) bf->alloc(N * KD, "activations");
    s.rstd_q.alloc(N * nq, "activations");
    s.rstd_k.alloc(N * nkv, "activations");
    s.rstd2.alloc(N, "activations");
    for (DevBuf<float>* bf : {&s.gate, &s.up, &s.act, &s.dI}) bf->alloc(N * I, "activations");
    s.P.alloc(size_t(s.batch) * nq * size_t(L) * size_t(L), "attention probabilities");
    s.dP.alloc(size_t(s.batch) * nq * size_t(L) * size_t(L), "attention probability gradients");
    s.partial.alloc(N, "loss partial sums");
    s.partial_host.resize(N);
}

CudaBlockEngine::~CudaBlockEngine() = default;

void CudaBlockEngine::set_weight(int which, const float* W) {
    const auto sh = block_linear_shape(p_->d, which);
    AR_CUDA_CHECK(cudaMemcpy(p_->W[which].p, W, size_t(sh[0] * sh[1]) * sizeof(float), cudaMemcpyHostToDevice));
}

void CudaBlockEngine::set_train_inputs(const float* train_in) {
    Impl& s = *p_;
    s.train.upload(train_in, size_t(s.n * s.L * s.d.hidden), "the cached block inputs");
}

double CudaBlockEngine::forward_backward(const int64_t* idx, int64_t b, bool mask_last_token, double grad_scale,
                                         bool accumulate) {
    Impl& s = *p_;
    check(b > 0 && b <= s.batch, "CUDA block engine: sub-batch of ", b, " samples (capacity ", s.batch, ")");
    check(s.ref.p != nullptr, "CUDA block engine: no targets were given");
    const int64_t LH = s.L * s.d.hidden, N = b * s.L;
    for (int64_t i = 0; i < b; ++i) {
        check(idx[i] >= 0 && idx[i] < s.n, "CUDA block engine: sample index ", idx[i], " out of range");
        AR_CUDA_CHECK(cudaMemcpyAsync(s.X.p + i * LH, s.train.p + idx[i] * LH, size_t(LH) * sizeof(float),
                                      cudaMemcpyDeviceToDevice));
        AR_CUDA_CHECK(cudaMemcpyAsync(s.R.p + i * LH, s.ref.p + idx[i] * LH, size_t(LH) * sizeof(float),
                                      cudaMemcpyDeviceToDevice));
    }
    s.forward(s.X.p, b, s.Y.p);
    const double denom = double(N) * double(s.d.hidden);
    mse_kernel<<<unsigned(N), kThreads>>>(s.Y.p, s.R.p, s.L, s.d.hidden, mask_last_token, denom, grad_scale, s.dY.p,
                                          s.partial.p);
    AR_CUDA_CHECK(cudaGetLastError());
    s.backward(s.dY.p, accumulate);
    AR_CUDA_CHECK(cudaMemcpy(s.partial_host.data(), s.partial.p, size_t(N) * sizeof(double), cudaMemcpyDeviceToHost));
    double total = 0.0;
    for (int64_t i = 0; i < N; ++i) total += s.partial_host[size_t(i)];
    return total / denom;
}

void CudaBlockEngine::get_weight_grad(int which, float* dW) const {
    const auto sh = block_linear_shape(p_->d, which);
    AR_CUDA_CHECK(cudaMemcpy(dW, p_->dW[which].p, size_t(sh[0] * sh[1]) * sizeof(float), cudaMemcpyDeviceToHost));
}

void CudaBlockEngine::forward_all(float* out) {
    Impl& s = *p_;
    const int64_t LH = s.L * s.d.hidden;
    for (int64_t s0 = 0; s0 < s.n; s0 += s.batch) {
        const int64_t b = std::min(s.batch, s.n - s0);
        s.forward(s.train.p + s0 * LH, b, s.Y.p);
        AR_CUDA_CHECK(cudaMemcpy(out + s0 * LH, s.Y.p, size_t(b * LH) * sizeof(float), cudaMemcpyDeviceToHost));
    }
}

}  // namespace autoround
