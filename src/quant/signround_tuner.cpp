// quant/signround_tuner.cpp — see signround_tuner.h. Three parts:
//   1. the optimizer pieces (per-bits lr, PyTorch LinearLR schedule, SignSGD);
//   2. tune_group_impl: the SignRound loop of one block, or of an --nblocks group of consecutive blocks tuned
//      jointly (gradients chained through Qwen3BlockGrad's dX), on cached inputs (§2.4–2.8);
//   3. quantize_model: embeddings -> block by block (FP chain, quantized chain), plain RTN (§3.1) and
//      optimized RTN (§3.2: imatrix from the FP forward + per-group scale search) for iters == 0.
#include "quant/signround_tuner.h"
#include "quant/tuning_checkpoint.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <memory>
#include <set>
#include <type_traits>

#include <omp.h>

#include "core/bf16.h"
#include "core/error.h"
#include "core/progress_bar.h"
#include "model/qwen3_model.h"
#include "ops/cpu/activation_grad.h"
#include "ops/cpu/attention_grad.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cpu/linear_grad.h"
#include "ops/cpu/norm_grad.h"
#include "ops/cpu/rope_grad.h"
#include "ops/cuda/block_engine.h"
#include "quant/gguf_double_quant.h"
#include "quant/rtn.h"

namespace autoround {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string fmt_loss(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", v);
    return b;
}

QdqOptions qdq_options(const LayerScheme& s) {
    QdqOptions o;
    o.scheme = s.quant_scheme();
    o.fp16_scale = true;  // scale_dtype fp16 (auto-round's default for int schemes)
    return o;
}

// One quantized linear's tuning state (layouts of ops/cpu/fake_quant.h).
struct LayerState {
    BlockLayerSpec spec;
    FakeQuantShape sh;
    FakeQuantConfig cfg;
    const float* W = nullptr;           // [out, in] original
    std::vector<float> V, alpha, beta;  // [out, G·gs], [out·G], [out·G]
    std::vector<float> wmin, wmax;      // [out·G]
    std::vector<float> Wq, dWq;         // [out, in]
    std::vector<float> gV, gA, gB;      // gradients
    std::vector<float> lr_v, lr_m;      // per iteration

    FakeQuantTensors<float> tensors(bool minmax) const {
        FakeQuantTensors<float> t;
        t.W = W;
        t.V = V.data();
        t.alpha = minmax ? alpha.data() : nullptr;
        t.beta = minmax ? beta.data() : nullptr;
        t.wmin = wmin.data();
        t.wmax = wmax.data();
        return t;
    }
};

// block.forward over all n samples in chunks of `batch` (no gradients); out may alias in.
template <typename BlockT, typename WeightsT>
void forward_chunks(BlockT& block, const WeightsT& W, const float* in, int64_t n, int64_t L, int64_t batch, float* out) {
    const int64_t H = block.dims().hidden, LH = L * H;
    batch = std::max<int64_t>(1, std::min(batch, n));
    std::vector<float> tmp(static_cast<size_t>(batch * LH));
    for (int64_t s = 0; s < n; s += batch) {
        const int64_t b = std::min(batch, n - s);
        block.forward(in + s * LH, b, L, W, tmp.data());
        std::memcpy(out + s * LH, tmp.data(), static_cast<size_t>(b * LH) * sizeof(float));
    }
}

// Copies samples idx[0..b) of src [n, L, H] into dst [b, L, H].
void gather(const float* src, const std::vector<int64_t>& idx, size_t first, size_t b, int64_t LH, float* dst) {
    for (size_t k = 0; k < b; ++k)
        std::memcpy(dst + k * LH, src + idx[first + k] * LH, static_cast<size_t>(LH) * sizeof(float));
}

}  // namespace

// ---- 1. optimizer pieces ----------------------------------------------------------------------------------

double signround_lr(const SignRoundOptions& o, int bits) {
    if (o.lr) return *o.lr;
    if (o.iters <= 0) return 5e-3;
    return (o.iters >= 1000 && bits <= 3) ? 2.0 / o.iters : 1.0 / o.iters;
}

double signround_minmax_lr(const SignRoundOptions& o, int bits) {
    if (o.minmax_lr) return *o.minmax_lr;
    return signround_lr(o, bits);
}

std::vector<float> lr_schedule(double lr0, int iters) {
    std::vector<float> r(static_cast<size_t>(std::max(iters, 0)));
    if (iters <= 0) return r;
    float lr = static_cast<float>(lr0);
    r[0] = lr;  // LinearLR's first step multiplies by start_factor 1.0
    for (int i = 1; i < iters; ++i) {
        // PyTorch LinearLR.get_lr (chainable form), last_epoch = i, start 1, end 0:
        //   factor = 1 + (end - start) / (total·start + (i - 1)·(end - start)) = 1 - 1/(T - i + 1)
        const double factor = 1.0 + (-1.0) / (double(iters) + double(i - 1) * (-1.0));
        lr = lr * static_cast<float>(factor);  // 0-dim fp32 tensor times a Python float
        r[static_cast<size_t>(i)] = lr;
    }
    return r;
}

void signsgd_step(float* p, const float* g, int64_t n, float lr) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        if (gi > 0.f) p[i] -= lr;
        else if (gi < 0.f) p[i] += lr;
        // sign(0) = 0 (torch.sign); NaN compares false both ways -> no update
    }
}

// ---- helpers shared by the model-level paths ------------------------------------------------------------

void block_forward_all(Qwen3BlockGrad<float>& block, const std::array<const float*, kNumBlockLinears>& W,
                       const float* in, int64_t n, int64_t L, int64_t batch, float* out) {
    forward_chunks(block, W, in, n, L, batch, out);
}

void vision_block_forward_all(VisionBlockGrad<float>& block, const std::array<const float*, kNumVisionLinears>& W,
                              const float* in, int64_t n, int64_t L, int64_t batch, float* out) {
    forward_chunks(block, W, in, n, L, batch, out);
}

std::vector<float> embed_samples(const Qwen3Model& model, const std::vector<std::vector<int32_t>>& samples) {
    const std::string emb_name = model.config().text_prefix + "embed_tokens.weight";
    const TensorInfo& emb = model.tensors().get(emb_name);
    check(emb.shape.size() == 2, emb_name, " has shape ", emb.shape_str(), ", expected [vocab, hidden]");
    const int64_t V = emb.shape[0], H = emb.shape[1];
    const size_t row_bytes = static_cast<size_t>(H) * dtype_size(emb.dtype);
    size_t total = 0;
    for (const auto& s : samples) total += s.size();
    std::vector<float> out(total * static_cast<size_t>(H));
    size_t t = 0;
    for (size_t i = 0; i < samples.size(); ++i)
        for (int32_t id : samples[i]) {
            check(id >= 0 && id < V, "calibration sample ", i, ": token id ", id, " is outside the vocabulary [0, ", V, ")");
            TensorInfo row = emb;  // a view of one row, converted with the checkpoint's dtype rules
            row.shape = {H};
            row.data = emb.data + static_cast<size_t>(id) * row_bytes;
            row.nbytes = row_bytes;
            convert_to_f32(row, std::span<float>(out.data() + t * H, static_cast<size_t>(H)));
            ++t;
        }
    return out;
}

// ---- 2. one block -----------------------------------------------------------------------------------------

