// model/qwen3_vl_vision.cpp — see qwen3_vl_vision.h. The forward follows qwen3-architecture.md §2.3
// step by step, in float32; GEMMs go through ops/cpu/linear (BLAS, OpenMP tiles), attention runs one
// (frame, head, query block) per OpenMP task with two sgemm calls each.
#include "model/qwen3_vl_vision.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "ops/cpu/gelu.h"
#include "quant/quantized_loader.h"
#include "core/bf16.h"
#include "ops/cpu/layer_norm.h"
#include "ops/cpu/linear.h"
#include "ops/cpu/rope.h"

namespace autoround {

namespace {

constexpr float kLayerNormEps = kVisionLayerNormEps;

int required_int(const nlohmann::json& j, const char* field, const std::string& label) {
    check(j.contains(field), label, ": vision_config.", field, " is missing");
    const auto& v = j.at(field);
    check(v.is_number_integer(), label, ": vision_config.", field, " must be an integer, got ", v.dump());
    const int64_t x = v.get<int64_t>();
    check(x > 0 && x <= (1 << 24), label, ": vision_config.", field, " = ", x, " is out of range");
    return static_cast<int>(x);
}

std::string shape_str(std::initializer_list<int64_t> dims) {
    std::string s = "[";
    for (auto it = dims.begin(); it != dims.end(); ++it) s += (it == dims.begin() ? "" : ", ") + std::to_string(*it);
    return s + "]";
}

const TensorInfo& tensor_of(const TensorStore& store, const std::string& name, std::initializer_list<int64_t> shape) {
    check(store.has(name), "vision tower: tensor ", name, " is missing from the checkpoint (expected shape ",
          shape_str(shape), ")");
    const TensorInfo& t = store.get(name);
    check(t.shape == std::vector<int64_t>(shape), "vision tower: tensor ", name, " in ", t.file.string(),
          " has shape ", t.shape_str(), ", expected ", shape_str(shape), " from vision_config");
    check(t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32, "vision tower: tensor ", name,
          " has dtype ", dtype_name(t.dtype), "; expected BF16, F16 or F32 (the vision tower is not quantized)");
    return t;
}

// A matrix used in place: [out, in] (a higher-rank tensor such as the Conv3d kernel is viewed flat).
WeightView matrix(const TensorStore& store, const std::string& name, std::initializer_list<int64_t> shape,
                  int64_t out, int64_t in) {
    const TensorInfo& t = tensor_of(store, name, shape);
    return WeightView{t.dtype, t.data, out, in};
}

std::vector<float> vec(const TensorStore& store, const std::string& name, int64_t n) {
    tensor_of(store, name, {n});
    return store.load_f32(name);
}

void init_blas_single_thread() {
    static const bool done = [] {
        openblas_set_num_threads(1);  // we parallelise over attention tasks with OpenMP
        return true;
    }();
    (void)done;
}

// torch.linspace(0, n-1, steps)[i] in float32 as PyTorch's CPU kernel computes it (the first half counts
// up from the start, the second half down from the end). This is the sampling grid of the bilinear
// (align_corners=True) position-embedding interpolation.
float linspace_at(int64_t i, int64_t steps, int64_t n) {
    if (steps == 1) return 0.0f;
    const float end = static_cast<float>(n - 1);
    const float step = end / static_cast<float>(steps - 1);
    return i < steps / 2 ? step * static_cast<float>(i) : end - step * static_cast<float>(steps - i - 1);
}

struct Tap {
    int64_t lo, hi;  // neighbouring grid rows (or columns)
    float w_lo, w_hi;
};

Tap tap_at(int64_t i, int64_t steps, int64_t n) {
    const float s = linspace_at(i, steps, n);
    Tap t;
    t.lo = static_cast<int64_t>(s);  // s >= 0: truncation = floor
    t.hi = std::min<int64_t>(t.lo + 1, n - 1);
    const float d = s - static_cast<float>(t.lo);
    t.w_lo = 1.0f - d;
    t.w_hi = d;
    return t;
}

// Validates the grids (t, h, w in [1, 65536]; h and w multiples of the merge size m); returns Σ t·h·w.
int64_t grid_patches(std::span<const ImageGrid> grids, int64_t m, const char* who) {
    check(!grids.empty(), who, ": no images (the grid list is empty)");
    int64_t total = 0;
    for (size_t i = 0; i < grids.size(); ++i) {
        const ImageGrid& g = grids[i];
        check(g.t >= 1 && g.h >= 1 && g.w >= 1 && g.h <= 65536 && g.w <= 65536 && g.t <= 65536, who, ": image ", i,
              " has grid (t=", g.t, ", h=", g.h, ", w=", g.w, "); each must be in [1, 65536]");
        check(g.h % m == 0 && g.w % m == 0, who, ": image ", i, " has grid (t=", g.t, ", h=", g.h, ", w=", g.w,
              "); h and w must be multiples of spatial_merge_size ", m);
        total += int64_t(g.t) * g.h * g.w;
    }
    return total;
}

// Calls f(image, n, row, col) for every patch n in the processor's order (§2.3 3b): images, frames, m×m
// blocks row-major, then the m×m patches of a block row-major.
template <typename F>
void for_each_patch(std::span<const ImageGrid> grids, int64_t m, F&& f) {
    int64_t n = 0;
    for (size_t i = 0; i < grids.size(); ++i) {
        const ImageGrid& g = grids[i];
        for (int64_t fr = 0; fr < g.t; ++fr)
            for (int64_t br = 0; br < g.h / m; ++br)
                for (int64_t bc = 0; bc < g.w / m; ++bc)
                    for (int64_t dy = 0; dy < m; ++dy)
                        for (int64_t dx = 0; dx < m; ++dx, ++n) f(i, n, br * m + dy, bc * m + dx);
    }
}

struct Segment {
    int64_t start, len;  // rows of one image frame: attention stays inside
};

// Bidirectional attention inside each segment. qkv [N, 3·H] (rows [q | k | v], heads of head_dim D
// contiguous inside each), out [N, H]. softmax(q·kᵀ·scale)·v per (segment, head), float32.
void segment_attention(const float* qkv, int64_t hidden, int64_t n_heads, int64_t D,
                       const std::vector<Segment>& segs, float* out) {
    constexpr int64_t kQBlock = 64;  // query rows per task
    struct Task { int64_t seg, head, q0; };
    std::vector<Task> tasks;
    int64_t max_len = 0;
    for (int64_t s = 0; s < static_cast<int64_t>(segs.size()); ++s) {
        max_len = std::max(max_len, segs[s].len);
        for (int64_t h = 0; h < n_heads; ++h)
            for (int64_t q0 = 0; q0 < segs[s].len; q0 += kQBlock) tasks.push_back({s, h, q0});
    }
    const int64_t ld = 3 * hidden;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    init_blas_single_thread();
#pragma omp parallel
    {
        std::vector<float> scores(static_cast<size_t>(kQBlock * max_len));  // [nq, L]
#pragma omp for schedule(dynamic, 1)
        for (int64_t ti = 0; ti < static_cast<int64_t>(tasks.size()); ++ti) {
            const Task& tk = tasks[ti];
            const Segment& sg = segs[tk.seg];
            const int64_t L = sg.len, nq = std::min(kQBlock, L - tk.q0);
            const float* q = qkv + (sg.start + tk.q0) * ld + tk.head * D;   // [nq, D] stride ld
            const float* k = qkv + sg.start * ld + hidden + tk.head * D;    // [L, D] stride ld
            const float* v = qkv + sg.start * ld + 2 * hidden + tk.head * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(L),
                        static_cast<int>(D), scale, q, static_cast<int>(ld), k, static_cast<int>(ld), 0.0f,
                        scores.data(), static_cast<int>(L));
            for (int64_t r = 0; r < nq; ++r) {
                float* sr = scores.data() + r * L;
                float mx = -std::numeric_limits<float>::infinity();
                for (int64_t j = 0; j < L; ++j) mx = std::max(mx, sr[j]);
                float sum = 0.f;
                for (int64_t j = 0; j < L; ++j) {
                    sr[j] = std::exp(sr[j] - mx);
                    sum += sr[j];
                }
                const float inv = 1.0f / sum;
                for (int64_t j = 0; j < L; ++j) sr[j] *= inv;
            }
            float* o = out + (sg.start + tk.q0) * hidden + tk.head * D;  // [nq, D] stride hidden
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(nq), static_cast<int>(D),
                        static_cast<int>(L), 1.0f, scores.data(), static_cast<int>(L), v, static_cast<int>(ld),
                        0.0f, o, static_cast<int>(hidden));
        }
    }
}

