// tests/ops/test_attention_grad_bidirectional.cpp — the bidirectional mode of the training attention
// (ops/cpu/attention_grad.h, AttnTrainShape::causal = false, used per frame by the vision block): the
// float64 reference backward against central finite differences, the blocked fast paths against the
// references across several row blocks (L > 64), the float fast path against float64, that the first row
// really sees the last key, and that causal stays the default.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/cpu/attention_grad.h"
#include "grad_test_util.h"

using namespace autoround;


using namespace grad_test;

namespace {
struct S { int64_t B, L, nq, nkv, D; };
std::string tag(const S& s) {
    return "B" + std::to_string(s.B) + " L" + std::to_string(s.L) + " " + std::to_string(s.nq) + "/" +
           std::to_string(s.nkv) + " D" + std::to_string(s.D);
}
}  // namespace

TEST(GradAttentionBidirectional, CausalIsTheDefault) { EXPECT_TRUE(AttnTrainShape{}.causal); }

TEST(GradAttentionBidirectional, BackwardMatchesFiniteDifferences) {
    for (S sh : {S{2, 5, 4, 2, 8}, S{3, 7, 2, 2, 4}}) {
        const AttnTrainShape as{sh.B, sh.L, sh.nq, sh.nkv, sh.D, false};
        const int64_t N = sh.B * sh.L, QD = sh.nq * sh.D, KD = sh.nkv * sh.D;
        const auto q = randn_d(N * QD, 70, 1.0), k = randn_d(N * KD, 71, 1.0), v = randn_d(N * KD, 72, 1.0),
                   R = randn_d(N * QD, 73, 1.0);
        auto f = [&](const std::vector<double>& qq, const std::vector<double>& kk, const std::vector<double>& vv) {
            std::vector<double> o(N * QD), lse(sh.B * sh.nq * sh.L);
            attention_train_forward_ref<double>(qq.data(), kk.data(), vv.data(), as, o.data(), lse.data());
            return dot(o, R);
        };
        std::vector<double> dq(N * QD), dk(N * KD), dv(N * KD);
        attention_train_backward_ref<double>(q.data(), k.data(), v.data(), R.data(), as, dq.data(), dk.data(), dv.data());
        check_fd([&](const std::vector<double>& x) { return f(x, k, v); }, q, dq, some_indices(dq.size(), 60, 5), 1e-5,
                 1e-6, 5e-9, "dq " + tag(sh));
        check_fd([&](const std::vector<double>& x) { return f(q, x, v); }, k, dk, some_indices(dk.size(), 60, 6), 1e-5,
                 1e-6, 5e-9, "dk " + tag(sh));
        check_fd([&](const std::vector<double>& x) { return f(q, k, x); }, v, dv, some_indices(dv.size(), 60, 7), 1e-5,
                 1e-6, 5e-9, "dv " + tag(sh));
        // not causal: the first query row depends on the last key/value of its sample
        double last = 0;
        for (int64_t d = 0; d < KD; ++d) last += std::abs(dk[((sh.L - 1)) * KD + d]) + std::abs(dv[(sh.L - 1) * KD + d]);
        EXPECT_GT(last, 1e-6) << tag(sh);
    }
}

TEST(GradAttentionBidirectional, FastPathsMatchReferencesAcrossRowBlocks) {
    for (S sh : {S{2, 5, 4, 2, 8}, S{2, 67, 4, 2, 8}, S{1, 131, 3, 1, 16}}) {
        const AttnTrainShape as{sh.B, sh.L, sh.nq, sh.nkv, sh.D, false};
        const int64_t N = sh.B * sh.L, QD = sh.nq * sh.D, KD = sh.nkv * sh.D, NL = sh.B * sh.nq * sh.L;
        const auto q = randn_d(N * QD, 80, 1.0), k = randn_d(N * KD, 81, 1.0), v = randn_d(N * KD, 82, 1.0),
                   R = randn_d(N * QD, 83, 1.0);
        std::vector<double> o(N * QD), lse(NL), o_r(N * QD), lse_r(NL);
        attention_train_forward<double>(q.data(), k.data(), v.data(), as, o.data(), lse.data());
        attention_train_forward_ref<double>(q.data(), k.data(), v.data(), as, o_r.data(), lse_r.data());
        for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(o[i], o_r[i], 1e-12) << tag(sh);
        for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lse[i], lse_r[i], 1e-12) << tag(sh);
        std::vector<double> dq(N * QD), dk(N * KD), dv(N * KD), dq_r(N * QD), dk_r(N * KD), dv_r(N * KD);
        attention_train_backward<double>(q.data(), k.data(), v.data(), o.data(), lse.data(), R.data(), as, dq.data(),
                                         dk.data(), dv.data());
        attention_train_backward_ref<double>(q.data(), k.data(), v.data(), R.data(), as, dq_r.data(), dk_r.data(),
                                             dv_r.data());
        for (size_t i = 0; i < dq.size(); ++i) ASSERT_NEAR(dq[i], dq_r[i], 1e-11) << tag(sh);
        for (size_t i = 0; i < dk.size(); ++i) ASSERT_NEAR(dk[i], dk_r[i], 1e-11) << tag(sh);
        for (size_t i = 0; i < dv.size(); ++i) ASSERT_NEAR(dv[i], dv_r[i], 1e-11) << tag(sh);

        const std::vector<float> qf(q.begin(), q.end()), kf(k.begin(), k.end()), vf(v.begin(), v.end()),
            Rf(R.begin(), R.end());
        std::vector<float> of(N * QD), lf(NL), dqf(N * QD), dkf(N * KD), dvf(N * KD);
        attention_train_forward<float>(qf.data(), kf.data(), vf.data(), as, of.data(), lf.data());
        attention_train_backward<float>(qf.data(), kf.data(), vf.data(), of.data(), lf.data(), Rf.data(), as,
                                        dqf.data(), dkf.data(), dvf.data());
        for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(of[i], o[i], 2e-5 * (1 + std::abs(o[i]))) << tag(sh);
        for (size_t i = 0; i < dq.size(); ++i) ASSERT_NEAR(dqf[i], dq[i], 1e-4 * (1 + std::abs(dq[i]))) << tag(sh);
        for (size_t i = 0; i < dk.size(); ++i) ASSERT_NEAR(dkf[i], dk[i], 1e-4 * (1 + std::abs(dk[i]))) << tag(sh);
        for (size_t i = 0; i < dv.size(); ++i) ASSERT_NEAR(dvf[i], dv[i], 1e-4 * (1 + std::abs(dv[i]))) << tag(sh);
    }
}