namespace {

// The engine for `block`: the run's precision, the block's positions (M-RoPE when set) and the loss mask.
CudaBlockEngineOptions engine_options(const SignRoundOptions& opt, const Qwen3BlockGrad<float>& block,
                                      const uint8_t* loss_mask = nullptr) {
    CudaBlockEngineOptions o;
    o.precision = opt.cuda_bf16 ? GpuPrecision::Bf16 : GpuPrecision::Fp32;
    o.mrope_positions = block.mrope_positions();
    o.mrope_section = block.mrope_section();
    o.loss_mask = loss_mask;
    o.host_resident_inputs = opt.low_gpu_mem_usage;
    o.fp8_backward = opt.cuda_fp8_backward;
    o.cuda_graphs = opt.cuda_graphs;
    return o;
}

// What the generic tuner needs to know about a block type: its linears' shapes and names.
std::array<int64_t, 2> linear_shape_of(const Qwen3BlockDims& d, int which) { return block_linear_shape(d, which); }
std::array<int64_t, 2> linear_shape_of(const VisionBlockDims& d, int which) { return vision_linear_shape(d, which); }
const char* linear_name_of(const Qwen3BlockDims&, int which) { return block_linear_name(which); }
const char* linear_name_of(const VisionBlockDims&, int which) { return vision_linear_name(which); }
template <typename BlockT>
constexpr bool kIsQwen3Block = std::is_same_v<BlockT, Qwen3BlockGrad<float>>;

// forward_chunks on the CPU, or on the GPU when opt.cuda (Qwen3 blocks only; in and out may alias).
template <typename BlockT, size_t N>
void forward_all_on(const SignRoundOptions& opt, BlockT& block, const std::array<const float*, N>& W, const float* in,
                    int64_t n, int64_t L, int64_t batch, float* out) {
    if constexpr (kIsQwen3Block<BlockT>) {
        if (opt.cuda) {
            CudaBlockEngine gpu(block.consts(), n, L, batch, in, nullptr, engine_options(opt, block));
            for (size_t i = 0; i < N; ++i) gpu.set_weight(static_cast<int>(i), W[i]);
            gpu.forward_all(out);
            return;
        }
    }
    forward_chunks(block, W, in, n, L, batch, out);
}

// The group's blocks chained over all n samples: in -> block 0 -> ... -> out (out may alias in). One
// block is forward_all_on itself (GPU when opt.cuda); several run on the CPU, block by block in place.
template <typename BlockT, size_t N>
void group_forward_all(const SignRoundOptions& opt, const std::vector<BlockT*>& blocks,
                       const std::vector<std::array<const float*, N>>& W, const float* in, int64_t n, int64_t L,
                       int64_t batch, float* out) {
    if (blocks.size() == 1) {
        forward_all_on<BlockT, N>(opt, *blocks[0], W[0], in, n, L, batch, out);
        return;
    }
    for (size_t m = 0; m < blocks.size(); ++m) forward_chunks(*blocks[m], W[m], m == 0 ? in : out, n, L, batch, out);
}

// The weights of each member as pointers (qdq[m] for member m).
std::vector<std::array<const float*, kNumBlockLinears>> weight_ptrs(
    const std::vector<std::array<std::vector<float>, kNumBlockLinears>>& w) {
    std::vector<std::array<const float*, kNumBlockLinears>> p(w.size());
    for (size_t m = 0; m < w.size(); ++m)
        for (int i = 0; i < kNumBlockLinears; ++i) p[m][i] = w[m][i].data();
    return p;
}

template <typename BlockT, size_t N>
std::string group_name_of(const std::vector<BlockGroupMemberT<BlockT, N>>& members) {
    if (members.empty()) return "";
    if (members.size() == 1) return members[0].name;
    return members.front().name + "-" + std::to_string(members.back().index);
}

// The tuner's activations resident on the GPU (quantize_model_from_inputs with --device cuda): the training
// inputs and FP targets of one block [n, L, H], and where QBlock(train) goes (may be `train`; null: not needed).
struct DeviceChain {
    const CudaActivations* train = nullptr;
    const CudaActivations* ref = nullptr;
    CudaActivations* qout = nullptr;
    // the host part of §2.8 (codes, host QDQ weights) is returned as BlockTuneResultT::finish instead of run here,
    // so that the caller overlaps it with the next block's work on the GPU
    bool defer_finish = false;
};

// §2.8 on the host: the best parameters -> codes and the tuned layers' QDQ weights (bf16(s·q), as W_q) of
// result(m) (a BlockTuneResultT&), whose qdq must hold the block's weights already (the untuned layers keep them).
template <typename ResultOf>
void finish_on_host(std::vector<LayerState>& st, const std::vector<size_t>& st_member, bool minmax,
                    const std::map<std::string, LayerParams>& best_params, ResultOf&& result) {
    for (size_t j = 0; j < st.size(); ++j) {
        LayerState& s = st[j];
        auto& r = result(st_member[j]);
        const LayerParams& p = best_params.at(s.spec.name);
        s.V = p.V;
        s.alpha = p.alpha;
        s.beta = p.beta;
        r.best_params[s.spec.name] = p;
        const std::span<const float> a = minmax ? std::span<const float>(s.alpha) : std::span<const float>();
        const std::span<const float> b = minmax ? std::span<const float>(s.beta) : std::span<const float>();
        if (s.cfg.kind != FakeQuantKind::Int)
            r.quantized.emplace(s.spec.name, dq_quantized_tensor(fake_quant_dq_codes(s.tensors(minmax), s.sh, s.cfg),
                                                                 s.spec.scheme, s.sh.out, s.sh.in, s.spec.name));
        else
            r.quantized.emplace(s.spec.name, quantize(std::span<const float>(s.W, s.sh.out * s.sh.in), s.sh.out, s.sh.in,
                                                      s.V, a, b, qdq_options(s.spec.scheme), s.spec.name));
        auto& q = r.qdq[s.spec.which];
        fake_quant_forward(s.tensors(minmax), s.sh, s.cfg, q.data(), nullptr, nullptr);  // bf16(s·q), as W_q
    }
}

// SignRound on a group of consecutive blocks (one block: the single-block tuner; the operations and their
// order are then exactly those of tuning one block). qblock_out (optional): QGroup(train_in) over all samples.
// dev (one Qwen3 block on the GPU only): the inputs, targets and quantized outputs live on the device instead
// (train_in, ref_out and qblock_out are then null).
template <typename BlockT, size_t N>
std::vector<BlockTuneResultT<N>> tune_group_impl(const std::vector<BlockGroupMemberT<BlockT, N>>& members,
                                                 const float* train_in, const float* ref_out, int64_t n, int64_t L,
                                                 const SignRoundOptions& opt, PythonRandom& rng, float* qblock_out,
                                                 const uint8_t* sample_mask = nullptr,
                                                 const DeviceChain* dev = nullptr) {
    const auto t_start = Clock::now();
    constexpr int kN = static_cast<int>(N);
    check(!members.empty(), "tune_block_group: no blocks");
    const size_t M = members.size();
    const std::string group_name = group_name_of(members);
    for (const auto& mb : members)
        check(mb.block && mb.W, "block ", mb.name, ": no block or weights given");
    const auto& d = members[0].block->dims();
    const int64_t H = d.hidden, LH = L * H;
    for (const auto& mb : members)
        check(mb.block->dims().hidden == H, "block group ", group_name, ": ", mb.name, " has hidden size ",
              mb.block->dims().hidden, ", expected ", H);
    check(n > 0 && L > 0, "block ", group_name, ": no calibration samples to tune on");
    check(opt.batch_size > 0 && opt.gradient_accumulate_steps > 0, "block ", group_name,
          ": batch_size and gradient_accumulate_steps must be positive");
    check(kIsQwen3Block<BlockT> || !opt.cuda, "block ", group_name, ": vision blocks are tuned on the CPU only");
    check(M == 1 || !opt.cuda, "block group ", group_name,
          ": blocks tuned jointly (--nblocks > 1) run on the CPU only; the CUDA engine tunes one block at a time");
    check(!dev || (opt.cuda && kIsQwen3Block<BlockT> && dev->train && dev->ref && !train_in && !ref_out && !qblock_out),
          "block ", group_name, ": device-resident activations need one Qwen3 block on the GPU");
    const int T = std::max(opt.iters, 0);

    BlockReport rep;
    rep.name = group_name;
    rep.index = members[0].index;
    rep.method = "signround";

    // ---- state ---------------------------------------------------------------------------------------
    size_t nlayers = 0;
    for (const auto& mb : members) nlayers += mb.layers.size();
    std::vector<LayerState> st(nlayers);   // member order, then the member's layer order
    std::vector<size_t> st_member(nlayers);
    std::vector<std::array<const float*, N>> wptr(M);
    std::vector<std::array<float*, N>> gptr(M);
    size_t k = 0;
    for (size_t m = 0; m < M; ++m) {
        const auto& mb = members[m];
        const auto& dm = mb.block->dims();
        const auto& W = *mb.W;
        gptr[m] = {};
        for (int i = 0; i < kN; ++i) {
            const auto shape = linear_shape_of(dm, i);
            check(static_cast<int64_t>(W[i].size()) == shape[0] * shape[1], "block ", mb.name, ": weight ",
                  linear_name_of(dm, i), " holds ", W[i].size(), " values, expected [", shape[0], ", ", shape[1], "]");
            wptr[m][i] = W[i].data();
        }
        std::set<int> seen;
        for (size_t j = 0; j < mb.layers.size(); ++j, ++k) {
            LayerState& s = st[k];
            st_member[k] = m;
            s.spec = mb.layers[j];
            const int w = s.spec.which;
            check(w >= 0 && w < kN && seen.insert(w).second, "block ", mb.name, ": layer ", s.spec.name,
                  " is listed twice or is not a block linear");
            check(s.spec.scheme.quantized(), "block ", mb.name, ": layer ", s.spec.name, " is not quantized (bits ",
                  s.spec.scheme.bits, ")");
            const auto shape = linear_shape_of(dm, w);
            s.sh = fake_quant_shape(shape[0], shape[1], s.spec.scheme.group_size);
            s.cfg = fake_quant_config(s.spec.scheme);  // int: fp16 scales; GGUF k-quants: double quant, fp32 scales
            s.W = W[w].data();
            const size_t ng = static_cast<size_t>(s.sh.groups());
            s.alpha.assign(ng, 1.f);
            s.beta.assign(ng, 1.f);
            s.wmin.resize(ng);
            s.wmax.resize(ng);
            fake_quant_minmax(s.W, s.sh, s.wmin.data(), s.wmax.data());
            s.lr_v = lr_schedule(signround_lr(opt, s.cfg.bits), T);
            s.lr_m = lr_schedule(signround_minmax_lr(opt, s.cfg.bits), T);
        }
    }
    // On the GPU with the device fake quantization (dev_fq below) W_q, its gradient and dV live on the device; the
    // host buffers for them (3 · 4 bytes per weight, ~1.2 GB for a 4B block) are only made for the host loops.
    const bool dev_fq_planned = kIsQwen3Block<BlockT> && opt.cuda && M == 1 && T > 0 && !opt.cuda_host_fake_quant &&
                                std::all_of(st.begin(), st.end(), [](const LayerState& s) { return s.cfg.kind == FakeQuantKind::Int; });
    for (size_t j = 0; j < st.size(); ++j) {
        LayerState& s = st[j];
        const size_t nw = static_cast<size_t>(s.sh.out * s.sh.in), ng = static_cast<size_t>(s.sh.groups());
        if (!dev_fq_planned) {  // (on the device, V starts at 0 there and only the best V comes back)
            s.V.assign(static_cast<size_t>(s.sh.out * s.sh.padded_in()), 0.f);
            s.Wq.resize(nw);
            s.dWq.resize(nw);
            s.gV.resize(s.V.size());
            if (opt.enable_minmax_tuning) {
                s.gA.resize(ng);
                s.gB.resize(ng);
            }
        }
        wptr[st_member[j]][s.spec.which] = s.Wq.data();  // null when on the device
        gptr[st_member[j]][s.spec.which] = s.dWq.data();
    }
    rep.layers = static_cast<int>(st.size());
    const bool minmax = opt.enable_minmax_tuning;
    auto qdq_all = [&] {
        for (LayerState& s : st) {
            if (minmax) fake_quant_clamp_minmax(s.alpha.data(), s.beta.data(), s.sh.groups());
            fake_quant_forward(s.tensors(minmax), s.sh, s.cfg, s.Wq.data(), nullptr, nullptr);
        }
    };
    std::map<std::string, LayerParams> best_params;
    auto snapshot = [&] {
        for (const LayerState& s : st)  // (V is not kept on the host while the device tunes: 0 then)
            best_params[s.spec.name] = LayerParams{
                s.V.empty() ? std::vector<float>(static_cast<size_t>(s.sh.out * s.sh.padded_in()), 0.f) : s.V,
                s.alpha, s.beta};
    };

    // ---- the loop (§2.7) ----------------------------------------------------------------------------------
    const int64_t batch = std::min<int64_t>(opt.batch_size, n);
    const int64_t global = std::min<int64_t>(n, batch * opt.gradient_accumulate_steps);
    std::unique_ptr<CudaBlockEngine> gpu;
    if constexpr (kIsQwen3Block<BlockT>) {
        if (dev) {
            gpu = std::make_unique<CudaBlockEngine>(members[0].block->consts(), batch, *dev->train, dev->ref,
                                                    engine_options(opt, *members[0].block, sample_mask));
        } else if (opt.cuda && M == 1 && !st.empty() && T > 0) {
            gpu = std::make_unique<CudaBlockEngine>(members[0].block->consts(), n, L, batch, train_in, ref_out,
                                                    engine_options(opt, *members[0].block, sample_mask));
        }
        if (gpu)  // the unquantized ones stay; the tuned ones are set every iteration
            for (int i = 0; i < kN; ++i)
                if (wptr[0][i]) gpu->set_weight(i, wptr[0][i]);
    }
    // The fake quantization and SignSGD on the device too (ops/cuda/fake_quant_device.h): V, α, β live there and
    // only the best parameters come back at the end.
    // (The double-quantized GGUF k-quant types have no device kernel yet: their fake quantization runs here.)
    const bool dev_fq = gpu && dev_fq_planned;
    check(dev_fq || !dev_fq_planned || st.empty() || T == 0, "block ", group_name, ": the GPU engine was not created");
    std::vector<std::array<float, 2>> dev_lr(st.size());
    bool dev_snapshot = false;
    if (dev_fq)
        for (const LayerState& s : st)
            gpu->add_tuned_layer(s.spec.which, s.sh, s.cfg, minmax, s.W, s.wmin.data(), s.wmax.data());
    auto take_snapshot = [&] {
        if (!dev_fq) return snapshot();
        gpu->snapshot_tuned_layers();
        dev_snapshot = true;
    };
    rep.setup_seconds = seconds_since(t_start);
    // the host loop's sub-batch buffers (not used when the GPU runs the block)
    std::vector<float> X(gpu ? 0 : static_cast<size_t>(batch * LH)), R(X.size()), Y(X.size()), dY(X.size());
    // outputs of all but the last member (the next member's saved input; must stay intact until backward)
    std::vector<std::vector<float>> mid(M - 1, std::vector<float>(X.size()));
    // the loss mask of the current sub-batch: the last-token rule (the same rows for every sample), or the
    // caller's per-sample mask gathered like the samples
    std::vector<uint8_t> mask = sample_mask ? std::vector<uint8_t>(static_cast<size_t>(batch * L))
                                            : last_token_mask(batch, L);
    const uint8_t* maskp = sample_mask || opt.mask_last_token ? mask.data() : nullptr;  // rows of the first b samples
    std::vector<double> losses;

    double best_loss = std::numeric_limits<double>::infinity();
    int last_best_iter = 0;
    std::optional<ProgressBar> bar;
    if (opt.progress && T > 0 && !st.empty())
        bar.emplace(group_name + " (" + std::to_string(st.size()) + " layers)", T, "it");
    const auto t_tune = Clock::now();
    int iters_run = 0;
    if (!st.empty() && T > 0) {
        IndexSampler sampler(n, global, rng);
        for (int i = 0; i < T; ++i) {
            const std::vector<int64_t> idx = sampler.next_batch();
            auto tp = Clock::now();
            if (!dev_fq) {
                qdq_all();
                if (gpu)
                    for (const LayerState& s : st) gpu->set_weight(s.spec.which, s.Wq.data());
            }
            // one sub-batch with the device fake quantization: the engine's single call (replayed from a CUDA graph
            // with opt.cuda_graphs), timed as the device step (it includes the device fake quantization)
            const bool single_call = dev_fq && global <= batch;
            double total = 0.0;
            if (single_call) {
                total = gpu->quantize_forward_backward(idx.data(), global, opt.mask_last_token, 1000.0);
                rep.device_step_seconds += seconds_since(tp);
            } else {
                if (dev_fq) gpu->quantize_tuned_layers();
                rep.qdq_seconds += seconds_since(tp);
            }
            for (int64_t s0 = 0; !single_call && s0 < global; s0 += batch) {
                const int64_t b = std::min(batch, global - s0);
                if (gpu) {  // forward + loss + backward on the device (timed as the device step)
                    tp = Clock::now();
                    const double w = double(b) / double(global);
                    total += gpu->forward_backward(idx.data() + s0, b, opt.mask_last_token, 1000.0 * w, s0 > 0) * w;
                    rep.device_step_seconds += seconds_since(tp);
                    continue;
                }
                tp = Clock::now();
                gather(train_in, idx, static_cast<size_t>(s0), static_cast<size_t>(b), LH, X.data());
                gather(ref_out, idx, static_cast<size_t>(s0), static_cast<size_t>(b), LH, R.data());
                if (sample_mask)
                    for (int64_t j = 0; j < b; ++j)
                        std::memcpy(mask.data() + j * L, sample_mask + idx[static_cast<size_t>(s0 + j)] * L,
                                    static_cast<size_t>(L));
                const float* in = X.data();
                for (size_t m = 0; m < M; ++m) {
                    float* out = m + 1 == M ? Y.data() : mid[m].data();
                    members[m].block->forward(in, b, L, wptr[m], out);
                    in = out;
                }
                const double w = double(b) / double(global);
                const double loss = masked_mse_loss<float>(Y.data(), R.data(), maskp, b, L, H, dY.data(), 1000.0 * w);
                total += loss * w;
                rep.forward_seconds += seconds_since(tp);
                tp = Clock::now();
                // last member first; each writes dL/d(its input) over dY for the member before it
                for (size_t m = M; m-- > 0;)
                    members[m].block->backward(dY.data(), gptr[m], /*accumulate=*/s0 > 0, m > 0 ? dY.data() : nullptr);
                rep.backward_seconds += seconds_since(tp);
            }
            if (gpu && !dev_fq) {
                tp = Clock::now();
                for (LayerState& s : st) gpu->get_weight_grad(s.spec.which, s.dWq.data());
                rep.backward_seconds += seconds_since(tp);
            }
            losses.push_back(total);
            iters_run = i + 1;
            if (!std::isfinite(total))
                fail("block ", group_name, ": the tuning loss is ", total, " at iteration ", i,
                     " (non-finite activations or weights in this block); stopping, nothing was written");
            if (i == 0) rep.initial_loss = total;
            if (total < best_loss) {  // strict, as the reference
                best_loss = total;
                rep.best_iter = i;
                if (!opt.not_use_best_mse) {
                    take_snapshot();
                    last_best_iter = i;
                }
            }
            if (opt.not_use_best_mse && i == T - 1) take_snapshot();
            if (bar && i + 1 < T)  // the last state is drawn by finish()
                bar->update(i + 1, "loss " + fmt_loss(rep.initial_loss) + " -> best " + fmt_loss(best_loss) + " @" +
                                       std::to_string(rep.best_iter));
            if (!opt.not_use_best_mse && opt.dynamic_max_gap > 0 && i - last_best_iter >= opt.dynamic_max_gap) break;
            const auto tu = Clock::now();
            if (dev_fq) {
                for (size_t j = 0; j < st.size(); ++j)
                    dev_lr[j] = {st[j].lr_v[static_cast<size_t>(i)], st[j].lr_m[static_cast<size_t>(i)]};
                gpu->step_tuned_layers(dev_lr);
                rep.update_seconds += seconds_since(tu);
                continue;
            }
            for (LayerState& s : st) {
                fake_quant_backward(s.tensors(minmax), s.sh, s.cfg, s.dWq.data(), s.gV.data(),
                                    minmax ? s.gA.data() : nullptr, minmax ? s.gB.data() : nullptr);
                signsgd_step(s.V.data(), s.gV.data(), static_cast<int64_t>(s.V.size()), s.lr_v[static_cast<size_t>(i)]);
                if (minmax) {
                    signsgd_step(s.alpha.data(), s.gA.data(), s.sh.groups(), s.lr_m[static_cast<size_t>(i)]);
                    signsgd_step(s.beta.data(), s.gB.data(), s.sh.groups(), s.lr_m[static_cast<size_t>(i)]);
                }
            }
            rep.update_seconds += seconds_since(tu);
        }
    }
    rep.tune_seconds = seconds_since(t_tune);
    rep.iters_run = iters_run;
    rep.best_loss = iters_run ? best_loss : 0.0;
    rep.last_loss = iters_run ? losses.back() : 0.0;
    rep.losses = losses;

    // With the chains on the device and the best parameters there, the device computes the QDQ weights the chain
    // runs with (bit for bit the host's), and with dev->defer_finish the host part (downloading the best parameters
    // included) is left to the caller, who overlaps it with the next block.
    const bool dev_qdq = dev && dev_snapshot;
    const bool defer = dev_qdq && dev->defer_finish;
    std::shared_ptr<CudaTunedParams> dev_best;
    if (dev_qdq) gpu->quantize_best_tuned_layers();  // the untuned linears hold their weights since the engine was made
    if (defer) dev_best = gpu->take_best_params();
    if (dev_snapshot && !defer)  // the device's best parameters
        for (size_t j = 0; j < st.size(); ++j) {
            LayerParams lp;
            gpu->get_tuned_params(static_cast<int>(j), /*best=*/true, lp.V, lp.alpha, lp.beta);
            best_params[st[j].spec.name] = std::move(lp);
        }

    // ---- §2.8: best parameters -> codes, QDQ weights -----------------------------------------------------
    const auto t_finish = Clock::now();
    std::vector<BlockTuneResultT<N>> res(M);
    if (!defer && best_params.empty()) snapshot();  // iters 0: V = 0, α = β = 1 (RTN)
    if (defer) {
        struct Job {
            std::vector<LayerState> st;
            std::shared_ptr<CudaTunedParams> best;  // on the device until the job downloads them
            std::array<const float*, N> W{};
            std::array<size_t, N> numel{};
        };
        auto job = std::make_shared<Job>();
        job->st = std::move(st);
        job->best = std::move(dev_best);
        for (int i = 0; i < kN; ++i) {
            job->W[i] = (*members[0].W)[i].data();
            job->numel[i] = (*members[0].W)[i].size();
        }
        // (the caller moves the function out of the result before calling it)
        res[0].finish = [job, minmax](BlockTuneResultT<N>& r) {
            const auto t0 = Clock::now();
            std::map<std::string, LayerParams> best;
            for (size_t j = 0; j < job->st.size(); ++j) {
                LayerParams lp;
                job->best->download(static_cast<int>(j), lp.V, lp.alpha, lp.beta);
                best[job->st[j].spec.name] = std::move(lp);
            }
            job->best.reset();  // the device copies
            for (int i = 0; i < kN; ++i) r.qdq[i].assign(job->W[i], job->W[i] + job->numel[i]);
            finish_on_host(job->st, std::vector<size_t>(job->st.size(), 0), minmax, best,
                           [&r](size_t) -> BlockTuneResultT<N>& { return r; });
            r.report.background_seconds = seconds_since(t0);
        };
    } else {
        for (size_t m = 0; m < M; ++m)
            for (int i = 0; i < kN; ++i) res[m].qdq[i] = (*members[m].W)[i];
        finish_on_host(st, st_member, minmax, best_params, [&res](size_t m) -> BlockTuneResultT<N>& { return res[m]; });
    }
    if (bar) bar->finish("loss " + fmt_loss(rep.initial_loss) + " -> best " + fmt_loss(rep.best_loss) + " @" +
                         std::to_string(rep.best_iter));

    rep.finish_seconds = seconds_since(t_finish);
    const auto t_chain = Clock::now();
    if (dev && dev->qout) {  // QBlock(train) and its loss without leaving the device
        if (!dev_qdq)
            for (int i = 0; i < kN; ++i) gpu->set_weight(i, res[0].qdq[i].data());
        gpu->forward_all(*dev->qout);
        rep.final_loss = gpu->masked_mse_all(*dev->qout, *dev->ref, !sample_mask && opt.mask_last_token);
        check(std::isfinite(rep.final_loss), "block ", group_name, ": the quantized block's output is not finite");
    }
    if (qblock_out) {
        if (gpu) {
            for (int i = 0; i < kN; ++i) gpu->set_weight(i, res[0].qdq[i].data());
            gpu->forward_all(qblock_out);
        } else {
            std::vector<BlockT*> blocks;
            std::vector<std::array<const float*, N>> qw(M);
            for (size_t m = 0; m < M; ++m) {
                blocks.push_back(members[m].block);
                for (int i = 0; i < kN; ++i) qw[m][i] = res[m].qdq[i].data();
            }
            group_forward_all<BlockT, N>(opt, blocks, qw, train_in, n, L, batch, qblock_out);
        }
        if (sample_mask) {
            rep.final_loss = masked_mse_loss<float>(qblock_out, ref_out, sample_mask, n, L, H, nullptr);
        } else if (opt.mask_last_token) {
            const std::vector<uint8_t> msk = last_token_mask(n, L);
            rep.final_loss = masked_mse_loss<float>(qblock_out, ref_out, msk.data(), n, L, H, nullptr);
        } else {
            rep.final_loss = masked_mse_loss<float>(qblock_out, ref_out, nullptr, n, L, H, nullptr);
        }
        check(std::isfinite(rep.final_loss), "block ", group_name, ": the quantized block's output is not finite");
    }
    rep.chain_seconds = seconds_since(t_chain);
    rep.seconds = seconds_since(t_start);
    for (size_t m = 0; m < M; ++m) {
        auto& r = res[m];
        r.losses = losses;
        r.report = rep;
        r.report.name = members[m].name;
        r.report.index = members[m].index;
        r.report.layers = static_cast<int>(members[m].layers.size());
        if (M > 1) r.report.group = group_name;
    }
    return res;
}

// One block = a group of one member.
template <typename BlockT, size_t N>
BlockTuneResultT<N> tune_one(BlockT& block, const std::array<std::vector<float>, N>& W,
                             const std::vector<BlockLayerSpec>& layers, const float* train_in, const float* ref_out,
                             int64_t n, int64_t L, const SignRoundOptions& opt, PythonRandom& rng,
                             const std::string& block_name, int block_index, float* qblock_out) {
    std::vector<BlockGroupMemberT<BlockT, N>> one(1);
    one[0].block = &block;
    one[0].W = &W;
    one[0].layers = layers;
    one[0].name = block_name;
    one[0].index = block_index;
    return std::move(tune_group_impl(one, train_in, ref_out, n, L, opt, rng, qblock_out)[0]);
}
}  // namespace