// 2-D rotary in place on the q and k parts of qkv [N, 3·H]. cos/sin [N, D/2] per token.
void apply_rotary(float* qkv, int64_t N, int64_t hidden, int64_t n_heads, int64_t D, const float* cos_t,
                  const float* sin_t) {
    const int64_t half = D / 2;
#pragma omp parallel for schedule(static) if (N * n_heads > 256)
    for (int64_t t = 0; t < N; ++t) {
        const float* c = cos_t + t * half;
        const float* s = sin_t + t * half;
        for (int64_t part = 0; part < 2; ++part) {  // q, then k
            for (int64_t h = 0; h < n_heads; ++h) {
                float* x = qkv + t * 3 * hidden + part * hidden + h * D;
                for (int64_t j = 0; j < half; ++j) {
                    const float a = x[j], b = x[j + half];
                    x[j] = a * c[j] - b * s[j];
                    x[j + half] = b * c[j] + a * s[j];
                }
            }
        }
    }
}

void add_into(float* y, const float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

Qwen3VLVisionConfig parse_qwen3_vl_vision_config(const nlohmann::json& j, const std::string& label) {
    check(j.is_object(), label, ": vision_config must be an object");
    Qwen3VLVisionConfig c;
    c.depth = required_int(j, "depth", label);
    c.hidden_size = required_int(j, "hidden_size", label);
    c.num_heads = required_int(j, "num_heads", label);
    c.intermediate_size = required_int(j, "intermediate_size", label);
    c.in_channels = required_int(j, "in_channels", label);
    c.patch_size = required_int(j, "patch_size", label);
    c.temporal_patch_size = required_int(j, "temporal_patch_size", label);
    c.spatial_merge_size = required_int(j, "spatial_merge_size", label);
    c.out_hidden_size = required_int(j, "out_hidden_size", label);
    c.num_position_embeddings = required_int(j, "num_position_embeddings", label);

    check(j.contains("deepstack_visual_indexes"), label, ": vision_config.deepstack_visual_indexes is missing");
    const auto& ds = j.at("deepstack_visual_indexes");
    check(ds.is_array(), label, ": vision_config.deepstack_visual_indexes must be a list of block indexes, got ",
          ds.dump());
    for (const auto& v : ds) {
        check(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < c.depth, label,
              ": vision_config.deepstack_visual_indexes holds ", v.dump(), "; expected block indexes in [0, ",
              c.depth, ")");
        c.deepstack_visual_indexes.push_back(v.get<int>());
    }

    c.hidden_act = "gelu_pytorch_tanh";
    if (j.contains("hidden_act")) {
        check(j.at("hidden_act").is_string(), label, ": vision_config.hidden_act must be a string");
        c.hidden_act = j.at("hidden_act").get<std::string>();
    }
    check(c.hidden_act == "gelu_pytorch_tanh" || c.hidden_act == "gelu", label, ": vision_config.hidden_act '",
          c.hidden_act, "' is not supported; expected gelu_pytorch_tanh or gelu");

    // Newer configs: rope_parameters.rope_theta; older ones may carry rope_theta; else the class default.
    const nlohmann::json* theta = nullptr;
    if (j.contains("rope_parameters") && j.at("rope_parameters").is_object() &&
        j.at("rope_parameters").contains("rope_theta"))
        theta = &j.at("rope_parameters").at("rope_theta");
    else if (j.contains("rope_theta"))
        theta = &j.at("rope_theta");
    if (theta) {
        check(theta->is_number() && theta->get<double>() > 0, label, ": vision_config rope_theta must be a positive ",
              "number, got ", theta->dump());
        c.rope_theta = theta->get<double>();
    }

    check(c.hidden_size % c.num_heads == 0, label, ": vision_config.hidden_size ", c.hidden_size,
          " is not divisible by num_heads ", c.num_heads);
    check(c.head_dim() % 4 == 0, label, ": vision head_dim ", c.head_dim(),
          " (hidden_size / num_heads) must be a multiple of 4 for the 2-D rotary embedding");
    const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(c.num_position_embeddings))));
    check(side * side == c.num_position_embeddings, label, ": vision_config.num_position_embeddings ",
          c.num_position_embeddings, " is not a perfect square (the learned grid is side×side)");
    return c;
}

