// model/sampler.h — next-token choice from float32 logits, in transformers' order:
// repetition penalty -> temperature -> top-k (ties at the threshold kept) -> top-p (smallest set
// with cumulative probability > 1 - p dropped from the bottom, top token always kept) -> min-p
// -> softmax -> multinomial draw. temperature 0 (or greedy=true) means argmax.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace autoround {

struct SamplingParams {
    bool greedy = true;
    float temperature = 1.0f;
    int top_k = 0;              // 0 = off
    float top_p = 1.0f;         // 1 = off
    float min_p = 0.0f;         // 0 = off
    float repetition_penalty = 1.0f;
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
    // logits [vocab] (modified in place); history = all ids so far (prompt included).
    int32_t sample(std::span<float> logits, std::span<const int32_t> history);

    static int32_t argmax(std::span<const float> logits);

    // Whether sample() is random with a top-k stage: then sample_candidates() on the top-k candidates gives what
    // sample() gives on the whole logits (e.g. candidates selected on a GPU, ops/cuda/decode_ops.h topk_candidates).
    bool top_k_on_candidates() const;
    // sample() from its top-k stage on: idx = every id whose (penalised, temperature-scaled) logit is ≥ the k-th
    // largest and not −∞, in ascending id order, val = those logits. Consumes the random stream as sample() does.
    int32_t sample_candidates(std::span<const int32_t> idx, std::span<const float> val);

    const SamplingParams& params() const { return p_; }

private:
    int32_t draw(std::span<const int32_t> idx, std::span<const float> val);

    SamplingParams p_;
    std::mt19937_64 rng_;
};

}  // namespace autoround
