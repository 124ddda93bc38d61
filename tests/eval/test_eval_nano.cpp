// tests/eval/test_eval_nano.cpp — `eval kld` and `eval hellaswag` end to end on qwen3-nano:
// the KL divergence of a model from a second load of itself is exactly 0 with 100 % top-1 agreement,
// its base perplexity equals `eval ppl` over the same windows, a 4-bit checkpoint is measurably off;
// HellaSwag on the first 20 real tasks is deterministic, and each ending's log-likelihood (computed
// with a shared-prefix KV cache and lm_head on hidden states) matches an independent full-sequence
// forward with all logits. Kept small: a few seconds in a Release build on one core.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/hellaswag.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "io/compressed_file.h"
#include "model/qwen3_model.h"
#include "text/bpe_tokenizer.h"

using namespace autoround;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;
const fs::path kNano = kShared / "models/qwen3-nano";
const fs::path kW4 = kShared / "reference/peer-autoround/w4g128-ar200-auto_round";

const Qwen3Model& nano() {
    static const Qwen3Model m = Qwen3Model::load(kNano);
    return m;
}
const BpeTokenizer& tok() {
    static const BpeTokenizer t = BpeTokenizer::load(kNano / "tokenizer.json");
    return t;
}
std::vector<int32_t> wiki_ids(size_t n) {
    static const std::vector<int32_t> ids = tok().encode(read_file_maybe_compressed(kShared / "data/text/wikitext-2-raw/wiki.test.raw").substr(0, 20000));
    EXPECT_GE(ids.size(), n);
    return std::vector<int32_t>(ids.begin(), ids.begin() + n);
}
const std::vector<HellaswagTask>& first_tasks() {
    static const std::vector<HellaswagTask> t = [] {
        const fs::path p = kShared / "data/eval/hellaswag_val_full.txt.bz2";
        auto all = parse_hellaswag(read_file_maybe_compressed(p), p.string());
        all.resize(20);
        return all;
    }();
    return t;
}

// log p(token) from one logits row, straight from the definition in long double.
double log_prob(const float* row, int64_t V, int32_t token) {
    long double mx = row[0], s = 0;
    for (int64_t i = 0; i < V; ++i) mx = std::max<long double>(mx, row[i]);
    for (int64_t i = 0; i < V; ++i) s += std::exp(static_cast<long double>(row[i]) - mx);
    return double(static_cast<long double>(row[token]) - mx - std::log(s));
}

}  // namespace

TEST(EvalNano, KlDivergenceOfAModelFromItselfIsZero) {
    const Qwen3Model again = Qwen3Model::load(kNano);  // a second, independent load
    const auto ids = wiki_ids(256);
    const KlDivergenceResult r = evaluate_kl_divergence(nano(), again, ids, 128, true, false);
    const KlSummary& s = r.summary;
    EXPECT_EQ(r.windows, 2);
    EXPECT_EQ(r.tokens, 256);
    EXPECT_EQ(s.count, 254);
    EXPECT_EQ(s.kld_mean, 0.0);
    EXPECT_EQ(s.kld_max, 0.0);
    EXPECT_EQ(s.top1_agreement, 100.0);
    EXPECT_EQ(s.ln_ppl_ratio, 0.0);
    EXPECT_EQ(s.ppl_base, s.ppl_model);
    // the same windows and positions as `eval ppl`
    const PerplexityResult p = evaluate_perplexity(nano(), ids, 128, true, false);
    EXPECT_EQ(p.predictions, s.count);
    EXPECT_NEAR(s.ppl_base, p.ppl, 1e-9 * p.ppl);
}

