// eval/perplexity.cpp — see perplexity.h.
#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/progress_bar.h"
#include "eval/token_windows.h"
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
    const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
    std::vector<float> hidden;                 // [len, H]
    std::vector<float> logits(kLogitRows * V);  // [kLogitRows, V]
    const WindowNllFn cpu = [&](std::span<const int32_t> win) {
        const int64_t len = static_cast<int64_t>(win.size());
        window_final_hidden(model, win, hidden);
        double wsum = 0;
        for (int64_t r0 = 0; r0 < len - 1; r0 += kLogitRows) {
            const int64_t nr = std::min(kLogitRows, len - 1 - r0);
            model.lm_head(hidden.data() + r0 * H, nr, logits.data());
            for (int64_t i = 0; i < nr; ++i)
                wsum += token_nll(std::span<const float>(logits.data() + i * V, V), win[r0 + i + 1]);
        }
        return wsum;
    };
    return evaluate_perplexity(cpu, ids, seqlen, drop_last_partial, show_progress);
}

PerplexityResult evaluate_perplexity(const WindowNllFn& window_nll, std::span<const int32_t> ids, int64_t seqlen,
                                     bool drop_last_partial, bool show_progress) {
    const TokenWindows windows = plan_token_windows(ids, seqlen, drop_last_partial, "perplexity");
    PerplexityResult r;
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar("ppl", windows.count, "win");
    double nll_sum = 0;
    for (int64_t w = 0; w < windows.count; ++w) {
        const auto win = windows.window(w);
        const int64_t len = static_cast<int64_t>(win.size());
        const double wsum = window_nll(win);
        r.window_mean_nll.push_back(wsum / double(len - 1));
        nll_sum += wsum;
        r.predictions += len - 1;
        r.tokens += len;
        if (show_progress) bar.update(w + 1, "ppl " + std::to_string(std::exp(nll_sum / double(r.predictions))));
    }
    if (show_progress) bar.finish();
    r.windows = windows.count;
    r.mean_nll = nll_sum / double(r.predictions);
    r.ppl = std::exp(r.mean_nll);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace autoround
