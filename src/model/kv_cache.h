// model/kv_cache.h — per-layer key/value cache for incremental decoding (float32).
// K is cached after q/k-norm and RoPE. Slot s of layer l holds [n_kv_heads, head_dim].
#pragma once

#include <cstdint>
#include <vector>

namespace autoround {

class KvCache {
public:
    KvCache(int n_layers, int64_t n_kv_heads, int64_t head_dim)
        : k_(n_layers), v_(n_layers), stride_(n_kv_heads * head_dim) {}

    int64_t size() const { return len_; }        // filled slots
    int64_t stride() const { return stride_; }   // floats per slot
    // Makes room for `extra` more slots in every layer (contents kept).
    void reserve(int64_t extra) {
        const size_t need = static_cast<size_t>((len_ + extra) * stride_);
        for (auto& b : k_) if (b.size() < need) b.resize(need);
        for (auto& b : v_) if (b.size() < need) b.resize(need);
    }
    float* k(int layer) { return k_[layer].data(); }   // [capacity, n_kv_heads, head_dim]
    float* v(int layer) { return v_[layer].data(); }
    void advance(int64_t n) { len_ += n; }
    void clear() { len_ = 0; pos_delta_ = 0; }
    // RoPE position of slot s = s + position_delta(). 0 for text models; Qwen3-VL sets it after a prefill
    // with images (rope_delta of get_rope_index, qwen3-architecture.md §2.4e) so decode positions continue.
    int64_t position_delta() const { return pos_delta_; }
    void set_position_delta(int64_t d) { pos_delta_ = d; }

private:
    std::vector<std::vector<float>> k_, v_;
    int64_t stride_;
    int64_t len_ = 0;
    int64_t pos_delta_ = 0;
};

}  // namespace autoround
