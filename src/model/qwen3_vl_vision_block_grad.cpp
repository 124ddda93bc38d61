// model/qwen3_vl_vision_block_grad.cpp — see qwen3_vl_vision_block_grad.h. The forward mirrors one block of
// Qwen3VLVision::encode op by op (same LayerNorm, rotary, attention and GELU formulas, float32); q, k and v
// are kept as three planar [N, H] matrices (rows 0..H, H..2H, 2H..3H of Wqkv) so the training ops of
// ops/cpu apply unchanged. Each frame of each sample is one attention segment: the bidirectional
// attention runs on B·t "samples" of h·w rows. The backward walks the forward in reverse:
//   dWfc2 = dYᵀ·m;  dm = dY·Wfc2;  dpre = gelu'(pre)∘dm;  dWfc1 = dpreᵀ·h2
//   dX2 = dY + LN2'(dpre·Wfc1);  dWproj = dX2ᵀ·a;  da = dX2·Wproj
//   (dq, dk, dv) = attention'(da);  dq, dk through RoPE';  dWqkv = [dq | dk | dv]ᵀ·h1
//   on request: dX = dX2 + LN1'(dq·Wq + dk·Wk + dv·Wv)
#include "model/qwen3_vl_vision_block_grad.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "ops/cpu/attention_grad.h"
#include "ops/cpu/gelu_grad.h"
#include "ops/cpu/layer_norm_grad.h"
#include "ops/cpu/linear_grad.h"
#include "ops/cpu/rope_grad.h"

