// model/sampler.cpp — see sampler.h.
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace autoround {

int32_t Sampler::argmax(std::span<const float> logits) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
    const int64_t V = static_cast<int64_t>(logits.size());
    if (p_.repetition_penalty != 1.0f) {
        std::vector<bool> seen(V, false);
        for (int32_t id : history)
            if (id >= 0 && id < V) seen[id] = true;
        for (int64_t i = 0; i < V; ++i)
            if (seen[i]) logits[i] = logits[i] > 0 ? logits[i] / p_.repetition_penalty : logits[i] * p_.repetition_penalty;
    }
    if (p_.greedy || p_.temperature <= 0.0f) return argmax(logits);
    for (float& l : logits) l /= p_.temperature;

    if (p_.top_k > 0 && p_.top_k < V) {
        std::vector<float> tmp(logits.begin(), logits.end());
        std::nth_element(tmp.begin(), tmp.begin() + (p_.top_k - 1), tmp.end(), std::greater<float>());
        const float kth = tmp[p_.top_k - 1];
        for (float& l : logits)
            if (l < kth) l = -INFINITY;
    }
    // The candidates in index order.
    std::vector<int32_t> idx;
    std::vector<float> val;
    for (int64_t i = 0; i < V; ++i)
        if (logits[i] != -INFINITY) {
            idx.push_back(static_cast<int32_t>(i));
            val.push_back(logits[i]);
        }
    return draw(idx, val);
}

bool Sampler::top_k_on_candidates() const {
    return !(p_.greedy || p_.temperature <= 0.0f) && p_.top_k > 0;
}

int32_t Sampler::sample_candidates(std::span<const int32_t> idx, std::span<const float> val) {
    return draw(idx, val);
}

int32_t Sampler::draw(std::span<const int32_t> idx_in, std::span<const float> val) {
    // Candidates sorted by descending logit (positions j into idx_in / val: the same comparisons, hence the same
    // order, as sorting the indices by their logits).
    std::vector<int32_t> order(idx_in.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return val[size_t(a)] > val[size_t(b)]; });
    const float mx = val[size_t(order[0])];
    std::vector<double> prob(order.size());
    double sum = 0;
    for (size_t i = 0; i < order.size(); ++i) sum += prob[i] = std::exp(double(val[size_t(order[i])] - mx));
    for (double& p : prob) p /= sum;
    size_t keep = order.size();
    if (p_.top_p < 1.0f) {
        // transformers: sort ascending, drop tokens whose cumulative probability <= 1 - top_p.
        // Equivalently, from the top: keep the shortest prefix whose tail mass is < ... computed exactly:
        double cum_from_bottom = 0;
        size_t drop = 0;
        for (size_t i = order.size(); i-- > 1;) {  // never drop the top token
            cum_from_bottom += prob[i];
            if (cum_from_bottom <= 1.0 - p_.top_p) ++drop;
            else break;
        }
        keep = order.size() - drop;
    }
    if (p_.min_p > 0.0f) {
        const double thr = prob[0] * p_.min_p;
        size_t k = 1;
        while (k < keep && prob[k] >= thr) ++k;
        keep = k;
    }
    double s = 0;
    for (size_t i = 0; i < keep; ++i) s += prob[i];
    std::uniform_real_distribution<double> uni(0.0, s);
    double r = uni(rng_), c = 0;
    for (size_t i = 0; i < keep; ++i) {
        c += prob[i];
        if (r < c) return idx_in[size_t(order[i])];
    }
    return idx_in[size_t(order[keep - 1])];
}

}  // namespace autoround
