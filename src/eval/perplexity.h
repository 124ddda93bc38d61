// eval/perplexity.h — perplexity over non-overlapping windows of a token stream.
// Each window of `seqlen` tokens is scored independently (no context carried across windows,
// no BOS): mean NLL of tokens 1..seqlen-1 given the tokens before them. ppl = exp(mean NLL over all
// predictions). A final partial window is used only if it has at least 2 tokens and
// `drop_last_partial` is false. The windowing is shared with `eval kld` (eval/token_windows.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace autoround {

class Qwen3Model;

struct PerplexityResult {
    double ppl = 0;
    double mean_nll = 0;
    int64_t windows = 0;
    int64_t tokens = 0;       // tokens fed through the model
    int64_t predictions = 0;  // scored positions
    double seconds = 0;
    std::vector<double> window_mean_nll;
};

PerplexityResult evaluate_perplexity(const Qwen3Model& model, std::span<const int32_t> ids, int64_t seqlen,
                                     bool drop_last_partial = true, bool show_progress = true);

// Σ over t < len − 1 of NLL(window[t + 1] | window[0..t]) for one window scored from an empty context: how another
// runtime plugs in (the GPU's CudaDecoder::window_nll).
using WindowNllFn = std::function<double(std::span<const int32_t> window)>;
PerplexityResult evaluate_perplexity(const WindowNllFn& window_nll, std::span<const int32_t> ids, int64_t seqlen,
                                     bool drop_last_partial = true, bool show_progress = true);

// NLL of `target` under float32 logits, computed with a float64 log-sum-exp.
double token_nll(std::span<const float> logits, int32_t target);

}  // namespace autoround