namespace autoround {

const char* vision_linear_name(int which) {
    static const char* names[kNumVisionLinears] = {"attn.qkv", "attn.proj", "mlp.linear_fc1", "mlp.linear_fc2"};
    check(which >= 0 && which < kNumVisionLinears, "vision block linear index ", which, " is not in [0, 4)");
    return names[which];
}

std::string vision_linear_tensor(int layer, int which, const std::string& prefix) {
    return prefix + "blocks." + std::to_string(layer) + "." + vision_linear_name(which) + ".weight";
}

std::array<int64_t, 2> vision_linear_shape(const VisionBlockDims& d, int which) {
    const int64_t H = d.hidden, I = d.intermediate;
    switch (which) {
        case kVisQkv: return {3 * H, H};
        case kVisProj: return {H, H};
        case kVisFc1: return {I, H};
        case kVisFc2: return {H, I};
        default: fail("vision block linear index ", which, " is not in [0, 4)");
    }
}

namespace {

VisionBlockDims dims_of(const Qwen3VLVisionConfig& cfg, int layer) {
    check(layer >= 0 && layer < cfg.depth, "vision block ", layer, " is out of range: the vision tower has ", cfg.depth,
          " blocks");
    check(cfg.hidden_act == "gelu_pytorch_tanh" || cfg.hidden_act == "gelu", "vision block: hidden_act '",
          cfg.hidden_act, "' is not supported; expected gelu_pytorch_tanh or gelu");
    VisionBlockDims d;
    d.hidden = cfg.hidden_size;
    d.num_heads = cfg.num_heads;
    d.intermediate = cfg.intermediate_size;
    d.ln_eps = kVisionLayerNormEps;
    d.gelu_tanh = cfg.hidden_act == "gelu_pytorch_tanh";
    return d;
}

// A float tensor of the given shape as float32 (any float dtype); errors name the tensor.
std::vector<float> load_tensor(const TensorStore& st, const std::string& name, std::vector<int64_t> shape) {
    std::string want = "[";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    want += "]";
    check(st.has(name), "vision block: tensor ", name, " is missing from the checkpoint (expected shape ", want, ")");
    const TensorInfo& t = st.get(name);
    check(t.shape == shape, "vision block: tensor ", name, " has shape ", t.shape_str(), ", expected ", want,
          " from vision_config");
    return st.load_f32(name);
}

template <typename T>
void ensure(std::vector<T>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// y[i] += x[i], i < n.
template <typename T>
void add_into(T* y, const T* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

VisionBlockConsts<float> load_vision_block_consts(const TensorStore& store, const Qwen3VLVisionConfig& cfg, int layer,
                                                  const std::string& prefix) {
    VisionBlockConsts<float> k;
    k.dims = dims_of(cfg, layer);
    const int64_t H = k.dims.hidden, I = k.dims.intermediate;
    const std::string p = prefix + "blocks." + std::to_string(layer) + ".";
    k.norm1_w = load_tensor(store, p + "norm1.weight", {H});
    k.norm1_b = load_tensor(store, p + "norm1.bias", {H});
    k.norm2_w = load_tensor(store, p + "norm2.weight", {H});
    k.norm2_b = load_tensor(store, p + "norm2.bias", {H});
    k.qkv_b = load_tensor(store, p + "attn.qkv.bias", {3 * H});
    k.proj_b = load_tensor(store, p + "attn.proj.bias", {H});
    k.fc1_b = load_tensor(store, p + "mlp.linear_fc1.bias", {I});
    k.fc2_b = load_tensor(store, p + "mlp.linear_fc2.bias", {H});
    return k;
}

std::vector<float> load_vision_block_weight(const TensorStore& store, const Qwen3VLVisionConfig& cfg, int layer,
                                            int which, const std::string& prefix) {
    const auto shape = vision_linear_shape(dims_of(cfg, layer), which);
    return load_tensor(store, vision_linear_tensor(layer, which, prefix), {shape[0], shape[1]});
}

VisionBlockConsts<double> vision_consts_to_double(const VisionBlockConsts<float>& c) {
    auto cv = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    VisionBlockConsts<double> d;
    d.dims = c.dims;
    d.norm1_w = cv(c.norm1_w);
    d.norm1_b = cv(c.norm1_b);
    d.norm2_w = cv(c.norm2_w);
    d.norm2_b = cv(c.norm2_b);
    d.qkv_b = cv(c.qkv_b);
    d.proj_b = cv(c.proj_b);
    d.fc1_b = cv(c.fc1_b);
    d.fc2_b = cv(c.fc2_b);
    return d;
}

template <typename T>
VisionBlockGrad<T>::VisionBlockGrad(VisionBlockConsts<T> consts, ImageGrid grid, std::vector<float> rope_cos,
                                    std::vector<float> rope_sin)
    : c_(std::move(consts)), grid_(grid) {
    const VisionBlockDims& d = c_.dims;
    check(d.hidden > 0 && d.num_heads > 0 && d.intermediate > 0, "vision block: empty dimension (hidden ", d.hidden,
          ", heads ", d.num_heads, ", intermediate ", d.intermediate, ")");
    check(d.hidden % d.num_heads == 0 && d.head_dim() % 4 == 0, "vision block: hidden ", d.hidden, " / heads ",
          d.num_heads, " must give a head_dim that is a multiple of 4 (2-D rotary)");
    const int64_t H = d.hidden, I = d.intermediate;
    auto has = [](const std::vector<T>& v, int64_t n) { return static_cast<int64_t>(v.size()) == n; };
    check(has(c_.norm1_w, H) && has(c_.norm1_b, H) && has(c_.norm2_w, H) && has(c_.norm2_b, H),
          "vision block: norm1/norm2 weight and bias must have hidden = ", H, " entries");
    check(has(c_.qkv_b, 3 * H) && has(c_.proj_b, H) && has(c_.fc1_b, I) && has(c_.fc2_b, H),
          "vision block: biases must have [3H, H, I, H] = [", 3 * H, ", ", H, ", ", I, ", ", H, "] entries");
    check(grid.t >= 1 && grid.h >= 1 && grid.w >= 1, "vision block: grid (t=", grid.t, ", h=", grid.h, ", w=", grid.w,
          ") must have t, h, w >= 1");
    L_ = int64_t(grid.t) * grid.h * grid.w;
    const int64_t half = d.head_dim() / 2;
    check(static_cast<int64_t>(rope_cos.size()) == L_ * half && static_cast<int64_t>(rope_sin.size()) == L_ * half,
          "vision block: rotary tables hold ", rope_cos.size(), " (cos) and ", rope_sin.size(),
          " (sin) entries, but the grid (t=", grid.t, ", h=", grid.h, ", w=", grid.w, ") needs t·h·w·head_dim/2 = ",
          L_, "·", half, " = ", L_ * half, " each (tables of another grid?)");
    cos_.assign(rope_cos.begin(), rope_cos.end());
    sin_.assign(rope_sin.begin(), rope_sin.end());
}

template <typename T>
void VisionBlockGrad<T>::forward(const T* X, int64_t B, int64_t L, const Weights& W, T* Y) {
    const VisionBlockDims& d = c_.dims;
    check(B > 0, "vision block forward: empty batch B=", B);
    check(L == L_, "vision block forward: L = ", L, " rows per sample, but the grid (t=", grid_.t, ", h=", grid_.h,
          ", w=", grid_.w, ") has t·h·w = ", L_);
    for (int i = 0; i < kNumVisionLinears; ++i)
        check(W[i] != nullptr, "vision block forward: weight ", vision_linear_name(i), " is missing");
    const int64_t N = B * L, H = d.hidden, nh = d.num_heads, D = d.head_dim(), I = d.intermediate;
    const T eps = static_cast<T>(d.ln_eps);
    B_ = B;
    W_ = W;
    X_ = X;
    backward_ready_ = true;
    ensure(h1_, N * H);
    ensure(mean1_, N);
    ensure(rstd1_, N);
    ensure(qkv_, 3 * N * H);
    ensure(att_, N * H);
    ensure(lse_, N * nh);
    ensure(x2_, N * H);
    ensure(mean2_, N);
    ensure(rstd2_, N);
    ensure(h2_, N * H);
    ensure(pre_, N * I);
    ensure(act_, N * I);

    // attention half: q, k, v planar [N, H] each (heads of D contiguous in a row)
    layer_norm_forward_train<T>(X, c_.norm1_w.data(), c_.norm1_b.data(), N, H, eps, h1_.data(), mean1_.data(),
                                rstd1_.data());
    T* q = qkv_.data();
    T* k = q + N * H;
    T* v = k + N * H;
    for (int part = 0; part < 3; ++part)
        linear_forward<T>(h1_.data(), N, W[kVisQkv] + part * H * H, H, H, c_.qkv_b.data() + part * H,
                          q + part * N * H);
    rope_forward<T>(q, B, L, nh, D, cos_.data(), sin_.data());
    rope_forward<T>(k, B, L, nh, D, cos_.data(), sin_.data());
    attention_train_forward<T>(q, k, v, attn_shape(), att_.data(), lse_.data());
    linear_forward<T>(att_.data(), N, W[kVisProj], H, H, c_.proj_b.data(), x2_.data());
    add_into(x2_.data(), X, N * H);

    // MLP half
    layer_norm_forward_train<T>(x2_.data(), c_.norm2_w.data(), c_.norm2_b.data(), N, H, eps, h2_.data(),
                                mean2_.data(), rstd2_.data());
    linear_forward<T>(h2_.data(), N, W[kVisFc1], I, H, c_.fc1_b.data(), pre_.data());
    gelu_forward<T>(pre_.data(), N * I, d.gelu_tanh, act_.data());
    linear_forward<T>(act_.data(), N, W[kVisFc2], H, I, c_.fc2_b.data(), Y);
    add_into(Y, x2_.data(), N * H);
}

template <typename T>
void VisionBlockGrad<T>::backward(const T* dY, const Grads& dW, bool accumulate, T* dX) {
    check(backward_ready_, "vision block backward: call forward first (once per forward)");
    const VisionBlockDims& d = c_.dims;
    const int64_t B = B_, L = L_, N = B * L, H = d.hidden, nh = d.num_heads, D = d.head_dim(), I = d.intermediate;
    ensure(dI_, N * I);
    ensure(dH_, N * H);
    ensure(dA_, N * H);
    ensure(dQKV_, 3 * N * H);
    auto weight_grad = [&](T* dw, const T* dy, const T* x, int64_t out, int64_t in) {
        if (dw) linear_backward_weight<T>(dy, x, N, out, in, dw, accumulate);
    };

    // MLP: Y = X2 + gelu(pre)·Wfc2ᵀ + b, pre = h2·Wfc1ᵀ + b
    weight_grad(dW[kVisFc2], dY, act_.data(), H, I);
    linear_backward_input<T>(dY, W_[kVisFc2], N, H, I, dI_.data(), false);  // d act
    gelu_backward<T>(pre_.data(), dI_.data(), N * I, d.gelu_tanh, dI_.data());  // d pre
    weight_grad(dW[kVisFc1], dI_.data(), h2_.data(), I, H);
    linear_backward_input<T>(dI_.data(), W_[kVisFc1], N, I, H, dH_.data(), false);  // d h2
    layer_norm_backward<T>(x2_.data(), c_.norm2_w.data(), mean2_.data(), rstd2_.data(), dH_.data(), N, H, dH_.data(),
                           false);
    T* dX2 = dH_.data();
    add_into(dX2, dY, N * H);  // residual; dY is not read after this

    // attention: X2 = X + att·Wprojᵀ + b
    weight_grad(dW[kVisProj], dX2, att_.data(), H, H);
    linear_backward_input<T>(dX2, W_[kVisProj], N, H, H, dA_.data(), false);
    const T* q = qkv_.data();
    T* dq = dQKV_.data();
    T* dk = dq + N * H;
    T* dv = dk + N * H;
    attention_train_backward<T>(q, q + N * H, q + 2 * N * H, att_.data(), lse_.data(), dA_.data(), attn_shape(), dq,
                                dk, dv);
    rope_backward<T>(dq, B, L, nh, D, cos_.data(), sin_.data());
    rope_backward<T>(dk, B, L, nh, D, cos_.data(), sin_.data());
    if (dW[kVisQkv])  // rows [q | k | v] of Wqkv
        for (int part = 0; part < 3; ++part)
            weight_grad(dW[kVisQkv] + part * H * H, dq + part * N * H, h1_.data(), H, H);
    if (dX) {
        // d h1 = dq·Wq + dk·Wk + dv·Wv into dX (dY is no longer read, so dX may alias it); then through
        // LayerNorm 1, plus the residual path dX2.
        for (int part = 0; part < 3; ++part)
            linear_backward_input<T>(dq + part * N * H, W_[kVisQkv] + part * H * H, N, H, H, dX, part > 0);
        layer_norm_backward<T>(X_, c_.norm1_w.data(), mean1_.data(), rstd1_.data(), dX, N, H, dX, false);
        add_into(dX, dX2, N * H);
    }
    backward_ready_ = false;
}

template <typename T>
AttnTrainShape VisionBlockGrad<T>::attn_shape() const {
    // every frame of every sample is one bidirectional segment of h·w rows
    const int64_t nh = c_.dims.num_heads;
    return AttnTrainShape{B_ * grid_.t, int64_t(grid_.h) * grid_.w, nh, nh, c_.dims.head_dim(), false};
}

template class VisionBlockGrad<float>;
template class VisionBlockGrad<double>;

}  // namespace autoround