BlockTuneResult tune_block(Qwen3BlockGrad<float>& block, const std::array<std::vector<float>, kNumBlockLinears>& W,
                           const std::vector<BlockLayerSpec>& layers, const float* train_in, const float* ref_out,
                           int64_t n, int64_t L, const SignRoundOptions& opt, PythonRandom& rng,
                           const std::string& block_name, int block_index) {
    return tune_one(block, W, layers, train_in, ref_out, n, L, opt, rng, block_name, block_index, nullptr);
}

std::string block_group_name(const std::vector<BlockGroupMember>& members) { return group_name_of(members); }

VisionBlockTuneResult tune_vision_block(VisionBlockGrad<float>& block,
                                        const std::array<std::vector<float>, kNumVisionLinears>& W,
                                        const std::vector<BlockLayerSpec>& layers, const float* train_in,
                                        const float* ref_out, int64_t n, int64_t L, const SignRoundOptions& opt,
                                        PythonRandom& rng, const std::string& block_name, int block_index,
                                        float* qblock_out) {
    check(L == block.rows_per_sample(), "block ", block_name, ": ", L, " rows per sample, but the block's image grid has ",
          block.rows_per_sample());
    return tune_one(block, W, layers, train_in, ref_out, n, L, opt, rng, block_name, block_index, qblock_out);
}

