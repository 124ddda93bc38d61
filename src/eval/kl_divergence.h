// eval/kl_divergence.h — how far a (quantized) model's next-token distributions are from a base
// model's, reported the way llama.cpp's `perplexity --kl-divergence` does.
//
// Per scored position (compare_logits, a pure function of two logit rows): p = softmax(base logits),
// q = softmax(model logits), both in float64 after subtracting the row max (so logits of any magnitude,
// ±1e4 included, are fine), KL(p||q) = Σ_i p_i·(log p_i − log q_i); both models' NLL of the true next
// token; and whether the two argmaxes agree (ties go to the lowest id). Identical rows give exactly 0.
// Rounding can make a KL of nearly identical rows a few ulps below 0; it is not clamped.
//
// KlAccumulator summarises the positions: mean KLD ± standard error, median / 99th percentile / max
// (percentiles interpolate linearly between order statistics, as llama.cpp does), "same top p" = top-1
// agreement in % ± std error sqrt(p(1−p)/(n−1)), both perplexities, and ln(PPL(model)/PPL(base)) =
// mean(NLL_model − NLL_base) ± its standard error. Standard errors are sample std / sqrt(n) (0 for n < 2).
//
// evaluate_kl_divergence runs both models over the same windows as `eval ppl` (eval/token_windows.h),
// one window and kLogitRows × vocab logits per model at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace autoround {

class Qwen3Model;

struct TokenKl {
    double kld = 0;        // KL(p_base || q_model), nats
    double nll_base = 0;   // −log p_base(target)
    double nll_model = 0;  // −log q_model(target)
    bool same_top = false; // argmax(base) == argmax(model)
};

// base, model: logits [vocab] of the same position; target: the true next token, in [0, vocab).
// Throws Error on empty or different-length rows, a target out of range, or a non-finite logit.
TokenKl compare_logits(std::span<const float> base, std::span<const float> model, int32_t target);

struct KlSummary {
    int64_t count = 0;  // scored positions
    double kld_mean = 0, kld_stderr = 0, kld_median = 0, kld_p99 = 0, kld_max = 0;
    double top1_agreement = 0, top1_stderr = 0;  // percent
    double ppl_base = 0, ppl_model = 0;
    double ln_ppl_ratio = 0, ln_ppl_ratio_stderr = 0;  // ln(PPL(model) / PPL(base))
};

class KlAccumulator {
public:
    void add(const TokenKl& t);
    int64_t count() const { return static_cast<int64_t>(kld_.size()); }
    double kld_mean() const { return kld_.empty() ? 0.0 : kld_mean_; }
    KlSummary summary() const;  // throws Error when nothing was added

private:
    // Welford running mean / sum of squared deviations, for KLD and for NLL_model − NLL_base.
    struct Running {
        double mean = 0, m2 = 0;
        void add(double x, int64_t n);  // n: count including x
        double stderr_of_mean(int64_t n) const;
    };
    std::vector<double> kld_;  // every position's KLD (8 bytes a position), for the percentiles
    double kld_mean_ = 0;
    Running kld_run_, diff_run_;
    int64_t same_top_ = 0;
    double nll_base_sum_ = 0, nll_model_sum_ = 0;
};

// Linear interpolation between order statistics of sorted values: fraction 0.5 = median, 1 = max.
double sorted_percentile(std::span<const double> sorted, double fraction);

struct KlDivergenceResult {
    KlSummary summary;
    int64_t windows = 0;
    int64_t tokens = 0;  // tokens fed through each model
    double seconds = 0;
};

// base and model must share the vocabulary (same vocab_size); ids come from the base's tokenizer.
KlDivergenceResult evaluate_kl_divergence(const Qwen3Model& base, const Qwen3Model& model,
                                          std::span<const int32_t> ids, int64_t seqlen,
                                          bool drop_last_partial = true, bool show_progress = true);

}  // namespace autoround
