// model/qwen3_block_grad.cpp — see qwen3_block_grad.h. The forward mirrors Qwen3Model::forward op by
// op (same norm/rope/swiglu formulas, float32); the backward walks it in reverse:
//   dWdown = dYᵀ·m;  dm = dY·Wdown;  (dg, du) = swiglu'(dm);  dWgate = dgᵀ·h2, dWup = duᵀ·h2
//   dX2 = dY + RMSNorm'(dg·Wgate + du·Wup);  dWo = dX2ᵀ·a;  da = dX2·Wo
//   (dq, dk, dv) = attention'(da);  dWv = dvᵀ·h1;  dq, dk through RoPE' and q/k-norm'
//   dWq = dqᵀ·h1, dWk = dkᵀ·h1
//   on request: dX = dX2 + RMSNorm_in'(dq·Wq + dk·Wk + dv·Wv)   (dq, dk before q/k-norm: wrt the linears' outputs)
#include "model/qwen3_block_grad.h"

#include <chrono>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "model/qwen3_model.h"
#include "ops/cpu/activation_grad.h"
#include "ops/cpu/attention_grad.h"
#include "ops/cpu/linear_grad.h"
#include "ops/cpu/norm_grad.h"
#include "ops/cpu/rope.h"
#include "ops/cpu/rope_grad.h"