std::vector<BlockTuneResult> tune_block_group(const std::vector<BlockGroupMember>& members, const float* train_in,
                                              const float* ref_out, int64_t n, int64_t L, const SignRoundOptions& opt,
                                              PythonRandom& rng) {
    return tune_group_impl(members, train_in, ref_out, n, L, opt, rng, nullptr);
}

// ---- 3. optimized RTN (§3.2) ------------------------------------------------------------------------------

namespace {

// FP forward of one block (the same ops as Qwen3BlockGrad::forward) that adds Σ_tokens x_c² of every
// linear's input to imat[which] ([in] each, double accumulation).
void block_forward_imatrix(const Qwen3BlockGrad<float>& block, const std::array<const float*, kNumBlockLinears>& W,
                           const float* X, int64_t B, int64_t L, float* Y,
                           std::array<std::vector<double>, kNumBlockLinears>& imat) {
    const Qwen3BlockConsts<float>& c = block.consts();
    const Qwen3BlockDims& d = c.dims;
    const int64_t N = B * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim, I = d.intermediate,
                  QD = nq * D, KD = nkv * D;
    const float eps = static_cast<float>(d.rms_eps);
    auto sq_accumulate = [N](const float* x, int64_t dim, std::vector<double>& acc) {
        if (static_cast<int64_t>(acc.size()) != dim) acc.assign(static_cast<size_t>(dim), 0.0);
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < dim; ++j) {
            double s = 0;
            for (int64_t r = 0; r < N; ++r) s += double(x[r * dim + j]) * double(x[r * dim + j]);
            acc[static_cast<size_t>(j)] += s;
        }
    };
    std::vector<float> h1(N * H), q(N * QD), k(N * KD), v(N * KD), ql, kl, att(N * QD), lse(B * nq * L), x2(N * H),
        h2(N * H), gate(N * I), up(N * I), act(N * I), cos, sin;
    rmsnorm_forward_train<float>(X, c.input_norm.data(), N, H, eps, h1.data(), nullptr);
    sq_accumulate(h1.data(), H, imat[kLinQ]);
    const bool bias = !c.q_bias.empty();
    if (d.qk_norm) {
        ql.resize(N * QD);
        kl.resize(N * KD);
    }
    float* qa = d.qk_norm ? ql.data() : q.data();
    float* ka = d.qk_norm ? kl.data() : k.data();
    linear_forward<float>(h1.data(), N, W[kLinQ], QD, H, bias ? c.q_bias.data() : nullptr, qa);
    linear_forward<float>(h1.data(), N, W[kLinK], KD, H, bias ? c.k_bias.data() : nullptr, ka);
    linear_forward<float>(h1.data(), N, W[kLinV], KD, H, bias ? c.v_bias.data() : nullptr, v.data());
    if (d.qk_norm) {
        rmsnorm_forward_train<float>(ql.data(), c.q_norm.data(), N * nq, D, eps, q.data(), nullptr);
        rmsnorm_forward_train<float>(kl.data(), c.k_norm.data(), N * nkv, D, eps, k.data(), nullptr);
    }
    block.rope_tables(L, cos, sin);  // the block's positions (1-D, or shared M-RoPE ones)
    rope_forward<float>(q.data(), B, L, nq, D, cos.data(), sin.data());
    rope_forward<float>(k.data(), B, L, nkv, D, cos.data(), sin.data());
    attention_train_forward<float>(q.data(), k.data(), v.data(), AttnTrainShape{B, L, nq, nkv, D}, att.data(), lse.data());
    sq_accumulate(att.data(), QD, imat[kLinO]);
    linear_forward<float>(att.data(), N, W[kLinO], H, QD, nullptr, x2.data());
    for (int64_t i = 0; i < N * H; ++i) x2[i] += X[i];
    rmsnorm_forward_train<float>(x2.data(), c.post_attn_norm.data(), N, H, eps, h2.data(), nullptr);
    sq_accumulate(h2.data(), H, imat[kLinGate]);
    linear_forward<float>(h2.data(), N, W[kLinGate], I, H, nullptr, gate.data());
    linear_forward<float>(h2.data(), N, W[kLinUp], I, H, nullptr, up.data());
    swiglu_forward<float>(gate.data(), up.data(), N * I, act.data());
    sq_accumulate(act.data(), I, imat[kLinDown]);
    linear_forward<float>(act.data(), N, W[kLinDown], H, I, nullptr, Y);
    for (int64_t i = 0; i < N * H; ++i) Y[i] += x2[i];
}

