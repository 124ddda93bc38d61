// eval/token_windows.cpp — see token_windows.h.
#include "eval/token_windows.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "model/qwen3_model.h"

namespace autoround {

std::span<const int32_t> TokenWindows::window(int64_t w) const {
    const int64_t n = static_cast<int64_t>(ids.size()), begin = w * seqlen;
    return ids.subspan(begin, std::min(seqlen, n - begin));
}

TokenWindows plan_token_windows(std::span<const int32_t> ids, int64_t seqlen, bool drop_last_partial,
                                std::string_view what) {
    check(seqlen >= 2, what, ": --seqlen must be at least 2 (got ", seqlen, ")");
    const int64_t n = static_cast<int64_t>(ids.size());
    const int64_t full = n / seqlen;
    const bool use_partial = !drop_last_partial && n - full * seqlen >= 2;
    check(full > 0 || use_partial, what, ": the data has ", n, " tokens, fewer than one window of ", seqlen,
          "; lower --seqlen or give more text");
    return TokenWindows{ids, seqlen, full + (use_partial ? 1 : 0)};
}

void window_final_hidden(const Qwen3Model& model, std::span<const int32_t> window, std::vector<float>& hidden) {
    const int64_t H = model.config().hidden_size;
    KvCache cache = model.make_cache();
    model.forward(window, cache, nullptr, false, [&](const std::string& name, int, const float* d, int64_t T, int64_t) {
        if (name == "final_norm") hidden.assign(d, d + T * H);
    });
}

}  // namespace autoround