namespace autoround {

const char* block_linear_name(int which) {
    static const char* names[kNumBlockLinears] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                  "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                  "mlp.down_proj"};
    check(which >= 0 && which < kNumBlockLinears, "block linear index ", which, " is not in [0, 7)");
    return names[which];
}

std::string block_linear_tensor(int layer, int which, const std::string& text_prefix) {
    return text_prefix + "layers." + std::to_string(layer) + "." + block_linear_name(which) + ".weight";
}

std::array<int64_t, 2> block_linear_shape(const Qwen3BlockDims& d, int which) {
    const int64_t H = d.hidden, QD = d.n_q_heads * d.head_dim, KD = d.n_kv_heads * d.head_dim, I = d.intermediate;
    switch (which) {
        case kLinQ: return {QD, H};
        case kLinK: return {KD, H};
        case kLinV: return {KD, H};
        case kLinO: return {H, QD};
        case kLinGate: return {I, H};
        case kLinUp: return {I, H};
        case kLinDown: return {H, I};
        default: fail("block linear index ", which, " is not in [0, 7)");
    }
}

namespace {

std::vector<float> load_vector(const TensorStore& st, const std::string& name, int64_t n) {
    const TensorInfo& t = st.get(name);
    check(t.shape.size() == 1 && t.shape[0] == n, "tensor ", name, " has shape ", t.shape_str(), ", expected [", n,
          "]");
    return st.load_f32(name);
}

template <typename T>
void ensure(std::vector<T>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

}  // namespace

Qwen3BlockConsts<float> load_block_consts(const Qwen3Model& model, int layer) {
    const ModelConfig& c = model.config();
    check(layer >= 0 && layer < c.num_hidden_layers, "layer ", layer, " is out of range: the model has ",
          c.num_hidden_layers, " layers");
    const TensorStore& st = model.tensors();
    Qwen3BlockConsts<float> k;
    Qwen3BlockDims& d = k.dims;
    d.hidden = c.hidden_size;
    d.n_q_heads = c.num_attention_heads;
    d.n_kv_heads = c.num_key_value_heads;
    d.head_dim = c.head_dim;
    d.intermediate = c.intermediate_size;
    d.rms_eps = c.rms_norm_eps;
    d.qk_norm = c.qk_norm;
    const std::string p = c.text_prefix + "layers." + std::to_string(layer) + ".";  // Qwen3-VL: model.language_model.
    k.input_norm = load_vector(st, p + "input_layernorm.weight", d.hidden);
    k.post_attn_norm = load_vector(st, p + "post_attention_layernorm.weight", d.hidden);
    if (d.qk_norm) {
        k.q_norm = load_vector(st, p + "self_attn.q_norm.weight", d.head_dim);
        k.k_norm = load_vector(st, p + "self_attn.k_norm.weight", d.head_dim);
    }
    if (c.attention_bias || st.has(p + "self_attn.q_proj.bias")) {
        k.q_bias = load_vector(st, p + "self_attn.q_proj.bias", d.n_q_heads * d.head_dim);
        k.k_bias = load_vector(st, p + "self_attn.k_proj.bias", d.n_kv_heads * d.head_dim);
        k.v_bias = load_vector(st, p + "self_attn.v_proj.bias", d.n_kv_heads * d.head_dim);
    }
    k.inv_freq = rope_inv_freq(c.rope, c.head_dim);
    return k;
}

std::vector<float> load_block_weight(const Qwen3Model& model, int layer, int which) {
    const ModelConfig& c = model.config();
    check(layer >= 0 && layer < c.num_hidden_layers, "layer ", layer, " is out of range: the model has ",
          c.num_hidden_layers, " layers");
    Qwen3BlockDims d;
    d.hidden = c.hidden_size;
    d.n_q_heads = c.num_attention_heads;
    d.n_kv_heads = c.num_key_value_heads;
    d.head_dim = c.head_dim;
    d.intermediate = c.intermediate_size;
    const auto shape = block_linear_shape(d, which);
    const std::string name = block_linear_tensor(layer, which, c.text_prefix);
    const TensorInfo& t = model.tensors().get(name);
    check(t.shape.size() == 2 && t.shape[0] == shape[0] && t.shape[1] == shape[1], "tensor ", name, " has shape ",
          t.shape_str(), ", expected [", shape[0], ", ", shape[1], "] from config.json");
    return model.tensors().load_f32(name);
}

Qwen3BlockConsts<double> consts_to_double(const Qwen3BlockConsts<float>& c) {
    auto cv = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    Qwen3BlockConsts<double> d;
    d.dims = c.dims;
    d.input_norm = cv(c.input_norm);
    d.post_attn_norm = cv(c.post_attn_norm);
    d.q_norm = cv(c.q_norm);
    d.k_norm = cv(c.k_norm);
    d.q_bias = cv(c.q_bias);
    d.k_bias = cv(c.k_bias);
    d.v_bias = cv(c.v_bias);
    d.inv_freq = c.inv_freq;
    return d;
}

void BlockOpProfile::add(const char* op, double s) {
    for (auto& [name, v] : seconds)
        if (name == op) {
            v += s;
            return;
        }
    seconds.emplace_back(op, s);
}

double BlockOpProfile::total() const {
    double t = 0;
    for (const auto& e : seconds) t += e.second;
    return t;
}

namespace {
// Adds the time since the previous lap to the profile under prefix + name (no-op without a profile).
class Lap {
public:
    Lap(BlockOpProfile* p, const char* prefix) : p_(p), prefix_(prefix), t_(std::chrono::steady_clock::now()) {}
    void operator()(const char* name) {
        if (!p_) return;
        const auto now = std::chrono::steady_clock::now();
        p_->add((prefix_ + name).c_str(), std::chrono::duration<double>(now - t_).count());
        t_ = now;
    }

private:
    BlockOpProfile* p_;
    std::string prefix_;
    std::chrono::steady_clock::time_point t_;
};
}  // namespace

template <typename T>
Qwen3BlockGrad<T>::Qwen3BlockGrad(Qwen3BlockConsts<T> consts) : c_(std::move(consts)) {
    const Qwen3BlockDims& d = c_.dims;
    check(d.hidden > 0 && d.n_q_heads > 0 && d.n_kv_heads > 0 && d.head_dim > 0 && d.intermediate > 0,
          "Qwen3 block: empty dimension (hidden ", d.hidden, ", heads ", d.n_q_heads, "/", d.n_kv_heads,
          ", head_dim ", d.head_dim, ", intermediate ", d.intermediate, ")");
    check(d.n_q_heads % d.n_kv_heads == 0, "Qwen3 block: ", d.n_q_heads, " query heads are not a multiple of ",
          d.n_kv_heads, " kv heads");
    check(d.head_dim % 2 == 0, "Qwen3 block: head_dim ", d.head_dim, " must be even (RoPE)");
    check(static_cast<int64_t>(c_.input_norm.size()) == d.hidden &&
              static_cast<int64_t>(c_.post_attn_norm.size()) == d.hidden,
          "Qwen3 block: norm weights must have ", d.hidden, " entries");
    check(!d.qk_norm || (static_cast<int64_t>(c_.q_norm.size()) == d.head_dim &&
                         static_cast<int64_t>(c_.k_norm.size()) == d.head_dim),
          "Qwen3 block: q_norm/k_norm must have head_dim = ", d.head_dim, " entries");
    check(static_cast<int64_t>(c_.inv_freq.size()) == d.head_dim / 2, "Qwen3 block: inv_freq must have ",
          d.head_dim / 2, " entries");
    check(c_.q_bias.empty() == c_.k_bias.empty() && c_.k_bias.empty() == c_.v_bias.empty(),
          "Qwen3 block: give all of q/k/v bias or none");
}

template <typename T>
void Qwen3BlockGrad<T>::set_mrope_positions(std::vector<int32_t> pos3, std::vector<int> section) {
    check(pos3.size() % 3 == 0, "Qwen3 block: M-RoPE positions must be [3, L], got ", pos3.size(), " values");
    check(pos3.empty() || section.size() == 3, "Qwen3 block: the M-RoPE section needs 3 entries (t, h, w), got ",
          section.size());
    mrope_pos_ = std::move(pos3);
    mrope_section_ = std::move(section);
    cos_.clear();  // recomputed by the next forward
    sin_.clear();
}

template <typename T>
void Qwen3BlockGrad<T>::rope_tables(int64_t L, std::vector<T>& cos, std::vector<T>& sin) const {
    const int64_t half = c_.dims.head_dim / 2;
    cos.assign(static_cast<size_t>(L * half), T(0));
    sin.assign(static_cast<size_t>(L * half), T(0));
    if (mrope_pos_.empty()) {
        rope_table<T>(c_.inv_freq, L, cos.data(), sin.data());
        return;
    }
    const int64_t PL = static_cast<int64_t>(mrope_pos_.size() / 3);
    check(L == PL, "Qwen3 block: the M-RoPE positions are for sequences of ", PL, " tokens, but the input has ", L);
    rope_table_mrope<T>(c_.inv_freq, mrope_pos_.data(), L, mrope_section_, cos.data(), sin.data());
}

template <typename T>
void Qwen3BlockGrad<T>::forward(const T* X, int64_t B, int64_t L, const Weights& W, T* Y) {
    const Qwen3BlockDims& d = c_.dims;
    check(B > 0 && L > 0, "Qwen3 block forward: empty batch B=", B, " L=", L);
    for (int i = 0; i < kNumBlockLinears; ++i)
        check(W[i] != nullptr, "Qwen3 block forward: weight ", block_linear_name(i), " is missing");
    const int64_t N = B * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim,
                  I = d.intermediate, QD = nq * D, KD = nkv * D;
    const T eps = static_cast<T>(d.rms_eps);
    if (L != L_ || cos_.empty()) rope_tables(L, cos_, sin_);
    B_ = B;
    L_ = L;
    W_ = W;
    X_ = X;
    backward_ready_ = true;
    ensure(rstd1_, N);
    ensure(h1_, N * H);
    ensure(q_, N * QD);
    ensure(k_, N * KD);
    ensure(v_, N * KD);
    if (d.qk_norm) {
        ensure(q_lin_, N * QD);
        ensure(k_lin_, N * KD);
        ensure(rstd_q_, N * nq);
        ensure(rstd_k_, N * nkv);
    }
    ensure(att_, N * QD);
    ensure(lse_, B * nq * L);
    ensure(x2_, N * H);
    ensure(rstd2_, N);
    ensure(h2_, N * H);
    ensure(gate_, N * I);
    ensure(up_, N * I);
    ensure(act_, N * I);

    Lap lap(prof_, "fwd ");
    // attention half
    rmsnorm_forward_train<T>(X, c_.input_norm.data(), N, H, eps, h1_.data(), rstd1_.data());  // rstd: same h1
    lap("rmsnorm");
    T* qa = d.qk_norm ? q_lin_.data() : q_.data();
    T* ka = d.qk_norm ? k_lin_.data() : k_.data();
    const bool bias = !c_.q_bias.empty();
    linear_forward<T>(h1_.data(), N, W[kLinQ], QD, H, bias ? c_.q_bias.data() : nullptr, qa);
    linear_forward<T>(h1_.data(), N, W[kLinK], KD, H, bias ? c_.k_bias.data() : nullptr, ka);
    linear_forward<T>(h1_.data(), N, W[kLinV], KD, H, bias ? c_.v_bias.data() : nullptr, v_.data());
    lap("linear q/k/v");
    if (d.qk_norm) {
        rmsnorm_forward_train<T>(q_lin_.data(), c_.q_norm.data(), N * nq, D, eps, q_.data(), rstd_q_.data());
        rmsnorm_forward_train<T>(k_lin_.data(), c_.k_norm.data(), N * nkv, D, eps, k_.data(), rstd_k_.data());
    }
    rope_forward<T>(q_.data(), B, L, nq, D, cos_.data(), sin_.data());
    rope_forward<T>(k_.data(), B, L, nkv, D, cos_.data(), sin_.data());
    lap("qk-norm + rope");
    const AttnTrainShape as{B, L, nq, nkv, D};
    attention_train_forward<T>(q_.data(), k_.data(), v_.data(), as, att_.data(), lse_.data());
    lap("attention");
    linear_forward<T>(att_.data(), N, W[kLinO], H, QD, nullptr, x2_.data());
    lap("linear o");
#pragma omp parallel for schedule(static) if (N * H > 65536)
    for (int64_t i = 0; i < N * H; ++i) x2_[i] = X[i] + x2_[i];

    // MLP half
    rmsnorm_forward_train<T>(x2_.data(), c_.post_attn_norm.data(), N, H, eps, h2_.data(), rstd2_.data());
    lap("residual + rmsnorm");
    linear_forward<T>(h2_.data(), N, W[kLinGate], I, H, nullptr, gate_.data());
    linear_forward<T>(h2_.data(), N, W[kLinUp], I, H, nullptr, up_.data());
    lap("linear gate/up");
    swiglu_forward<T>(gate_.data(), up_.data(), N * I, act_.data());
    lap("swiglu");
    linear_forward<T>(act_.data(), N, W[kLinDown], H, I, nullptr, Y);
    lap("linear down");
#pragma omp parallel for schedule(static) if (N * H > 65536)
    for (int64_t i = 0; i < N * H; ++i) Y[i] = x2_[i] + Y[i];
    lap("residual");
}

template <typename T>
void Qwen3BlockGrad<T>::backward(const T* dY, const Grads& dW, bool accumulate, T* dX) {
    check(backward_ready_, "Qwen3 block backward: call forward first (once per forward)");
    const Qwen3BlockDims& d = c_.dims;
    const int64_t B = B_, L = L_, N = B * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim,
                  I = d.intermediate, QD = nq * D, KD = nkv * D;
    ensure(dI_, N * I);
    ensure(dH_, N * H);
    ensure(dA_, N * QD);
    ensure(dq_, N * QD);
    ensure(dk_, N * KD);
    ensure(dv_, N * KD);
    auto weight_grad = [&](int which, const T* dy, const T* x, int64_t out, int64_t in) {
        if (dW[which]) linear_backward_weight<T>(dy, x, N, out, in, dW[which], accumulate);
    };

    Lap lap(prof_, "bwd ");
    // MLP: Y = X2 + act·Wdownᵀ, act = silu(gate)∘up
    weight_grad(kLinDown, dY, act_.data(), H, I);
    lap("dW down");
    linear_backward_input<T>(dY, W_[kLinDown], N, H, I, dI_.data(), false);                 // d act
    lap("dX down");
    swiglu_backward<T>(gate_.data(), up_.data(), dI_.data(), N * I, dI_.data(), act_.data()); // dI = dgate, act = dup
    lap("swiglu");
    weight_grad(kLinGate, dI_.data(), h2_.data(), I, H);
    weight_grad(kLinUp, act_.data(), h2_.data(), I, H);
    lap("dW gate/up");
    linear_backward_input<T>(dI_.data(), W_[kLinGate], N, I, H, dH_.data(), false);          // d h2
    linear_backward_input<T>(act_.data(), W_[kLinUp], N, I, H, dH_.data(), true);
    lap("dX gate/up");
    rmsnorm_backward<T>(x2_.data(), c_.post_attn_norm.data(), rstd2_.data(), dH_.data(), N, H, dH_.data(), false);
    T* dX2 = dH_.data();
#pragma omp parallel for schedule(static) if (N * H > 65536)
    for (int64_t i = 0; i < N * H; ++i) dX2[i] += dY[i];                                        // residual
    lap("rmsnorm + residual");

    // attention: X2 = X + att·Woᵀ
    weight_grad(kLinO, dX2, att_.data(), H, QD);
    lap("dW o");
    linear_backward_input<T>(dX2, W_[kLinO], N, H, QD, dA_.data(), false);
    lap("dX o");
    const AttnTrainShape as{B, L, nq, nkv, D};
    attention_train_backward<T>(q_.data(), k_.data(), v_.data(), att_.data(), lse_.data(), dA_.data(), as, dq_.data(),
                                dk_.data(), dv_.data());
    lap("attention");
    weight_grad(kLinV, dv_.data(), h1_.data(), KD, H);
    lap("dW v");
    rope_backward<T>(dq_.data(), B, L, nq, D, cos_.data(), sin_.data());
    rope_backward<T>(dk_.data(), B, L, nkv, D, cos_.data(), sin_.data());
    if (d.qk_norm) {
        rmsnorm_backward<T>(q_lin_.data(), c_.q_norm.data(), rstd_q_.data(), dq_.data(), N * nq, D, dq_.data(), false);
        rmsnorm_backward<T>(k_lin_.data(), c_.k_norm.data(), rstd_k_.data(), dk_.data(), N * nkv, D, dk_.data(),
                            false);
    }
    lap("rope + qk-norm");
    weight_grad(kLinQ, dq_.data(), h1_.data(), QD, H);
    weight_grad(kLinK, dk_.data(), h1_.data(), KD, H);
    lap("dW q/k");
    if (dX) {
        // d h1 = dq·Wq + dk·Wk + dv·Wv (dq, dk wrt the q/k linears' outputs), written into dX (dY is no longer
        // read, so dX may alias it); then through the input RMSNorm, plus the residual path dX2.
        linear_backward_input<T>(dq_.data(), W_[kLinQ], N, QD, H, dX, false);
        linear_backward_input<T>(dk_.data(), W_[kLinK], N, KD, H, dX, true);
        linear_backward_input<T>(dv_.data(), W_[kLinV], N, KD, H, dX, true);
        lap("dX q/k/v");
        rmsnorm_backward<T>(X_, c_.input_norm.data(), rstd1_.data(), dX, N, H, dX, false);
#pragma omp parallel for schedule(static) if (N * H > 65536)
        for (int64_t i = 0; i < N * H; ++i) dX[i] += dX2[i];
        lap("rmsnorm + residual (dX)");
    }
    backward_ready_ = false;  // act_ now holds d up
}

template <typename T>
size_t Qwen3BlockGrad<T>::saved_bytes() const {
    size_t n = 0;
    for (const std::vector<T>* v : {&cos_, &sin_, &rstd1_, &h1_, &q_lin_, &k_lin_, &rstd_q_, &rstd_k_, &q_, &k_, &v_, &att_,
                                    &lse_, &x2_, &rstd2_, &h2_, &gate_, &up_, &act_, &dI_, &dH_, &dA_, &dq_, &dk_, &dv_})
        n += v->size();
    return n * sizeof(T);
}

std::vector<uint8_t> last_token_mask(int64_t B, int64_t L) {
    std::vector<uint8_t> m(static_cast<size_t>(B * L), 1);
    for (int64_t b = 0; b < B; ++b) m[b * L + L - 1] = 0;
    return m;
}

template <typename T>
double masked_mse_loss(const T* pred, const T* ref, const uint8_t* mask, int64_t B, int64_t L, int64_t H, T* grad,
                       double grad_scale) {
    const int64_t N = B * L;
    const double denom = double(N) * double(H);
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (N * H > 65536)
    for (int64_t n = 0; n < N; ++n) {
        const bool on = !mask || mask[n];
        const T* p = pred + n * H;
        const T* r = ref + n * H;
        double acc = 0.0;
        for (int64_t h = 0; h < H; ++h) {
            const double e = on ? double(p[h]) - double(r[h]) : 0.0;
            acc += e * e;
            if (grad) grad[n * H + h] = static_cast<T>(grad_scale * 2.0 * e / denom);
        }
        total += acc;
    }
    return total / denom;
}

template class Qwen3BlockGrad<float>;
template class Qwen3BlockGrad<double>;
template double masked_mse_loss<float>(const float*, const float*, const uint8_t*, int64_t, int64_t, int64_t, float*,
                                       double);
template double masked_mse_loss<double>(const double*, const double*, const uint8_t*, int64_t, int64_t, int64_t,
                                        double*, double);

}  // namespace autoround
