// ops/cpu/attention_grad.cpp — see attention_grad.h.
#include "ops/cpu/attention_grad.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ops/cpu/linear_grad.h"

namespace autoround {
namespace {

constexpr int64_t kRowBlock = 64;

void check_shape(const AttnTrainShape& s) {
    check(s.B > 0 && s.L > 0 && s.n_q_heads > 0 && s.n_kv_heads > 0 && s.head_dim > 0, "attention: empty shape B=",
          s.B, " L=", s.L, " heads=", s.n_q_heads, "/", s.n_kv_heads, " head_dim=", s.head_dim);
    check(s.n_q_heads % s.n_kv_heads == 0, "attention: ", s.n_q_heads, " query heads are not a multiple of ",
          s.n_kv_heads, " kv heads");
}

}  // namespace

template <typename T>
void attention_train_forward(const T* q, const T* k, const T* v, const AttnTrainShape& s, T* out, T* lse) {
    check_shape(s);
    const int64_t L = s.L, nq = s.n_q_heads, nkv = s.n_kv_heads, D = s.head_dim, grp = nq / nkv;
    const int64_t qs = nq * D, ks = nkv * D;  // row strides
    const T scale = T(1) / std::sqrt(static_cast<T>(D));
    const int64_t nblk = (L + kRowBlock - 1) / kRowBlock;
#pragma omp parallel
    {
        std::vector<T> S(static_cast<size_t>(std::min(kRowBlock, L) * L));  // [rows of the block, prefix]
#pragma omp for schedule(dynamic, 1) collapse(3)
        for (int64_t b = 0; b < s.B; ++b) {
            for (int64_t h = 0; h < nq; ++h) {
                for (int64_t blk = 0; blk < nblk; ++blk) {
                    const int64_t r0 = blk * kRowBlock, r1 = std::min(L, r0 + kRowBlock), nr = r1 - r0;
                    const int64_t kvh = h / grp;
                    const T* Qb = q + (b * L + r0) * qs + h * D;
                    const T* Kb = k + (b * L) * ks + kvh * D;
                    const T* Vb = v + (b * L) * ks + kvh * D;
                    const int64_t nk = s.causal ? r1 : L;  // keys any row of the block sees
                    // S[nr, nk] = scale · Q[r0:r1] · K[0:nk]ᵀ
                    gemm_serial<T>(false, true, nr, nk, D, scale, Qb, qs, Kb, ks, T(0), S.data(), nk);
                    for (int64_t i = 0; i < nr; ++i) {
                        T* row = S.data() + i * nk;
                        const int64_t n = s.causal ? r0 + i + 1 : L;  // causal prefix or all keys
                        T mx = -std::numeric_limits<T>::infinity();
                        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
                        T sum = 0;
                        for (int64_t j = 0; j < n; ++j) {
                            row[j] = std::exp(row[j] - mx);
                            sum += row[j];
                        }
                        const T inv = T(1) / sum;
                        for (int64_t j = 0; j < n; ++j) row[j] *= inv;
                        for (int64_t j = n; j < nk; ++j) row[j] = T(0);
                        lse[(b * nq + h) * L + r0 + i] = mx + std::log(sum);
                    }
                    // O[r0:r1] = P · V[0:nk]
                    gemm_serial<T>(false, false, nr, D, nk, T(1), S.data(), nk, Vb, ks, T(0), out + (b * L + r0) * qs + h * D,
                                   qs);
                }
            }
        }
    }
}

template <typename T>
void attention_train_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                              const AttnTrainShape& s, T* dq, T* dk, T* dv) {
    check_shape(s);
    const int64_t L = s.L, nq = s.n_q_heads, nkv = s.n_kv_heads, D = s.head_dim, grp = nq / nkv;
    const int64_t qs = nq * D, ks = nkv * D;
    const T scale = T(1) / std::sqrt(static_cast<T>(D));
#pragma omp parallel
    {
        const size_t tile = static_cast<size_t>(std::min(kRowBlock, L) * L);
        std::vector<T> P(tile), dS(tile), delta(static_cast<size_t>(kRowBlock));
#pragma omp for schedule(dynamic, 1) collapse(2)
        for (int64_t b = 0; b < s.B; ++b) {
            for (int64_t kvh = 0; kvh < nkv; ++kvh) {
                const T* Kb = k + (b * L) * ks + kvh * D;
                const T* Vb = v + (b * L) * ks + kvh * D;
                T* dKb = dk + (b * L) * ks + kvh * D;
                T* dVb = dv + (b * L) * ks + kvh * D;
                for (int64_t t = 0; t < L; ++t)
                    for (int64_t d = 0; d < D; ++d) dKb[t * ks + d] = dVb[t * ks + d] = T(0);
                for (int64_t h = kvh * grp; h < (kvh + 1) * grp; ++h) {
                    for (int64_t r0 = 0; r0 < L; r0 += kRowBlock) {
                        const int64_t r1 = std::min(L, r0 + kRowBlock), nr = r1 - r0;
                        const int64_t nk = s.causal ? r1 : L;  // keys any row of the block sees
                        const T* Qb = q + (b * L + r0) * qs + h * D;
                        const T* Ob = out + (b * L + r0) * qs + h * D;
                        const T* dOb = dout + (b * L + r0) * qs + h * D;
                        const T* lrow = lse + (b * nq + h) * L + r0;
                        // P = exp(scale·Q Kᵀ − lse) on the visible keys (causal: 0 above the diagonal)
                        gemm_serial<T>(false, true, nr, nk, D, scale, Qb, qs, Kb, ks, T(0), P.data(), nk);
                        // dP = dO Vᵀ
                        gemm_serial<T>(false, true, nr, nk, D, T(1), dOb, qs, Vb, ks, T(0), dS.data(), nk);
                        for (int64_t i = 0; i < nr; ++i) {
                            T dl = 0;
                            for (int64_t d = 0; d < D; ++d) dl += dOb[i * qs + d] * Ob[i * qs + d];
                            T* prow = P.data() + i * nk;
                            T* srow = dS.data() + i * nk;
                            const int64_t n = s.causal ? r0 + i + 1 : L;
                            for (int64_t j = 0; j < n; ++j) {
                                prow[j] = std::exp(prow[j] - lrow[i]);
                                srow[j] = prow[j] * (srow[j] - dl);
                            }
                            for (int64_t j = n; j < nk; ++j) prow[j] = srow[j] = T(0);
                        }
                        // dQ[r0:r1] = scale · dS K[0:nk]
                        gemm_serial<T>(false, false, nr, D, nk, scale, dS.data(), nk, Kb, ks, T(0),
                                       dq + (b * L + r0) * qs + h * D, qs);
                        // dK[0:nk] += scale · dSᵀ Q[r0:r1];  dV[0:nk] += Pᵀ dO[r0:r1]
                        gemm_serial<T>(true, false, nk, D, nr, scale, dS.data(), nk, Qb, qs, T(1), dKb, ks);
                        gemm_serial<T>(true, false, nk, D, nr, T(1), P.data(), nk, dOb, qs, T(1), dVb, ks);
                    }
                }
            }
        }
    }
}