Qwen3VLVision Qwen3VLVision::load(const TensorStore& store, const Qwen3VLVisionConfig& cfg,
                                  const std::string& prefix, const QuantizationConfig* quant) {
    Qwen3VLVision m;
    m.cfg_ = cfg;
    m.store_ = store;
    m.owned_ = std::make_shared<std::vector<std::vector<float>>>();
    const int64_t H = cfg.hidden_size, I = cfg.intermediate_size, O = cfg.out_hidden_size;
    const int64_t unit = int64_t(cfg.spatial_merge_size) * cfg.spatial_merge_size;
    const int64_t M = unit * H;  // merger width
    const std::string& p = prefix;
    const TensorStore& s = m.store_;
    // A block linear `name` (no ".weight"): in place, or dequantized + bf16-rounded when stored packed.
    auto block_linear = [&](const std::string& name, std::initializer_list<int64_t> shape, int64_t out,
                            int64_t in) -> WeightView {
        if (quant && !s.has(name + ".weight")) {
            std::optional<std::vector<float>> w = load_linear_dequantized(s, name, *quant, out, in);
            if (w) {
                for (float& v : *w) v = round_to_bf16(v);
                m.owned_->push_back(std::move(*w));
                return WeightView{DType::F32, m.owned_->back().data(), out, in};
            }
        }
        return matrix(s, name + ".weight", shape, out, in);
    };

    m.patch_w_ = matrix(s, p + "patch_embed.proj.weight",
                        {H, cfg.in_channels, cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size}, H,
                        cfg.patch_dim());
    m.patch_b_ = vec(s, p + "patch_embed.proj.bias", H);
    tensor_of(s, p + "pos_embed.weight", {cfg.num_position_embeddings, H});
    m.pos_embed_ = s.load_f32(p + "pos_embed.weight");

    for (int b = 0; b < cfg.depth; ++b) {
        const std::string q = p + "blocks." + std::to_string(b) + ".";
        Block blk;
        blk.norm1_w = vec(s, q + "norm1.weight", H);
        blk.norm1_b = vec(s, q + "norm1.bias", H);
        blk.norm2_w = vec(s, q + "norm2.weight", H);
        blk.norm2_b = vec(s, q + "norm2.bias", H);
        blk.qkv = block_linear(q + "attn.qkv", {3 * H, H}, 3 * H, H);
        blk.qkv_b = vec(s, q + "attn.qkv.bias", 3 * H);
        blk.proj = block_linear(q + "attn.proj", {H, H}, H, H);
        blk.proj_b = vec(s, q + "attn.proj.bias", H);
        blk.fc1 = block_linear(q + "mlp.linear_fc1", {I, H}, I, H);
        blk.fc1_b = vec(s, q + "mlp.linear_fc1.bias", I);
        blk.fc2 = block_linear(q + "mlp.linear_fc2", {H, I}, H, I);
        blk.fc2_b = vec(s, q + "mlp.linear_fc2.bias", H);
        m.blocks_.push_back(std::move(blk));
    }

    auto load_merger = [&](const std::string& q, bool postshuffle) {
        Merger mg;
        mg.postshuffle = postshuffle;
        const int64_t nd = postshuffle ? M : H;
        mg.norm_w = vec(s, q + "norm.weight", nd);
        mg.norm_b = vec(s, q + "norm.bias", nd);
        mg.fc1 = matrix(s, q + "linear_fc1.weight", {M, M}, M, M);
        mg.fc1_b = vec(s, q + "linear_fc1.bias", M);
        mg.fc2 = matrix(s, q + "linear_fc2.weight", {O, M}, O, M);
        mg.fc2_b = vec(s, q + "linear_fc2.bias", O);
        return mg;
    };
    m.merger_ = load_merger(p + "merger.", false);
    for (size_t k = 0; k < cfg.deepstack_visual_indexes.size(); ++k)
        m.deepstack_.push_back(load_merger(p + "deepstack_merger_list." + std::to_string(k) + ".", true));

    RopeConfig rope;
    rope.theta = cfg.rope_theta;
    m.inv_freq_ = rope_inv_freq(rope, cfg.head_dim() / 2);  // 1/θ^(2j/(D/2)), j < D/4
    return m;
}