// auto-round's search_scales (opt_rtn_int_sym) for one layer: per group, the inverse scale minimising the
// imatrix-weighted squared error among 2K+1 candidates around -Q/gmax. Values go through bf16 as in the
// reference (the weight dtype); the final scale is stored as fp16 (exact for bf16 values in fp16's range).
QuantizedTensor quantize_opt_rtn(const std::vector<float>& W, int64_t out, int64_t in, const LayerScheme& scheme,
                                 const std::vector<float>& imatrix, const std::string& name) {
    check(scheme.sym && scheme.bits < 8, "optimized RTN is defined for symmetric int below 8 bits only (", name, ")");
    const int bits = scheme.bits;
    const int64_t gs = effective_group_len(scheme.group_size, in), ng = num_groups(scheme.group_size, in);
    const float Q = static_cast<float>(1 << (bits - 1));
    const int K = bits == 2 ? 90 : 100;
    const double step = bits == 2 ? 0.01 : 2.0 * 0.75 * Q / 200.0;
    const float tau = scale_threshold(qdq_options(scheme));
    QuantizedTensor qt;
    qt.name = name;
    qt.bits = bits;
    qt.group_size = scheme.group_size;
    qt.sym = true;
    qt.out_features = out;
    qt.in_features = in;
    qt.codes.resize(static_cast<size_t>(out * in));
    qt.scales.resize(static_cast<size_t>(out * ng));
    qt.zeros.assign(static_cast<size_t>(out * ng), 1 << (bits - 1));
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t r = 0; r < out; ++r) {
        std::vector<float> x(static_cast<size_t>(gs)), w(static_cast<size_t>(gs));
        for (int64_t g = 0; g < ng; ++g) {
            const int64_t k0 = g * gs, len = std::min(gs, in - k0);
            int zeros = 0;
            double wsum = 0;
            for (int64_t j = 0; j < gs; ++j) {
                x[j] = j < len ? W[r * in + k0 + j] : 0.f;
                w[j] = j < len ? imatrix[k0 + j] : 1e-5f;  // padding columns
                if (j < len && w[j] == 0.f) ++zeros;
                else if (j < len) wsum += w[j];
            }
            if (zeros > 0) {  // _imatrix_handle_zero (channels never activated by the calibration data)
                if (zeros > len / 2) {
                    double sig2 = 0;
                    for (int64_t j = 0; j < len; ++j) sig2 += double(x[j]) * x[j];
                    const float av = static_cast<float>(std::sqrt(sig2 / 32.0));
                    for (int64_t j = 0; j < len; ++j) w[j] = std::fabs(x[j]) + (bits <= 3 ? 0.f : av);
                } else {
                    const float mean = static_cast<float>(wsum / double(len - zeros));
                    for (int64_t j = 0; j < len; ++j)
                        if (w[j] == 0.f) w[j] = mean;
                }
            }
            float gmax = 0.f;
            for (int64_t j = 0; j < gs; ++j)
                if (std::fabs(x[j]) > std::fabs(gmax)) gmax = x[j];
            const size_t gi = static_cast<size_t>(r * ng + g);
            float s_best;
            if (std::fabs(gmax) < 1e-30f) {
                s_best = tau;  // an all-zero group: any scale gives exact zeros
            } else {
                auto err_of = [&](float is) {
                    const float s = round_to_bf16(1.f / is);
                    float e = 0.f;
                    for (int64_t j = 0; j < gs; ++j) {
                        const float l = std::clamp(std::nearbyint(round_to_bf16(is * x[j])), -Q, Q - 1.f);
                        const float diff = s * l - x[j];
                        e += w[j] * diff * diff;
                    }
                    return e;
                };
                float is_best = round_to_bf16(-Q / gmax);
                float e_best = err_of(is_best);
                for (int k = -K; k <= K; ++k) {
                    if (k == 0) continue;
                    const float is = round_to_bf16(static_cast<float>(-(double(Q) - step * k) / double(gmax)));
                    const float e = err_of(is);
                    if (e < e_best) {
                        e_best = e;
                        is_best = is;
                    }
                }
                s_best = round_to_bf16(1.f / is_best);
                s_best = s_best < 0.f ? std::min(s_best, -tau) : std::max(s_best, tau);
            }
            const float s16 = fp16_to_float(float_to_fp16(s_best));
            qt.scales[gi] = s16;
            for (int64_t j = 0; j < len; ++j) {
                const float qv = std::clamp(std::nearbyint(round_to_bf16(x[j] / s16)), -Q, Q - 1.f);
                qt.codes[static_cast<size_t>(r * in + k0 + j)] = static_cast<uint8_t>(static_cast<int>(qv) + (1 << (bits - 1)));
            }
        }
    }
    qt.validate();
    return qt;
}

