// eval/kl_divergence.cpp — see kl_divergence.h.
#include "eval/kl_divergence.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <string>

#include "core/error.h"
#include "core/progress_bar.h"
#include "eval/token_windows.h"
#include "model/qwen3_model.h"

namespace autoround {
namespace {

// Max, first argmax and log Σ exp(l − max) of one logits row; exp(l_i − max) is left in `e` [vocab].
struct RowStats {
    double max = 0, log_sum = 0;
    int32_t argmax = 0;
};

RowStats row_stats(std::span<const float> l, const char* which, std::vector<double>& e) {
    RowStats s;
    float mx = l[0];
    for (size_t i = 0; i < l.size(); ++i) {
        if (!std::isfinite(l[i])) fail("kl-divergence: the ", which, " model gave a non-finite logit (", l[i], ") for token id ", i);
        if (l[i] > mx) {
            mx = l[i];
            s.argmax = static_cast<int32_t>(i);
        }
    }
    s.max = mx;
    e.resize(l.size());
    double sum = 0;
    for (size_t i = 0; i < l.size(); ++i) sum += e[i] = std::exp(double(l[i]) - s.max);
    s.log_sum = std::log(sum);
    return s;
}

}  // namespace

TokenKl compare_logits(std::span<const float> base, std::span<const float> model, int32_t target) {
    check(!base.empty() && base.size() == model.size(), "kl-divergence: logit rows of different lengths (base ",
          base.size(), ", model ", model.size(), "); the two models must share the vocabulary");
    check(target >= 0 && static_cast<size_t>(target) < base.size(), "kl-divergence: target token ", target,
          " is outside the vocabulary of ", base.size());
    thread_local std::vector<double> eb, eq;  // exp(l − max) [vocab] of each row
    const RowStats b = row_stats(base, "base", eb), q = row_stats(model, "quantized", eq);
    const double sum_b = std::exp(b.log_sum);
    const double shift_b = b.max + b.log_sum, shift_q = q.max + q.log_sum;  // log p_i = l_i − shift
    double kl = 0;
    for (size_t i = 0; i < base.size(); ++i) {
        const double log_p = double(base[i]) - shift_b, log_q = double(model[i]) - shift_q;
        kl += (eb[i] / sum_b) * (log_p - log_q);
    }
    TokenKl t;
    t.kld = kl;
    t.nll_base = shift_b - double(base[target]);
    t.nll_model = shift_q - double(model[target]);
    t.same_top = b.argmax == q.argmax;
    return t;
}

void KlAccumulator::Running::add(double x, int64_t n) {
    const double d = x - mean;
    mean += d / double(n);
    m2 += d * (x - mean);
}

double KlAccumulator::Running::stderr_of_mean(int64_t n) const {
    return n < 2 ? 0.0 : std::sqrt(m2 / double(n - 1) / double(n));
}

void KlAccumulator::add(const TokenKl& t) {
    kld_.push_back(t.kld);
    const int64_t n = count();
    kld_run_.add(t.kld, n);
    diff_run_.add(t.nll_model - t.nll_base, n);
    kld_mean_ = kld_run_.mean;
    same_top_ += t.same_top ? 1 : 0;
    nll_base_sum_ += t.nll_base;
    nll_model_sum_ += t.nll_model;
}

double sorted_percentile(std::span<const double> v, double fraction) {
    check(!v.empty(), "kl-divergence: percentile of no values");
    if (fraction <= 0) return v.front();
    if (fraction >= 1) return v.back();
    const double pos = fraction * double(v.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const double f = pos - double(lo);
    return (1 - f) * v[lo] + f * v[std::min(lo + 1, v.size() - 1)];
}

KlSummary KlAccumulator::summary() const {
    const int64_t n = count();
    check(n > 0, "kl-divergence: no positions were scored");
    std::vector<double> sorted = kld_;
    std::sort(sorted.begin(), sorted.end());
    KlSummary s;
    s.count = n;
    s.kld_mean = kld_run_.mean;
    s.kld_stderr = kld_run_.stderr_of_mean(n);
    s.kld_median = sorted_percentile(sorted, 0.5);
    s.kld_p99 = sorted_percentile(sorted, 0.99);
    s.kld_max = sorted.back();
    const double p = double(same_top_) / double(n);
    s.top1_agreement = 100.0 * p;
    s.top1_stderr = n < 2 ? 0.0 : 100.0 * std::sqrt(p * (1 - p) / double(n - 1));
    s.ppl_base = std::exp(nll_base_sum_ / double(n));
    s.ppl_model = std::exp(nll_model_sum_ / double(n));
    s.ln_ppl_ratio = diff_run_.mean;
    s.ln_ppl_ratio_stderr = diff_run_.stderr_of_mean(n);
    return s;
}

KlDivergenceResult evaluate_kl_divergence(const Qwen3Model& base, const Qwen3Model& model,
                                          std::span<const int32_t> ids, int64_t seqlen, bool drop_last_partial,
                                          bool show_progress) {
    const int64_t V = base.config().vocab_size;
    check(model.config().vocab_size == V, "kl-divergence: the quantized model has vocab_size ",
          model.config().vocab_size, " but the base model has ", V,
          "; KL divergence needs two models with the same vocabulary");
    const TokenWindows windows = plan_token_windows(ids, seqlen, drop_last_partial, "kl-divergence");
    const int64_t Hb = base.config().hidden_size, Hq = model.config().hidden_size;
    KlDivergenceResult r;
    KlAccumulator acc;
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar("kld", windows.count, "win");
    std::vector<float> hidden_b, hidden_q;                               // [len, Hb], [len, Hq]
    std::vector<float> logits_b(kLogitRows * V), logits_q(kLogitRows * V);  // [kLogitRows, V] each
    std::vector<TokenKl> rows(kLogitRows);
    for (int64_t w = 0; w < windows.count; ++w) {
        const auto win = windows.window(w);
        const int64_t len = static_cast<int64_t>(win.size());
        window_final_hidden(base, win, hidden_b);
        window_final_hidden(model, win, hidden_q);
        for (int64_t r0 = 0; r0 < len - 1; r0 += kLogitRows) {
            const int64_t nr = std::min(kLogitRows, len - 1 - r0);
            base.lm_head(hidden_b.data() + r0 * Hb, nr, logits_b.data());
            model.lm_head(hidden_q.data() + r0 * Hq, nr, logits_q.data());
            // Rows are independent; errors cannot leave an OpenMP region, so they are carried out.
            std::exception_ptr error;
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < nr; ++i) {
                try {
                    rows[i] = compare_logits(std::span<const float>(logits_b.data() + i * V, V),
                                             std::span<const float>(logits_q.data() + i * V, V), win[r0 + i + 1]);
                } catch (...) {
#pragma omp critical
                    if (!error) error = std::current_exception();
                }
            }
            if (error) std::rethrow_exception(error);
            for (int64_t i = 0; i < nr; ++i) acc.add(rows[i]);  // in position order: deterministic
        }
        r.tokens += len;
        if (show_progress) bar.update(w + 1, "kld " + std::to_string(acc.kld_mean()));
    }
    if (show_progress) bar.finish();
    r.windows = windows.count;
    r.summary = acc.summary();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace autoround