template <typename T>
void attention_train_forward_ref(const T* q, const T* k, const T* v, const AttnTrainShape& s, T* out, T* lse) {
    check_shape(s);
    const int64_t L = s.L, nq = s.n_q_heads, nkv = s.n_kv_heads, D = s.head_dim, grp = nq / nkv;
    const T scale = T(1) / std::sqrt(static_cast<T>(D));
    std::vector<T> p(static_cast<size_t>(L));
    for (int64_t b = 0; b < s.B; ++b) {
        for (int64_t h = 0; h < nq; ++h) {
            for (int64_t t = 0; t < L; ++t) {
                const int64_t nk = s.causal ? t + 1 : L;  // visible keys
                const T* qr = q + ((b * L + t) * nq + h) * D;
                T mx = -std::numeric_limits<T>::infinity();
                for (int64_t j = 0; j < nk; ++j) {
                    const T* kr = k + ((b * L + j) * nkv + h / grp) * D;
                    T d = 0;
                    for (int64_t i = 0; i < D; ++i) d += qr[i] * kr[i];
                    p[j] = d * scale;
                    mx = std::max(mx, p[j]);
                }
                T sum = 0;
                for (int64_t j = 0; j < nk; ++j) sum += (p[j] = std::exp(p[j] - mx));
                T* o = out + ((b * L + t) * nq + h) * D;
                for (int64_t i = 0; i < D; ++i) o[i] = 0;
                for (int64_t j = 0; j < nk; ++j) {
                    const T* vr = v + ((b * L + j) * nkv + h / grp) * D;
                    for (int64_t i = 0; i < D; ++i) o[i] += p[j] / sum * vr[i];
                }
                if (lse) lse[(b * nq + h) * L + t] = mx + std::log(sum);
            }
        }
    }
}

