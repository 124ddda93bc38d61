// eval/perplexity.cpp — see perplexity.h.
#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/progress_bar.h"
#include "model/qwen3_model.h"

namespace autoround {

double token_nll(std::span<const float> logits, int32_t target) {
    float mx = -INFINITY;
    for (float l : logits) mx = std::max(mx, l);
    double s = 0;
    for (float l : logits) s += std::exp(double(l) - mx);
    return std::log(s) + mx - double(logits[target]);
}

PerplexityResult evaluate_perplexity(const Qwen3Model& model, std::span<const int32_t> ids, int64_t seqlen,
                                     bool drop_last_partial, bool show_progress) {
    check(seqlen >= 2, "perplexity: --seqlen must be at least 2 (got ", seqlen, ")");
    const int64_t n = static_cast<int64_t>(ids.size());
    int64_t windows = n / seqlen;
    const int64_t rest = n - windows * seqlen;
    const bool use_partial = !drop_last_partial && rest >= 2;
    check(windows > 0 || use_partial, "perplexity: the data has ", n, " tokens, fewer than one window of ", seqlen,
          "; lower --seqlen or give more text");
    const int64_t total_windows = windows + (use_partial ? 1 : 0);
    const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
    PerplexityResult r;
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar("ppl", total_windows, "win");
    double nll_sum = 0;
    std::vector<float> hidden;
    constexpr int64_t kRows = 32;
    std::vector<float> logits(kRows * V);
    for (int64_t w = 0; w < total_windows; ++w) {
        const int64_t begin = w * seqlen, len = std::min(seqlen, n - begin);
        auto win = ids.subspan(begin, len);
        KvCache cache = model.make_cache();
        model.forward(win, cache, nullptr, false, [&](const std::string& name, int, const float* d, int64_t T, int64_t) {
            if (name == "final_norm") hidden.assign(d, d + T * H);
        });
        double wsum = 0;
        for (int64_t r0 = 0; r0 < len - 1; r0 += kRows) {
            const int64_t nr = std::min(kRows, len - 1 - r0);
            model.lm_head(hidden.data() + r0 * H, nr, logits.data());
            for (int64_t i = 0; i < nr; ++i)
                wsum += token_nll(std::span<const float>(logits.data() + i * V, V), win[r0 + i + 1]);
        }
        r.window_mean_nll.push_back(wsum / double(len - 1));
        nll_sum += wsum;
        r.predictions += len - 1;
        r.tokens += len;
        if (show_progress) bar.update(w + 1, "ppl " + std::to_string(std::exp(nll_sum / double(r.predictions))));
    }
    if (show_progress) bar.finish();
    r.windows = total_windows;
    r.mean_nll = nll_sum / double(r.predictions);
    r.ppl = std::exp(r.mean_nll);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace autoround