void Qwen3VLVision::run_merger(const Merger& mg, const float* x, int64_t n_patches, float* out) const {
    const int64_t H = cfg_.hidden_size;
    const int64_t unit = int64_t(cfg_.spatial_merge_size) * cfg_.spatial_merge_size;
    const int64_t n = n_patches / unit, M = unit * H;
    std::vector<float> h(static_cast<size_t>(n_patches * H));  // [N, H] = [n, M]
    if (mg.postshuffle)
        layer_norm(x, mg.norm_w.data(), mg.norm_b.data(), n, M, kLayerNormEps, h.data());
    else
        layer_norm(x, mg.norm_w.data(), mg.norm_b.data(), n_patches, H, kLayerNormEps, h.data());
    std::vector<float> f(static_cast<size_t>(n * M));  // [n, M]
    linear(h.data(), n, mg.fc1, mg.fc1_b.data(), f.data());
    gelu_erf(f.data(), n * M, f.data());
    linear(f.data(), n, mg.fc2, mg.fc2_b.data(), out);  // [n, out_hidden]
}

std::vector<float> Qwen3VLVision::embed(std::span<const float> pixel_values, std::span<const ImageGrid> grids,
                                        const VisionHook& hook, const char* who) const {
    const Qwen3VLVisionConfig& c = cfg_;
    check(static_cast<int>(blocks_.size()) == c.depth && c.depth > 0, who, ": the vision tower is not loaded");
    const int64_t H = c.hidden_size, P = c.patch_dim(), m = c.spatial_merge_size;
    const int64_t N = grid_patches(grids, m, who);
    const int64_t n_floats = static_cast<int64_t>(pixel_values.size());
    if (n_floats != N * P) {
        std::string hint;
        if (N > 0 && n_floats % N == 0)
            hint = " (it holds " + std::to_string(N) + " rows of width " + std::to_string(n_floats / N) + ")";
        else if (n_floats % P == 0)
            hint = " (it holds " + std::to_string(n_floats / P) + " rows of width " + std::to_string(P) + ")";
        fail(who, ": pixel_values has ", n_floats, " floats", hint, " but the grids total ", N,
             " patches (Σ t·h·w) of width ", P, " = in_channels·temporal_patch_size·patch_size² (",
             c.in_channels, "·", c.temporal_patch_size, "·", c.patch_size, "²), i.e. ", N * P, " floats");
    }

    std::vector<float> x(static_cast<size_t>(N * H));  // [N, H]
    linear(pixel_values.data(), N, patch_w_, patch_b_.data(), x.data());
    if (hook) hook("patch_embed_out", x.data(), N, H);

    // Position embedding: bilinear taps of the side×side table at each patch's (row, col) of its grid.
    const int64_t side = std::lround(std::sqrt(static_cast<double>(c.num_position_embeddings)));
    std::vector<std::vector<Tap>> rtaps(grids.size()), ctaps(grids.size());  // [image][h], [image][w]
    for (size_t i = 0; i < grids.size(); ++i) {
        for (int64_t r = 0; r < grids[i].h; ++r) rtaps[i].push_back(tap_at(r, grids[i].h, side));
        for (int64_t cc = 0; cc < grids[i].w; ++cc) ctaps[i].push_back(tap_at(cc, grids[i].w, side));
    }
    for_each_patch(grids, m, [&](size_t img, int64_t n, int64_t r, int64_t cc) {
        // pe = Σ taps table[idx]·(w_row·w_col), summed in the tap order (r0,c0), (r0,c1), (r1,c0), (r1,c1)
        // in float32.
        const Tap& a = rtaps[img][r];
        const Tap& b = ctaps[img][cc];
        const float w00 = a.w_lo * b.w_lo, w01 = a.w_lo * b.w_hi;
        const float w10 = a.w_hi * b.w_lo, w11 = a.w_hi * b.w_hi;
        const float* e00 = pos_embed_.data() + (a.lo * side + b.lo) * H;
        const float* e01 = pos_embed_.data() + (a.lo * side + b.hi) * H;
        const float* e10 = pos_embed_.data() + (a.hi * side + b.lo) * H;
        const float* e11 = pos_embed_.data() + (a.hi * side + b.hi) * H;
        float* xr = x.data() + n * H;
        for (int64_t i = 0; i < H; ++i) {
            const float pe = e00[i] * w00 + e01[i] * w01 + e10[i] * w10 + e11[i] * w11;
            xr[i] += pe;
        }
    });
    return x;
}