template <typename T>
void attention_train_backward_ref(const T* q, const T* k, const T* v, const T* dout, const AttnTrainShape& s, T* dq,
                                  T* dk, T* dv) {
    check_shape(s);
    const int64_t L = s.L, nq = s.n_q_heads, nkv = s.n_kv_heads, D = s.head_dim, grp = nq / nkv;
    const T scale = T(1) / std::sqrt(static_cast<T>(D));
    std::fill(dk, dk + s.B * L * nkv * D, T(0));
    std::fill(dv, dv + s.B * L * nkv * D, T(0));
    std::vector<T> p(static_cast<size_t>(L)), dp(static_cast<size_t>(L));
    for (int64_t b = 0; b < s.B; ++b) {
        for (int64_t h = 0; h < nq; ++h) {
            for (int64_t t = 0; t < L; ++t) {
                const int64_t nk = s.causal ? t + 1 : L;  // visible keys
                const T* qr = q + ((b * L + t) * nq + h) * D;
                const T* go = dout + ((b * L + t) * nq + h) * D;
                auto krow = [&](int64_t j) { return k + ((b * L + j) * nkv + h / grp) * D; };
                auto vrow = [&](int64_t j) { return v + ((b * L + j) * nkv + h / grp) * D; };
                T mx = -std::numeric_limits<T>::infinity();
                for (int64_t j = 0; j < nk; ++j) {
                    T d = 0;
                    for (int64_t i = 0; i < D; ++i) d += qr[i] * krow(j)[i];
                    p[j] = d * scale;
                    mx = std::max(mx, p[j]);
                }
                T sum = 0;
                for (int64_t j = 0; j < nk; ++j) sum += (p[j] = std::exp(p[j] - mx));
                T delta = 0;  // Σ_j p_j dp_j
                for (int64_t j = 0; j < nk; ++j) {
                    p[j] /= sum;
                    T d = 0;
                    for (int64_t i = 0; i < D; ++i) d += go[i] * vrow(j)[i];
                    dp[j] = d;
                    delta += p[j] * d;
                }
                T* gq = dq + ((b * L + t) * nq + h) * D;
                for (int64_t i = 0; i < D; ++i) gq[i] = 0;
                for (int64_t j = 0; j < nk; ++j) {
                    const T ds = p[j] * (dp[j] - delta) * scale;
                    T* gk = dk + ((b * L + j) * nkv + h / grp) * D;
                    T* gv = dv + ((b * L + j) * nkv + h / grp) * D;
                    for (int64_t i = 0; i < D; ++i) {
                        gq[i] += ds * krow(j)[i];
                        gk[i] += ds * qr[i];
                        gv[i] += p[j] * go[i];
                    }
                }
            }
        }
    }
}

#define AR_INSTANTIATE(T)                                                                                            \
    template void attention_train_forward<T>(const T*, const T*, const T*, const AttnTrainShape&, T*, T*);          \
    template void attention_train_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*,           \
                                              const AttnTrainShape&, T*, T*, T*);                                  \
    template void attention_train_forward_ref<T>(const T*, const T*, const T*, const AttnTrainShape&, T*, T*);      \
    template void attention_train_backward_ref<T>(const T*, const T*, const T*, const T*, const AttnTrainShape&,    \
                                                  T*, T*, T*);
AR_INSTANTIATE(float)
AR_INSTANTIATE(double)
#undef AR_INSTANTIATE

}  // namespace autoround
