// tests/model/test_sampler.cpp — sampling follows transformers' order and semantics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "model/sampler.h"

using namespace autoround;

TEST(Sampler, GreedyIsArgmaxAndTemperatureZeroIsGreedy) {
    std::vector<float> l = {0.1f, 3.0f, -1.0f, 2.9f};
    SamplingParams p;
    p.greedy = false;
    p.temperature = 0.0f;
    Sampler s(p);
    EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, TopKOneIsGreedy) {
    SamplingParams p;
    p.greedy = false;
    p.top_k = 1;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        p.seed = seed;
        Sampler s(p);
        std::vector<float> l = {0.1f, 3.0f, -1.0f, 2.9f};
        EXPECT_EQ(s.sample(l, {}), 1);
    }
}

TEST(Sampler, TopPKeepsSmallestSetAboveMass) {
    // probs ≈ softmax(log p): p = {0.5, 0.3, 0.15, 0.05}; top_p = 0.75 keeps {0, 1} (0.5 + 0.3 >= 0.75)
    SamplingParams p;
    p.greedy = false;
    p.top_p = 0.75f;
    std::map<int, int> seen;
    for (uint64_t seed = 0; seed < 400; ++seed) {
        p.seed = seed;
        Sampler s(p);
        std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
        ++seen[s.sample(l, {})];
    }
    EXPECT_EQ(seen.count(2), 0u);
    EXPECT_EQ(seen.count(3), 0u);
    EXPECT_GT(seen[0], seen[1]);
    EXPECT_GT(seen[1], 50);
}

TEST(Sampler, SameSeedSameSequence) {
    SamplingParams p;
    p.greedy = false;
    p.seed = 42;
    Sampler a(p), b(p);
    for (int i = 0; i < 50; ++i) {
        std::vector<float> l1 = {1, 2, 3, 2.5f, 0}, l2 = l1;
        EXPECT_EQ(a.sample(l1, {}), b.sample(l2, {}));
    }
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
    SamplingParams p;
    p.repetition_penalty = 2.0f;
    Sampler s(p);
    std::vector<float> l = {4.0f, 3.0f, -1.0f};
    const int32_t hist[] = {0, 2};
    EXPECT_EQ(s.sample(l, hist), 1);  // 4 -> 2 < 3
    EXPECT_FLOAT_EQ(l[0], 2.0f);
    EXPECT_FLOAT_EQ(l[2], -2.0f);
}

// sample_candidates() on the top-k candidates (selected here the way ops/cuda/decode_ops.h topk_candidates does:
// penalty, temperature, then every logit ≥ the k-th largest, in id order) draws what sample() draws on the whole
// logits, seed by seed: random logits with many exact ties, with and without penalty, top-p and min-p.
TEST(Sampler, CandidatesGiveTheSameDrawsAsTheWholeLogits) {
    std::mt19937 g(5);
    std::uniform_int_distribution<int> level(-40, 40);
    int checked = 0;
    for (int trial = 0; trial < 60; ++trial) {
        const int V = 50 + trial * 13;
        std::vector<float> logits(static_cast<size_t>(V));
        for (float& l : logits) l = 0.25f * float(level(g));  // coarse levels: ties at the k-th value are common
        std::vector<int32_t> history = {1, 7, 7, 30};
        SamplingParams p;
        p.greedy = false;
        p.temperature = trial % 3 == 0 ? 1.0f : 0.7f;
        p.top_k = 1 + trial % 25;
        p.top_p = trial % 2 ? 0.8f : 1.0f;
        p.min_p = trial % 5 == 0 ? 0.05f : 0.0f;
        p.repetition_penalty = trial % 4 == 0 ? 1.0f : 1.1f;
        for (uint64_t seed = 0; seed < 8; ++seed) {
            p.seed = seed;
            Sampler whole(p), cand(p);
            ASSERT_TRUE(cand.top_k_on_candidates());
            std::vector<float> l = logits;
            // the candidates
            std::vector<bool> seen(static_cast<size_t>(V), false);
            for (int32_t id : history) seen[size_t(id)] = true;
            std::vector<float> t = logits;
            for (int i = 0; i < V; ++i) {
                if (p.repetition_penalty != 1.0f && seen[size_t(i)])
                    t[size_t(i)] = t[size_t(i)] > 0 ? t[size_t(i)] / p.repetition_penalty : t[size_t(i)] * p.repetition_penalty;
                t[size_t(i)] /= p.temperature;
            }
            std::vector<float> sorted = t;
            std::sort(sorted.begin(), sorted.end(), std::greater<float>());
            const float kth = sorted[size_t(std::min(p.top_k, V) - 1)];
            std::vector<int32_t> idx;
            std::vector<float> val;
            for (int i = 0; i < V; ++i)
                if (t[size_t(i)] >= kth && t[size_t(i)] != -INFINITY) {
                    idx.push_back(i);
                    val.push_back(t[size_t(i)]);
                }
            for (int step = 0; step < 3; ++step) {  // the random stream advances the same way
                std::vector<float> lw = logits;
                ASSERT_EQ(whole.sample(lw, history), cand.sample_candidates(idx, val))
                    << "trial " << trial << " seed " << seed << " step " << step;
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, 60 * 8 * 3);
}