std::vector<float> Qwen3VLVision::embed_patches(std::span<const float> pixel_values,
                                                std::span<const ImageGrid> grids) const {
    return embed(pixel_values, grids, {}, "vision embed_patches");
}

void Qwen3VLVision::rotary_tables(std::span<const ImageGrid> grids, std::vector<float>& cos_t,
                                  std::vector<float>& sin_t) const {
    const Qwen3VLVisionConfig& c = cfg_;
    check(!inv_freq_.empty(), "vision rotary_tables: the vision tower is not loaded");
    const int64_t N = grid_patches(grids, c.spatial_merge_size, "vision rotary_tables");
    std::vector<int32_t> prow(N), pcol(N);
    for_each_patch(grids, c.spatial_merge_size, [&](size_t, int64_t n, int64_t r, int64_t cc) {
        prow[n] = static_cast<int32_t>(r);
        pcol[n] = static_cast<int32_t>(cc);
    });
    // frequency j < D/4 turns with the row, j >= D/4 with the column
    const int64_t half = c.head_dim() / 2, quarter = c.head_dim() / 4;
    cos_t.assign(static_cast<size_t>(N * half), 0.0f);
    sin_t.assign(static_cast<size_t>(N * half), 0.0f);
#pragma omp parallel for schedule(static) if (N > 256)
    for (int64_t t = 0; t < N; ++t) {
        for (int64_t j = 0; j < half; ++j) {
            const float ang = j < quarter ? static_cast<float>(prow[t]) * inv_freq_[j]
                                          : static_cast<float>(pcol[t]) * inv_freq_[j - quarter];
            cos_t[t * half + j] = std::cos(ang);
            sin_t[t * half + j] = std::sin(ang);
        }
    }
}

