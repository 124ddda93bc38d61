// eval/token_windows.h — the non-overlapping windows of a token stream that `eval ppl` and
// `eval kld` score, and the final hidden states of one window.
//
// Why a file of its own: perplexity and KL divergence must score exactly the same positions, so the
// windowing lives in one place. Window w is ids[w*seqlen, min((w+1)*seqlen, n)); each is run from an
// empty KV cache (no context carried across windows, no BOS) and positions 1..len-1 are scored, each
// from the logits of the position before it. A final partial window is used only if it has at least 2
// tokens and `drop_last_partial` is false.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace autoround {

class Qwen3Model;

// Rows per lm_head call when scoring a window: bounds the logits buffer to kLogitRows × vocab floats.
inline constexpr int64_t kLogitRows = 32;

struct TokenWindows {
    std::span<const int32_t> ids;  // the whole stream [n]
    int64_t seqlen = 0;
    int64_t count = 0;             // windows to score (full ones, plus the partial one if used)

    std::span<const int32_t> window(int64_t w) const;  // [len], len = seqlen except maybe the last
};

// Plans the windows; `what` prefixes the errors (e.g. "perplexity"). Errors when --seqlen < 2 or
// when the stream is shorter than one window.
TokenWindows plan_token_windows(std::span<const int32_t> ids, int64_t seqlen, bool drop_last_partial,
                                std::string_view what);

// Runs one window through `model` from an empty cache; `hidden` becomes the final-norm hidden
// states [len, hidden_size] (feed row r to lm_head to get the logits that predict token r+1).
void window_final_hidden(const Qwen3Model& model, std::span<const int32_t> window, std::vector<float>& hidden);

}  // namespace autoround
