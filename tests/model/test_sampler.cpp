// tests/model/test_sampler.cpp — sampling follows transformers' order and semantics.
#include <gtest/gtest.h>

#include <map>
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