VisionOutput Qwen3VLVision::encode(std::span<const float> pixel_values, std::span<const ImageGrid> grids,
                                   const VisionHook& hook) const {
    const Qwen3VLVisionConfig& c = cfg_;
    const int64_t H = c.hidden_size, nh = c.num_heads, D = c.head_dim();
    const int64_t m = c.spatial_merge_size, unit = m * m;

    std::vector<float> x = embed(pixel_values, grids, hook, "vision encode");  // [N, H] the residual stream
    const int64_t N = static_cast<int64_t>(x.size()) / H;
    if (hook) hook("block0_input", x.data(), N, H);

    std::vector<float> cos_t, sin_t;  // [N, D/2]
    rotary_tables(grids, cos_t, sin_t);
    std::vector<Segment> segs;  // one per image frame
    int64_t n = 0;
    for (const ImageGrid& g : grids)
        for (int64_t f = 0; f < g.t; ++f, n += int64_t(g.h) * g.w) segs.push_back({n, int64_t(g.h) * g.w});

    VisionOutput out;
    out.n_tokens = N / unit;
    const int64_t O = c.out_hidden_size;
    out.deepstack.resize(deepstack_.size());

    std::vector<float> h(static_cast<size_t>(N * H));             // [N, H] normed input / attention output
    std::vector<float> qkv(static_cast<size_t>(N * 3 * H));       // [N, 3H]
    std::vector<float> mlp(static_cast<size_t>(N * c.intermediate_size));  // [N, inter]
    std::vector<float> tmp(static_cast<size_t>(N * H));           // [N, H] sublayer output
    const bool tanh_act = c.hidden_act == "gelu_pytorch_tanh";
    for (int b = 0; b < c.depth; ++b) {
        const Block& blk = blocks_[b];
        layer_norm(x.data(), blk.norm1_w.data(), blk.norm1_b.data(), N, H, kLayerNormEps, h.data());
        linear(h.data(), N, blk.qkv, blk.qkv_b.data(), qkv.data());
        apply_rotary(qkv.data(), N, H, nh, D, cos_t.data(), sin_t.data());
        segment_attention(qkv.data(), H, nh, D, segs, h.data());
        linear(h.data(), N, blk.proj, blk.proj_b.data(), tmp.data());
        add_into(x.data(), tmp.data(), N * H);

        layer_norm(x.data(), blk.norm2_w.data(), blk.norm2_b.data(), N, H, kLayerNormEps, h.data());
        linear(h.data(), N, blk.fc1, blk.fc1_b.data(), mlp.data());
        if (tanh_act)
            gelu_tanh(mlp.data(), N * c.intermediate_size, mlp.data());
        else
            gelu_erf(mlp.data(), N * c.intermediate_size, mlp.data());
        linear(mlp.data(), N, blk.fc2, blk.fc2_b.data(), tmp.data());
        add_into(x.data(), tmp.data(), N * H);
        if (hook) hook("block_out", x.data(), N, H);

        for (size_t k = 0; k < deepstack_.size(); ++k) {
            if (c.deepstack_visual_indexes[k] != b) continue;
            out.deepstack[k].resize(static_cast<size_t>(out.n_tokens * O));
            run_merger(deepstack_[k], x.data(), N, out.deepstack[k].data());
        }
    }
    if (hook) hook("last_block_out", x.data(), N, H);

    out.image_embeds.resize(static_cast<size_t>(out.n_tokens * O));
    run_merger(merger_, x.data(), N, out.image_embeds.data());
    return out;
}

}  // namespace autoround