bool uses_opt_rtn(const LayerScheme& s) { return s.sym && s.bits < 8 && !is_double_quant(s); }

// Plain RTN of one layer: auto-round's int RTN, or for a GGUF k-quant scheme llama.cpp's reference quantizer.
QuantizedTensor rtn_layer(const std::vector<float>& w, const PlannedLayer& l) {
    if (is_double_quant(l.scheme)) return quantize_dq_rtn(w, l.out, l.in, l.scheme, l.name);
    return quantize_rtn(w, l.out, l.in, qdq_options(l.scheme), l.name);
}

int which_of(const PlannedBlock& b, const std::string& layer) {
    for (int w = 0; w < kNumBlockLinears; ++w)
        if (layer == b.name + "." + block_linear_name(w)) return w;
    fail("layer ", layer, " is not a Qwen3 block linear of ", b.name);
}

std::vector<float> load_outside_weight(const Qwen3Model& model, const PlannedLayer& l) {
    const std::string t = l.name + ".weight";
    check(model.tensors().has(t), "layer ", l.name, " has no tensor ", t, " in the checkpoint",
          l.name == "lm_head" ? " (tied embeddings: lm_head cannot be quantized)" : "");
    const TensorInfo& ti = model.tensors().get(t);
    check(ti.shape == std::vector<int64_t>{l.out, l.in}, "tensor ", t, " has shape ", ti.shape_str());
    return model.tensors().load_f32(t);
}

}  // namespace

bool rtn_needs_calibration(const QuantPlan& plan, const SignRoundOptions& opt) {
    if (opt.iters > 0) return true;
    if (opt.disable_opt_rtn) return false;
    for (const auto& b : plan.blocks)
        for (const auto& l : b.layers)
            if (uses_opt_rtn(l.scheme)) return true;
    return false;
}

// ---- 4. the model ------------------------------------------------------------------------------------------

namespace {

void check_tuning_options(const SignRoundOptions& opt) {
    check(opt.nblocks >= 1, "--nblocks must be >= 1 (the number of consecutive blocks tuned jointly), got ",
          opt.nblocks);
    check(opt.nblocks == 1 || !opt.cuda || opt.iters == 0, "--nblocks ", opt.nblocks,
          ": blocks tuned jointly run on the CPU only (the CUDA block engine tunes one block at a time); "
          "use --device cpu or --nblocks 1");
    check(opt.iters >= 0, "--iters must be >= 0, got ", opt.iters);
    check(opt.batch_size > 0, "--batch_size must be positive, got ", opt.batch_size);
    check(opt.gradient_accumulate_steps > 0, "--gradient_accumulate_steps must be positive, got ",
          opt.gradient_accumulate_steps);
}

}  // namespace

QuantizeResult quantize_model(const Qwen3Model& model, const QuantPlan& plan,
                              const std::vector<std::vector<int32_t>>& samples, const SignRoundOptions& opt,
                              TuningCheckpoint* checkpoint) {
    check_tuning_options(opt);
    BlockInputs in;
    if (rtn_needs_calibration(plan, opt)) {  // calibration samples -> block 0 inputs
        check(!samples.empty(), "no calibration samples: AutoRound tuning (and optimized RTN) needs calibration data");
        in.n = static_cast<int64_t>(samples.size());
        in.L = static_cast<int64_t>(samples.front().size());
        check(in.L >= 2, "calibration samples must have at least 2 tokens (the last token is masked out of the loss)");
        for (size_t i = 0; i < samples.size(); ++i)
            check(static_cast<int64_t>(samples[i].size()) == in.L, "calibration sample ", i, " has ", samples[i].size(),
                  " tokens but sample 0 has ", in.L, "; all samples must have the same length (seqlen)");
        in.hidden = embed_samples(model, samples);  // [n, L, H]
    }
    return quantize_model_from_inputs(model, plan, std::move(in), opt, checkpoint);
}