TEST(EvalNano, KlDivergenceOfA4BitModelIsSmallButPositive) {
    const Qwen3Model w4 = Qwen3Model::load(kW4);
    const auto ids = wiki_ids(256);
    const KlSummary s = evaluate_kl_divergence(nano(), w4, ids, 128, true, false).summary;
    std::printf("w4g128 vs bf16 over 254 positions: KLD %.5f ± %.5f, top-1 %.2f %%, ppl %.3f vs %.3f\n", s.kld_mean,
                s.kld_stderr, s.top1_agreement, s.ppl_model, s.ppl_base);
    EXPECT_GT(s.kld_mean, 1e-4);
    EXPECT_LT(s.kld_mean, 0.5);
    EXPECT_GT(s.kld_stderr, 0.0);
    EXPECT_LE(s.kld_median, s.kld_p99);
    EXPECT_LE(s.kld_p99, s.kld_max);
    EXPECT_GT(s.top1_agreement, 70.0);
    EXPECT_LE(s.top1_agreement, 100.0);
    EXPECT_NEAR(s.ln_ppl_ratio, std::log(s.ppl_model / s.ppl_base), 1e-9);
}

TEST(EvalNano, HellaswagIsDeterministicAndInRange) {
    const HellaswagResult a = evaluate_hellaswag(nano(), tok(), first_tasks(), false);
    const HellaswagResult b = evaluate_hellaswag(nano(), tok(), first_tasks(), false);
    std::printf("hellaswag first 20: acc %.1f %% acc_norm %.1f %% acc_llamacpp %.1f %% in %.2f s\n", a.acc, a.acc_norm,
                a.acc_llamacpp, a.seconds);
    EXPECT_EQ(a.tasks, 20);
    for (double acc : {a.acc, a.acc_norm, a.acc_llamacpp}) {
        EXPECT_GE(acc, 0.0);
        EXPECT_LE(acc, 100.0);
        EXPECT_EQ(std::fmod(acc, 5.0), 0.0);  // a multiple of 1/20
    }
    EXPECT_EQ(a.acc, b.acc);
    EXPECT_EQ(a.acc_norm, b.acc_norm);
    EXPECT_EQ(a.acc_llamacpp, b.acc_llamacpp);
    for (size_t t = 0; t < 20; ++t) {
        EXPECT_EQ(a.scores[t].loglikelihood, b.scores[t].loglikelihood) << t;
        for (int j = 0; j < 4; ++j) {
            EXPECT_LT(a.scores[t].loglikelihood[j], 0.0);
            EXPECT_GE(a.scores[t].tokens[j], 1);
        }
    }
}

TEST(EvalNano, HellaswagEndingLogProbsMatchAFullForward) {
    const int64_t V = nano().config().vocab_size;
    for (size_t t : {size_t(0), size_t(7)}) {
        const HellaswagTask& task = first_tasks()[t];
        const HellaswagTaskScore s = score_hellaswag_task(nano(), tok(), task);
        const std::vector<int32_t> ctx = tok().encode(task.context);
        std::array<std::vector<int32_t>, 4> whole;
        std::array<double, 4> ll{};
        for (int j = 0; j < 4; ++j) {
            // independent: one forward over the whole sequence, all logits, log-softmax from the definition
            whole[j] = tok().encode(task.context + " " + task.endings[j]);
            ASSERT_TRUE(std::equal(ctx.begin(), ctx.end(), whole[j].begin())) << "context tokens are a prefix";
            const int64_t L = static_cast<int64_t>(whole[j].size());
            std::vector<float> logits(L * V);
            KvCache cache = nano().make_cache();
            nano().forward(whole[j], cache, logits.data(), true);
            for (int64_t p = static_cast<int64_t>(ctx.size()); p < L; ++p)
                ll[j] += log_prob(logits.data() + (p - 1) * V, V, whole[j][p]);
            EXPECT_EQ(s.tokens[j], L - static_cast<int64_t>(ctx.size())) << "task " << t << " ending " << j;
            EXPECT_NEAR(s.loglikelihood[j], ll[j], 1e-3) << "task " << t << " ending " << j;
        }
        std::printf("task %zu: ll %.4f %.4f %.4f %.4f (independent %.4f %.4f %.4f %.4f), gold %d\n", t,
                    s.loglikelihood[0], s.loglikelihood[1], s.loglikelihood[2], s.loglikelihood[3], ll[0], ll[1],
                    ll[2], ll[3], task.gold);
        const int pred = static_cast<int>(std::max_element(ll.begin(), ll.end()) - ll.begin());
        EXPECT_EQ(s.pred, pred);
    }
}