QuantizeResult quantize_model_from_inputs(const Qwen3Model& model, const QuantPlan& plan, BlockInputs inputs,
                              const SignRoundOptions& opt, TuningCheckpoint* checkpoint) {
    const auto t0 = Clock::now();
    check_tuning_options(opt);
    QuantizeResult res;
    const bool calib = rtn_needs_calibration(plan, opt);
    res.method = opt.iters > 0 ? "signround" : (calib ? "opt-rtn" : "rtn");

    // Layers outside the blocks: RTN (the reference tunes them only when their inputs were cached).
    for (const auto& l : plan.outside) {
        const std::vector<float> w = load_outside_weight(model, l);
        res.layers.emplace(l.name, rtn_layer(w, l));
        res.warnings.push_back(l.name + " is outside the tuned blocks: quantized with plain RTN");
    }
    int last = -1;
    for (const auto& b : plan.blocks) last = std::max(last, b.index);
    const int nlayers = model.config().num_hidden_layers;

    if (!calib) {  // plain RTN: no data needed (§3.1)
        std::optional<ProgressBar> bar;
        if (opt.progress) bar.emplace("RTN", static_cast<int64_t>(plan.blocks.size()), "blocks");
        int done = 0;
        for (const auto& b : plan.blocks) {
            const auto tb = Clock::now();
            for (const auto& l : b.layers) {
                const std::vector<float> w = load_block_weight(model, b.index, which_of(b, l.name));
                res.layers.emplace(l.name, rtn_layer(w, l));
            }
            BlockReport r;
            r.name = b.name;
            r.index = b.index;
            r.layers = static_cast<int>(b.layers.size());
            r.method = "rtn";
            r.seconds = seconds_since(tb);
            res.blocks.push_back(r);
            if (bar) bar->update(++done);
        }
        if (bar) bar->finish();
        res.seconds = seconds_since(t0);
        return res;
    }

    // ---- block 0 inputs, and what the blocks need besides them ---------------------------------------------
    const int64_t n = inputs.n, L = inputs.L, H = model.config().hidden_size;
    check(n > 0 && L > 0, "no calibration samples: AutoRound tuning (and optimized RTN) needs calibration data");
    check(static_cast<int64_t>(inputs.hidden.size()) == n * L * H, "calibration inputs: ", inputs.hidden.size(),
          " values for ", n, " samples x ", L, " tokens x hidden ", H);
    check(inputs.loss_mask.empty() || static_cast<int64_t>(inputs.loss_mask.size()) == n * L,
          "calibration inputs: the loss mask must be [", n, ", ", L, "]");
    check(inputs.mrope_positions.empty() || static_cast<int64_t>(inputs.mrope_positions.size()) == 3 * L,
          "calibration inputs: the M-RoPE positions must be [3, ", L, "]");
    const int64_t nvis = static_cast<int64_t>(inputs.visual_rows.size());
    for (int64_t r : inputs.visual_rows) check(r >= 0 && r < L, "calibration inputs: visual row ", r, " is outside [0, ", L, ")");
    check(static_cast<int>(inputs.deepstack.size()) <= nlayers, "calibration inputs: ", inputs.deepstack.size(),
          " DeepStack features for ", nlayers, " layers");
    for (const auto& ds : inputs.deepstack)
        check(static_cast<int64_t>(ds.size()) == n * nvis * H, "calibration inputs: a DeepStack feature must be [", n,
              ", ", nvis, ", ", H, "]");
    const uint8_t* loss_mask = inputs.loss_mask.empty() ? nullptr : inputs.loss_mask.data();
    // a block with the run's positions
    auto make_block = [&](int layer) {
        auto b = std::make_unique<Qwen3BlockGrad<float>>(load_block_consts(model, layer));
        if (!inputs.mrope_positions.empty()) b->set_mrope_positions(inputs.mrope_positions, inputs.mrope_section);
        return b;
    };
    // DeepStack: after layer `layer`, its feature is added to the visual rows of every sample of x [n, L, H]
    auto deepstack_after = [&](int layer, float* x) {
        if (layer >= static_cast<int>(inputs.deepstack.size()) || !x) return;
        const float* ds = inputs.deepstack[static_cast<size_t>(layer)].data();
        for (int64_t s = 0; s < n; ++s)
            for (int64_t v = 0; v < nvis; ++v) {
                float* row = x + (s * L + inputs.visual_rows[static_cast<size_t>(v)]) * H;
                const float* add = ds + (s * nvis + v) * H;
                for (int64_t h = 0; h < H; ++h) row[h] += add[h];
            }
    };
    std::vector<float> fp_in = std::move(inputs.hidden);  // [n, L, H]
    // The bf16 GPU engine passes bf16 block outputs on (CudaBlockEngine::forward_all); block 0's inputs are rounded
    // the same way, so that the device-resident (bf16-stored) and the host-resident chains see the same numbers.
    // (A bf16 checkpoint's embeddings are bf16 values already.)
    if (opt.cuda && opt.cuda_bf16 && opt.iters > 0) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < static_cast<int64_t>(fp_in.size()); ++i)
            fp_in[static_cast<size_t>(i)] = round_to_bf16(fp_in[static_cast<size_t>(i)]);
    }
    std::vector<float> ref;                               // [n, L, H]
    std::vector<float> q_in;                                   // [n, L, H] once the first block is tuned
    PythonRandom rng(opt.seed);
    std::map<int, const PlannedBlock*> selected;
    for (const auto& b : plan.blocks) selected[b.index] = &b;
    const int64_t fwd_batch = std::min<int64_t>(opt.batch_size, n);

    // --device cuda: both chains stay on the GPU from block to block (dev_fp: the FP chain, whose forward gives the
    // targets in place; dev_q: the quantized chain, the training inputs). The host arrays are then not used.
    // Host-resident instead: --low_gpu_mem_usage, --iters 0, --nblocks > 1 (CPU groups), DeepStack (Qwen3-VL).
    const bool resident = opt.cuda && !opt.low_gpu_mem_usage && opt.iters > 0 && opt.nblocks == 1 &&
                          inputs.deepstack.empty();
    std::unique_ptr<CudaActivations> dev_fp, dev_q;
    bool dev_q_valid = false;  // dev_q holds the quantized chain (after the first tuned block)
    if (resident) {  // bf16 for the bf16 engine, whose block outputs are bf16 values anyway (half the memory)
        const ActivationStorage st = opt.cuda_bf16 ? ActivationStorage::Bf16 : ActivationStorage::Fp32;
        dev_fp = std::make_unique<CudaActivations>(n, L, H, fp_in.data(), st);
        dev_q = std::make_unique<CudaActivations>(n, L, H, st);
        std::vector<float>().swap(fp_in);  // the host copy is not needed any more
    } else {
        ref.resize(fp_in.size());
    }
    // x <- block(x) over all samples on the GPU, with the weights W
    auto dev_forward = [&](Qwen3BlockGrad<float>& block, const std::array<const float*, kNumBlockLinears>& W,
                           CudaActivations& x) {
        CudaBlockEngine e(block.consts(), fwd_batch, x, nullptr, engine_options(opt, block));
        for (int i = 0; i < kNumBlockLinears; ++i) e.set_weight(i, W[i]);
        e.forward_all(x);
    };

    // Resident chains: the host part of a tuned block's §2.8 (downloading its best parameters, codes, host QDQ weights,
    // its resume checkpoint) runs on another thread while the GPU takes the next block (the chain's QDQ weights come
    // from the device), and the next block's weights are read from the model meanwhile. Results are taken in block
    // order (flush_pending).
    using BlockWeights = std::array<std::vector<float>, kNumBlockLinears>;
    struct PendingFinish {
        BlockWeights W;  // the block's original weights, read by the finish
        BlockTuneResult r;
        int layer = 0;
        std::vector<BlockLayerSpec> layers;
        PythonRandom rng;  // the sampler's state after the block (what its checkpoint records)
    };
    std::shared_ptr<PendingFinish> pending;
    std::future<void> pending_done;
    auto flush_pending = [&] {
        if (!pending) return;
        const std::shared_ptr<PendingFinish> p = std::move(pending);  // (leaves pending empty)
        pending_done.get();  // rethrows what the finish or the checkpoint threw
        for (auto& [k, v] : p->r.quantized) res.layers.emplace(k, std::move(v));
        res.blocks.push_back(p->r.report);
    };
    auto load_weights = [&model](int layer) {
        BlockWeights w;
        for (int i = 0; i < kNumBlockLinears; ++i) w[i] = load_block_weight(model, layer, i);
        return w;
    };
    int prefetched_layer = -1;
    std::future<BlockWeights> prefetched;

    int step = 1;  // blocks handled by one pass of the loop (a group's size)
    for (int l = 0; l <= last && l < nlayers; l += step) {
        step = 1;
        const auto tb = Clock::now();
        std::unique_ptr<Qwen3BlockGrad<float>> block_ptr = make_block(l);
        Qwen3BlockGrad<float>& block = *block_ptr;
        BlockWeights W = prefetched_layer == l ? prefetched.get() : load_weights(l);
        prefetched_layer = -1;
        if (resident && l + 1 <= last && l + 1 < nlayers) {  // the next block's weights while this one runs
            prefetched = std::async(std::launch::async, load_weights, l + 1);
            prefetched_layer = l + 1;
        }
        std::array<const float*, kNumBlockLinears> wp{};
        for (int i = 0; i < kNumBlockLinears; ++i) wp[i] = W[i].data();
        const auto it = selected.find(l);
        const std::string name = model.config().text_prefix + "layers." + std::to_string(l);
        if (opt.iters == 0) {
            // optimized RTN: imatrix from the FP chain; no quantized-input propagation (§3.2)
            std::array<std::vector<double>, kNumBlockLinears> imat;
            std::vector<float> tmp(static_cast<size_t>(fwd_batch * L * H));
            for (int64_t s = 0; s < n; s += fwd_batch) {
                const int64_t b = std::min(fwd_batch, n - s);
                block_forward_imatrix(block, wp, fp_in.data() + s * L * H, b, L, tmp.data(), imat);
                std::memcpy(ref.data() + s * L * H, tmp.data(), static_cast<size_t>(b * L * H) * sizeof(float));
            }
            imat[kLinK] = imat[kLinV] = imat[kLinQ];
            imat[kLinUp] = imat[kLinGate];
            if (it != selected.end()) {
                for (const auto& pl : it->second->layers) {
                    const int w = which_of(*it->second, pl.name);
                    std::vector<float> im(imat[w].size());
                    for (size_t j = 0; j < im.size(); ++j) im[j] = static_cast<float>(imat[w][j] / double(n));
                    const auto shape = block_linear_shape(block.dims(), w);
                    res.layers.emplace(pl.name, uses_opt_rtn(pl.scheme)
                                                    ? quantize_opt_rtn(W[w], shape[0], shape[1], pl.scheme, im, pl.name)
                                                    : rtn_layer(W[w], pl));
                }
                BlockReport r;
                r.name = name;
                r.index = l;
                r.layers = static_cast<int>(it->second->layers.size());
                r.method = "opt-rtn";
                r.seconds = seconds_since(tb);
                res.blocks.push_back(r);
                if (opt.progress)
                    std::fprintf(stderr, "%s: optimized RTN of %d layers in %s\n", name.c_str(), r.layers,
                                 ProgressBar::format_duration(r.seconds).c_str());
            }
            deepstack_after(l, ref.data());
            std::swap(fp_in, ref);
            continue;
        }

        if (it == selected.end()) {
            flush_pending();
            // not selected: both chains go through the unquantized block
            if (resident) {  // in place on the device (no DeepStack there)
                dev_forward(block, wp, *dev_fp);
                if (dev_q_valid) dev_forward(block, wp, *dev_q);
            } else {
                forward_all_on(opt, block, wp, fp_in.data(), n, L, fwd_batch, ref.data());  // FP targets
                if (!q_in.empty()) forward_all_on(opt, block, wp, q_in.data(), n, L, fwd_batch, q_in.data());
                deepstack_after(l, ref.data());
                if (!q_in.empty()) deepstack_after(l, q_in.data());
                std::swap(fp_in, ref);  // fp_in <- FP output of this block
            }
            BlockReport r;
            r.name = name;
            r.index = l;
            r.method = "fp";
            r.seconds = seconds_since(tb);
            res.blocks.push_back(r);
            continue;
        }

        // ---- a group: this block and up to nblocks-1 following selected blocks (nblocks 1: this block) ----
        std::vector<std::unique_ptr<Qwen3BlockGrad<float>>> more_blocks;  // members 1.. (member 0 is `block`)
        std::vector<std::array<std::vector<float>, kNumBlockLinears>> more_W;
        std::vector<int> gidx = {l};
        while (static_cast<int>(gidx.size()) < opt.nblocks) {
            const int nx = gidx.back() + 1;
            if (nx > last || nx >= nlayers || !selected.count(nx)) break;
            if (gidx.back() < static_cast<int>(inputs.deepstack.size())) break;  // a DeepStack addition follows
            gidx.push_back(nx);
        }
        const size_t M = gidx.size();
        more_blocks.reserve(M - 1);
        more_W.resize(M - 1);
        for (size_t m = 1; m < M; ++m) {
            more_blocks.push_back(make_block(gidx[m]));
            for (int i = 0; i < kNumBlockLinears; ++i) more_W[m - 1][i] = load_block_weight(model, gidx[m], i);
        }
        std::vector<BlockGroupMember> members(M);
        std::vector<Qwen3BlockGrad<float>*> gblocks(M);
        std::vector<std::array<const float*, kNumBlockLinears>> gW(M);
        for (size_t m = 0; m < M; ++m) {
            BlockGroupMember& mb = members[m];
            const PlannedBlock& pb = *selected.at(gidx[m]);
            mb.block = m == 0 ? &block : more_blocks[m - 1].get();
            mb.W = m == 0 ? &W : &more_W[m - 1];
            mb.name = model.config().text_prefix + "layers." + std::to_string(gidx[m]);
            mb.index = gidx[m];
            for (const auto& pl : pb.layers) mb.layers.push_back({which_of(pb, pl.name), pl.name, pl.scheme});
            gblocks[m] = mb.block;
            for (int i = 0; i < kNumBlockLinears; ++i) gW[m][i] = (*mb.W)[i].data();
        }
        const std::string gname = block_group_name(members);
        bool resumable = checkpoint != nullptr;
        for (int g : gidx) resumable = resumable && checkpoint->has(g);
        if (resident) {  // one block (nblocks 1), no DeepStack: the same steps as below with the chains on the GPU
            const auto tt = Clock::now();
            // the training inputs: the quantized chain, or (first block, or --disable_quanted_input) the FP input
            if (!dev_q_valid || !opt.enable_quanted_input) dev_q->copy_from(*dev_fp);
            dev_forward(block, wp, *dev_fp);  // FP targets; dev_fp <- this block's FP output
            const double targets_s = seconds_since(tt);
            DeviceChain dc{dev_q.get(), dev_fp.get(), opt.enable_quanted_input ? dev_q.get() : nullptr};
            if (resumable) {
                flush_pending();
                TuningCheckpoint::Block cb = checkpoint->load(l);
                std::array<std::vector<float>, kNumBlockLinears> qdq = W;
                for (const auto& sp : members[0].layers) {
                    const auto q = cb.qdq.find(sp.name);
                    check(q != cb.qdq.end() && q->second.size() == qdq[static_cast<size_t>(sp.which)].size(),
                          "resume checkpoint ", checkpoint->dir().string(), " has no QDQ weights for ", sp.name,
                          "; delete it to start over");
                    qdq[static_cast<size_t>(sp.which)] = std::move(q->second);
                }
                for (auto& [k, v] : cb.quantized) res.layers.emplace(k, std::move(v));
                cb.report.resumed = true;
                res.blocks.push_back(cb.report);
                if (opt.progress)
                    std::fprintf(stderr, "%s: resumed from %s (loss %s -> best %s @%d)\n", gname.c_str(),
                                 checkpoint->dir().string().c_str(), fmt_loss(cb.report.initial_loss).c_str(),
                                 fmt_loss(cb.report.best_loss).c_str(), cb.report.best_iter);
                std::array<const float*, kNumBlockLinears> qp{};
                for (int i = 0; i < kNumBlockLinears; ++i) qp[i] = qdq[i].data();
                if (dc.qout) dev_forward(block, qp, *dev_q);
                rng.set_state(cb.rng);
            } else {
                dc.defer_finish = true;
                std::vector<BlockTuneResult> br =
                    tune_group_impl(members, nullptr, nullptr, n, L, opt, rng, nullptr, loss_mask, &dc);
                br[0].report.targets_seconds = targets_s;
                br[0].report.seconds = seconds_since(tb);
                flush_pending();  // the previous block's, which ran while this one was tuned
                auto p = std::make_shared<PendingFinish>();
                p->W = std::move(W);  // (moving keeps the arrays where they are: the finish reads them)
                p->r = std::move(br[0]);
                p->layer = l;
                p->layers = members[0].layers;
                p->rng = rng;
                auto fin = std::move(p->r.finish);
                p->r.finish = nullptr;
                pending_done = std::async(std::launch::async, [p, fin = std::move(fin), checkpoint] {
                    // half the cores: the thread that drives the GPU must not wait for one
                    omp_set_num_threads(std::max(1, omp_get_num_procs() / 2));
                    if (fin) fin(p->r);
                    if (checkpoint) checkpoint->save(p->layer, p->r, p->layers, p->rng);
                });
                pending = std::move(p);
            }
            dev_q_valid = opt.enable_quanted_input;
            continue;
        }
        flush_pending();
        // FP targets: the group's input through its unquantized blocks (fp_in stays the group's input)
        const auto tt = Clock::now();
        group_forward_all(opt, gblocks, gW, fp_in.data(), n, L, fwd_batch, ref.data());
        const double targets_s = seconds_since(tt);

        const bool use_q = opt.enable_quanted_input && !q_in.empty();
        const float* train = use_q ? q_in.data() : fp_in.data();
        float* qout = nullptr;
        if (opt.enable_quanted_input) {
            if (q_in.empty()) q_in.resize(fp_in.size());
            qout = q_in.data();  // QGroup(train) -> next group's quantized input (may alias train)
        }
        if (resumable) {
            // finished in an earlier run: its codes, and the quantized chain rebuilt with its QDQ weights
            // exactly as tune_group_impl computes it
            std::vector<std::array<std::vector<float>, kNumBlockLinears>> qdq(M);
            PythonRandom::State rng_after;
            for (size_t m = 0; m < M; ++m) {
                TuningCheckpoint::Block cb = checkpoint->load(gidx[m]);
                qdq[m] = *members[m].W;
                for (const auto& sp : members[m].layers) {
                    const auto q = cb.qdq.find(sp.name);
                    check(q != cb.qdq.end() && q->second.size() == qdq[m][static_cast<size_t>(sp.which)].size(),
                          "resume checkpoint ", checkpoint->dir().string(), " has no QDQ weights for ", sp.name,
                          "; delete it to start over");
                    qdq[m][static_cast<size_t>(sp.which)] = std::move(q->second);
                }
                rng_after = cb.rng;  // the same for every block of a group (saved after the group)
                for (auto& [k, v] : cb.quantized) res.layers.emplace(k, std::move(v));
                cb.report.resumed = true;
                res.blocks.push_back(cb.report);
                if (m + 1 == M && opt.progress)
                    std::fprintf(stderr, "%s: resumed from %s (loss %s -> best %s @%d)\n", gname.c_str(),
                                 checkpoint->dir().string().c_str(), fmt_loss(cb.report.initial_loss).c_str(),
                                 fmt_loss(cb.report.best_loss).c_str(), cb.report.best_iter);
            }
            if (qout) group_forward_all<Qwen3BlockGrad<float>, kNumBlockLinears>(opt, gblocks, weight_ptrs(qdq), train, n, L, fwd_batch, qout);
            rng.set_state(rng_after);
        } else {
            std::vector<BlockTuneResult> br = tune_group_impl(members, train, ref.data(), n, L, opt, rng, qout, loss_mask);
            const double secs = seconds_since(tb);
            for (size_t m = 0; m < M; ++m) {
                br[m].report.seconds = secs;
                br[m].report.targets_seconds = targets_s;
                if (checkpoint) checkpoint->save(gidx[m], br[m], members[m].layers, rng);
            }
            for (size_t m = 0; m < M; ++m) {
                for (auto& [k, v] : br[m].quantized) res.layers.emplace(k, std::move(v));
                res.blocks.push_back(br[m].report);
            }
        }
        deepstack_after(gidx.back(), ref.data());  // groups end where a DeepStack addition follows
        if (qout) deepstack_after(gidx.back(), qout);
        std::swap(fp_in, ref);  // fp_in <- FP output of this group
        step = static_cast<int>(M);
    }
    flush_pending();
    res.seconds = seconds_since(t0);
    return res;
}

}  // namespace autoround
