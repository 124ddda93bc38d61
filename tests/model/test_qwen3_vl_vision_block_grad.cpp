// tests/model/test_qwen3_vl_vision_block_grad.cpp — the differentiable Qwen3-VL vision block
// (model/qwen3_vl_vision_block_grad.h):
//  * golden: block 0 of qwen3-vl-nano's vision tower, fed Qwen3VLVision's "block0_input", reproduces the
//    encoder's first "block_out" (the reference image of ../shared/reference, 18×24 patches; also B = 2
//    images of that grid); embed_patches is the hook's block0_input exactly, rotary_tables follow the 2-D
//    rotary formula and tables of packed grids are the concatenation of each grid's;
//  * float64 gradients of Σ R∘Y wrt the 4 linear weights and wrt X against central finite differences on a
//    small random block (H 32, 4 heads of 8, I 48, B 2; grids 1×4×6 and 2×2×4; tanh and erf GELU);
//    attention stays inside each frame; accumulate adds; dX may alias dY; null gradients are skipped;
//  * bad inputs throw autoround::Error naming the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/qwen3_vl_vision.h"
#include "model/qwen3_vl_vision_block_grad.h"
#include "ops/cpu/rope.h"

using namespace autoround;

namespace {

const std::string kShared = AR_SHARED_DIR;
const std::string kVlDir = kShared + "/models/qwen3-vl-nano";
const std::string kRefFile = kShared + "/reference/qwen3-vl-nano.safetensors";

std::vector<double> randn(size_t n, uint32_t seed, double scale = 1.0, double mean = 0.0) {
    std::mt19937 g(seed);
    std::normal_distribution<double> d(mean, scale);
    std::vector<double> v(n);
    for (double& x : v) x = d(g);
    return v;
}

std::vector<size_t> pick(size_t n, size_t count, uint32_t seed) {
    std::mt19937 g(seed);
    std::vector<size_t> idx;
    for (size_t k = 0; k < count; ++k) idx.push_back(g() % n);
    return idx;
}

template <typename F>
void expect_error(F&& f, std::initializer_list<const char*> fragments) {
    try {
        f();
        ADD_FAILURE() << "expected autoround::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const char* frag : fragments) EXPECT_NE(msg.find(frag), std::string::npos) << "message: " << msg;
    }
}

// ---- a small random block in float64 ---------------------------------------------------------------

constexpr int64_t kH = 32, kHeads = 4, kI = 48;

VisionBlockConsts<double> small_consts(bool gelu_tanh, uint32_t seed) {
    VisionBlockConsts<double> c;
    c.dims.hidden = kH;
    c.dims.num_heads = kHeads;
    c.dims.intermediate = kI;
    c.dims.ln_eps = 1e-6;
    c.dims.gelu_tanh = gelu_tanh;
    c.norm1_w = randn(kH, seed, 0.2, 1.0);
    c.norm1_b = randn(kH, seed + 1, 0.1);
    c.norm2_w = randn(kH, seed + 2, 0.2, 1.0);
    c.norm2_b = randn(kH, seed + 3, 0.1);
    c.qkv_b = randn(3 * kH, seed + 4, 0.1);
    c.proj_b = randn(kH, seed + 5, 0.1);
    c.fc1_b = randn(kI, seed + 6, 0.1);
    c.fc2_b = randn(kH, seed + 7, 0.1);
    return c;
}

// Rotary tables [L, D/2] of arbitrary angles (the block does not care how they were made).
void random_rotary(const ImageGrid& g, int64_t D, uint32_t seed, std::vector<float>& cos, std::vector<float>& sin) {
    const auto ang = randn(size_t(g.t) * g.h * g.w * (D / 2), seed, 2.0);
    for (double a : ang) {
        cos.push_back(static_cast<float>(std::cos(a)));
        sin.push_back(static_cast<float>(std::sin(a)));
    }
}

using Weights = std::array<std::vector<double>, kNumVisionLinears>;

Weights random_weights(const VisionBlockDims& d, uint32_t seed) {
    Weights W;
    for (int i = 0; i < kNumVisionLinears; ++i) {
        const auto [out, in] = vision_linear_shape(d, i);
        W[i] = randn(out * in, seed + i, 1.0 / std::sqrt(double(in)));
    }
    return W;
}

VisionBlockGrad<double>::Weights ptrs(const Weights& W) {
    VisionBlockGrad<double>::Weights p;
    for (int i = 0; i < kNumVisionLinears; ++i) p[i] = W[i].data();
    return p;
}

// loss(W, X) = Σ R∘Y(X; W) for B samples of one grid.
struct SmallProblem {
    VisionBlockConsts<double> c;
    ImageGrid grid;
    std::vector<float> cos, sin;
    int64_t B = 2, L = 0;
    std::vector<double> X, R;

    SmallProblem(bool gelu_tanh, ImageGrid g, uint32_t seed) : c(small_consts(gelu_tanh, seed)), grid(g) {
        L = int64_t(g.t) * g.h * g.w;
        random_rotary(g, kH / kHeads, seed + 20, cos, sin);
        X = randn(B * L * kH, seed + 10);
        R = randn(B * L * kH, seed + 11);
    }
    VisionBlockGrad<double> block() const { return VisionBlockGrad<double>(c, grid, cos, sin); }
    std::vector<double> forward(const Weights& W, const std::vector<double>& x) const {
        auto blk = block();
        std::vector<double> Y(x.size());
        blk.forward(x.data(), B, L, ptrs(W), Y.data());
        return Y;
    }
    double loss(const Weights& W, const std::vector<double>& x) const {
        const auto Y = forward(W, x);
        double s = 0;
        for (size_t i = 0; i < Y.size(); ++i) s += R[i] * Y[i];
        return s;
    }
    // dL/dW of all 4 linears and dL/dX.
    Weights grads(const Weights& W, std::vector<double>& dX) const {
        auto blk = block();
        std::vector<double> Y(X.size());
        blk.forward(X.data(), B, L, ptrs(W), Y.data());
        Weights dW;
        VisionBlockGrad<double>::Grads gp;
        for (int i = 0; i < kNumVisionLinears; ++i) {
            dW[i].assign(W[i].size(), 0.0);
            gp[i] = dW[i].data();
        }
        dX.assign(X.size(), -1.0);
        blk.backward(R.data(), gp, false, dX.data());
        return dW;
    }
};

std::string case_name(bool gelu_tanh, const ImageGrid& g) {
    return std::string(gelu_tanh ? "tanh" : "erf") + " grid " + std::to_string(g.t) + "x" + std::to_string(g.h) + "x" +
           std::to_string(g.w);
}

// |fd − g| <= atol + rtol·max(|fd|, |g|); atol covers the round-off of the quotient (|loss| ~ 10,
// h = 1e-5: ~1e-10); bugs show as O(1) relative errors.
void expect_fd(double fd, double g, const std::string& what) {
    EXPECT_NEAR(fd, g, 1e-9 + 1e-6 * std::max(std::abs(fd), std::abs(g))) << what;
}

// ---- qwen3-vl-nano ----------------------------------------------------------------------------------

Qwen3VLVisionConfig nano_config() {
    const nlohmann::json j = read_json_file(kVlDir + "/config.json");
    return parse_qwen3_vl_vision_config(j.at("vision_config"), "config.json in " + kVlDir);
}
const TensorStore& nano_store() {
    static const TensorStore st = TensorStore::open(kVlDir);
    return st;
}
const Qwen3VLVision& nano_vision() {
    static const Qwen3VLVision v = Qwen3VLVision::load(nano_store(), nano_config());
    return v;
}
// The reference image's pixel rows [432, 1536] (grid 1×18×24).
const std::vector<float>& ref_pixels() {
    static const std::vector<float> px = [] {
        const TensorStore st = TensorStore::open(kRefFile);
        EXPECT_EQ(st.get("pixel_values").shape, (std::vector<int64_t>{432, 1536}));
        return st.load_f32("pixel_values");
    }();
    return px;
}
constexpr ImageGrid kRefGrid{1, 18, 24};

// Encodes and returns the block0_input and the first block_out hooks.
void encode_block0(std::span<const float> px, std::span<const ImageGrid> grids, std::vector<float>& in,
                   std::vector<float>& out) {
    in.clear();
    out.clear();
    nano_vision().encode(px, grids, [&](const std::string& name, const float* d, int64_t rows, int64_t cols) {
        if (name == "block0_input") in.assign(d, d + rows * cols);
        if (name == "block_out" && out.empty()) out.assign(d, d + rows * cols);
    });
}

std::array<std::vector<float>, kNumVisionLinears> nano_block0_weights() {
    std::array<std::vector<float>, kNumVisionLinears> W;
    for (int i = 0; i < kNumVisionLinears; ++i) W[i] = load_vision_block_weight(nano_store(), nano_config(), 0, i);
    return W;
}

}  // namespace

// ---- golden ------------------------------------------------------------------------------------------

TEST(VisionBlockGradNano, EmbedPatchesAndRotaryTablesMatchTheEncoder) {
    const Qwen3VLVision& vis = nano_vision();
    const std::span<const ImageGrid> g1(&kRefGrid, 1);
    std::vector<float> in, out;
    encode_block0(ref_pixels(), g1, in, out);
    const std::vector<float> x = vis.embed_patches(ref_pixels(), g1);
    ASSERT_EQ(x.size(), in.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], in[i]) << i;  // the same code: bit for bit

    // rotary: frequency j < D/4 turns with the patch row, j >= D/4 with the column; patches in 2×2 blocks
    const int64_t D = vis.config().head_dim(), half = D / 2, quarter = D / 4, N = 432;
    std::vector<float> cos, sin;
    vis.rotary_tables(g1, cos, sin);
    ASSERT_EQ(cos.size(), size_t(N * half));
    ASSERT_EQ(sin.size(), size_t(N * half));
    const int64_t rows[] = {0, 0, 1, 1, 0, 1, 17}, cols[] = {0, 1, 0, 1, 2, 3, 23};
    const int64_t idx[] = {0, 1, 2, 3, 4, 7, N - 1};  // n → (row, col) in the processor's order
    for (int k = 0; k < 7; ++k) {
        for (int64_t j = 0; j < half; ++j) {
            const int64_t jj = j < quarter ? j : j - quarter;
            const double inv = 1.0 / std::pow(vis.config().rope_theta, 2.0 * jj / double(half));
            const double a = double(j < quarter ? rows[k] : cols[k]) * inv;
            EXPECT_NEAR(cos[idx[k] * half + j], std::cos(a), 2e-6) << "patch " << idx[k] << " j " << j;
            EXPECT_NEAR(sin[idx[k] * half + j], std::sin(a), 2e-6) << "patch " << idx[k] << " j " << j;
        }
    }
    // packed grids: the concatenation of each grid's tables
    const std::vector<ImageGrid> two{{2, 4, 6}, {1, 2, 8}};
    std::vector<float> c2, s2, ca, sa, cb, sb;
    vis.rotary_tables(two, c2, s2);
    vis.rotary_tables(std::span<const ImageGrid>(&two[0], 1), ca, sa);
    vis.rotary_tables(std::span<const ImageGrid>(&two[1], 1), cb, sb);
    ca.insert(ca.end(), cb.begin(), cb.end());
    sa.insert(sa.end(), sb.begin(), sb.end());
    EXPECT_EQ(c2, ca);
    EXPECT_EQ(s2, sa);
    // the second frame of a video grid has the first frame's positions
    for (int64_t i = 0; i < 24 * half; ++i) ASSERT_EQ(c2[i], c2[24 * half + i]) << i;

    expect_error([&] { vis.rotary_tables(std::vector<ImageGrid>{{1, 3, 4}}, cos, sin); },
                 {"rotary_tables", "multiples of spatial_merge_size 2"});
    expect_error([&] { vis.embed_patches(std::span<const float>(ref_pixels()).first(1000), g1); },
                 {"embed_patches", "pixel_values has 1000 floats"});
}

// Block 0 with the checkpoint's weights, float32, on the encoder's own block0_input: the same ops in the
// same precision, so the outputs agree to a few float32 ulps of max|Y| (measured: 1 ulp = 2.4e-7 at
// max|Y| ≈ 2; checked: <= 4 ulps). Not bit for bit: the GEMMs may sum in another order (the encoder reads
// bf16 weight tiles, the block float32 copies, and q/k/v are three GEMMs here).
TEST(VisionBlockGradNano, Block0ForwardMatchesTheEncoder) {
    const Qwen3VLVisionConfig cfg = nano_config();
    const auto W = nano_block0_weights();
    VisionBlockGrad<float>::Weights wp;
    for (int i = 0; i < kNumVisionLinears; ++i) wp[i] = W[i].data();

    // B = 1: the reference image; B = 2: that image and another one of the same grid
    std::vector<float> px2 = ref_pixels();
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (float v : ref_pixels()) px2.push_back(0.5f * v + 0.3f * nd(g));
    const std::vector<ImageGrid> grids2{kRefGrid, kRefGrid};
    for (int64_t B : {1, 2}) {
        const std::vector<float> px(px2.begin(), px2.begin() + B * 432 * 1536);
        std::vector<float> in, ref;
        encode_block0(px, std::span<const ImageGrid>(grids2.data(), size_t(B)), in, ref);
        ASSERT_EQ(in.size(), size_t(B * 432 * 128));
        std::vector<float> cos, sin;
        nano_vision().rotary_tables(std::span<const ImageGrid>(&kRefGrid, 1), cos, sin);
        VisionBlockGrad<float> blk(load_vision_block_consts(nano_store(), cfg, 0), kRefGrid, cos, sin);
        EXPECT_EQ(blk.rows_per_sample(), 432);
        EXPECT_TRUE(blk.dims().gelu_tanh);
        EXPECT_EQ(blk.dims().ln_eps, double(1e-6f));
        std::vector<float> Y(in.size());
        blk.forward(in.data(), B, 432, wp, Y.data());

        double max_ref = 0, max_abs = 0;
        for (float r : ref) max_ref = std::max(max_ref, std::fabs(double(r)));
        for (size_t i = 0; i < Y.size(); ++i) max_abs = std::max(max_abs, std::fabs(double(Y[i]) - double(ref[i])));
        const double ulp = std::ldexp(1.0, -23);
        std::printf("  vision block 0, B=%ld: max|ref| %.4g, max abs diff %.3g = %.2f float32 ulps of max|ref|\n",
                    long(B), max_ref, max_abs, max_abs / max_ref / ulp);
        EXPECT_LE(max_abs, 4 * ulp * max_ref) << "B=" << B;

        // the float64 block on the same input agrees to float32 accuracy
        std::array<std::vector<double>, kNumVisionLinears> Wd;
        VisionBlockGrad<double>::Weights wdp;
        for (int i = 0; i < kNumVisionLinears; ++i) {
            Wd[i].assign(W[i].begin(), W[i].end());
            wdp[i] = Wd[i].data();
        }
        VisionBlockGrad<double> bd(vision_consts_to_double(load_vision_block_consts(nano_store(), cfg, 0)), kRefGrid,
                                   cos, sin);
        const std::vector<double> ind(in.begin(), in.end());
        std::vector<double> Yd(ind.size());
        bd.forward(ind.data(), B, 432, wdp, Yd.data());
        for (size_t i = 0; i < Y.size(); ++i) ASSERT_NEAR(Y[i], Yd[i], 1e-5 * max_ref) << i;
    }
}

// ---- gradients ---------------------------------------------------------------------------------------

TEST(VisionBlockGrad, GradientsMatchFiniteDifferences) {
    for (bool gelu_tanh : {true, false}) {
        for (ImageGrid grid : {ImageGrid{1, 4, 6}, ImageGrid{2, 2, 4}}) {
            const std::string name = case_name(gelu_tanh, grid);
            const SmallProblem p(gelu_tanh, grid, 17);
            Weights W = random_weights(p.c.dims, 40);
            std::vector<double> dX;
            const Weights dW = p.grads(W, dX);
            const double h = 1e-5;
            for (int i = 0; i < kNumVisionLinears; ++i) {
                double gmax = 0;
                for (double g : dW[i]) gmax = std::max(gmax, std::abs(g));
                EXPECT_GT(gmax, 1e-3) << vision_linear_name(i) << ": gradient is all zero";
                // for qkv: 4 entries in each of the q, k and v row ranges
                std::vector<size_t> idx = pick(W[i].size(), 10, 100 + i);
                if (i == kVisQkv)
                    for (size_t part = 0; part < 3; ++part)
                        for (size_t e : pick(kH * kH, 4, 200 + part)) idx.push_back(part * kH * kH + e);
                for (size_t e : idx) {
                    const double w0 = W[i][e];
                    W[i][e] = w0 + h;
                    const double lp = p.loss(W, p.X);
                    W[i][e] = w0 - h;
                    const double lm = p.loss(W, p.X);
                    W[i][e] = w0;
                    expect_fd((lp - lm) / (2 * h), dW[i][e],
                              name + " " + vision_linear_name(i) + " index " + std::to_string(e));
                }
            }
            std::vector<double> X = p.X;
            for (size_t e : pick(X.size(), 48, 300)) {
                const double x0 = X[e];
                X[e] = x0 + h;
                const double lp = p.loss(W, X);
                X[e] = x0 - h;
                const double lm = p.loss(W, X);
                X[e] = x0;
                expect_fd((lp - lm) / (2 * h), dX[e], name + " dX index " + std::to_string(e));
            }
        }
    }
}

// Attention is confined to each frame of each sample: perturbing one frame's input moves only that frame's
// output, and the per-frame gradients are those of the frames run as separate samples.
TEST(VisionBlockGrad, AttentionStaysInsideEachFrame) {
    const ImageGrid video{2, 2, 4};  // two frames of 8 rows per sample
    const SmallProblem p(true, video, 23);
    const Weights W = random_weights(p.c.dims, 60);
    const auto Y0 = p.forward(W, p.X);
    const int64_t L = 16, F = 8;
    for (int64_t b = 0; b < p.B; ++b) {
        for (int64_t f = 0; f < 2; ++f) {
            std::vector<double> X = p.X;
            for (int64_t r = 0; r < F; ++r) X[((b * L) + f * F + r) * kH + 3] += 0.5;
            const auto Y = p.forward(W, X);
            for (int64_t n = 0; n < p.B * L; ++n) {
                const bool same_frame = n / L == b && (n % L) / F == f;
                double d = 0;
                for (int64_t k = 0; k < kH; ++k) d += std::abs(Y[n * kH + k] - Y0[n * kH + k]);
                if (same_frame)
                    EXPECT_GT(d, 1e-6) << "b " << b << " f " << f << " row " << n;
                else
                    EXPECT_EQ(d, 0.0) << "b " << b << " f " << f << " row " << n;
            }
        }
    }
    // the 2-frame block on B samples == a 1-frame block on 2·B samples (same tables per frame)
    const ImageGrid frame{1, 2, 4};
    const std::vector<float> cos1(p.cos.begin(), p.cos.begin() + F * 4), sin1(p.sin.begin(), p.sin.begin() + F * 4);
    std::vector<float> cos2 = cos1, sin2 = sin1;
    cos2.insert(cos2.end(), cos1.begin(), cos1.end());
    sin2.insert(sin2.end(), sin1.begin(), sin1.end());
    VisionBlockGrad<double> b2(p.c, video, cos2, sin2), b1(p.c, frame, cos1, sin1);
    std::vector<double> Y2(p.X.size()), Y1(p.X.size()), dX2(p.X.size()), dX1(p.X.size());
    Weights dW2, dW1;
    VisionBlockGrad<double>::Grads g2, g1;
    for (int i = 0; i < kNumVisionLinears; ++i) {
        dW2[i].assign(W[i].size(), 0.0);
        dW1[i].assign(W[i].size(), 0.0);
        g2[i] = dW2[i].data();
        g1[i] = dW1[i].data();
    }
    b2.forward(p.X.data(), p.B, 2 * F, ptrs(W), Y2.data());
    b1.forward(p.X.data(), 2 * p.B, F, ptrs(W), Y1.data());
    b2.backward(p.R.data(), g2, false, dX2.data());
    b1.backward(p.R.data(), g1, false, dX1.data());
    for (size_t i = 0; i < Y1.size(); ++i) ASSERT_NEAR(Y2[i], Y1[i], 1e-13) << i;
    for (size_t i = 0; i < dX1.size(); ++i) ASSERT_NEAR(dX2[i], dX1[i], 1e-12) << i;
    for (int i = 0; i < kNumVisionLinears; ++i)
        for (size_t e = 0; e < dW1[i].size(); ++e) ASSERT_NEAR(dW2[i][e], dW1[i][e], 1e-11) << i << " " << e;
}

// accumulate adds to dW; dX may alias dY; null entries are skipped and leave the others unchanged.
TEST(VisionBlockGrad, AccumulateAliasingAndSkippedGradients) {
    const SmallProblem p(false, ImageGrid{1, 4, 6}, 29);
    const Weights W = random_weights(p.c.dims, 80);
    std::vector<double> dX;
    const Weights dW = p.grads(W, dX);
    auto blk = p.block();
    std::vector<double> Y(p.X.size());

    // accumulate onto a prefilled buffer, no dX
    Weights acc;
    VisionBlockGrad<double>::Grads gp;
    for (int i = 0; i < kNumVisionLinears; ++i) {
        acc[i].assign(W[i].size(), 0.25);
        gp[i] = acc[i].data();
    }
    blk.forward(p.X.data(), p.B, p.L, ptrs(W), Y.data());
    blk.backward(p.R.data(), gp, true);
    for (int i = 0; i < kNumVisionLinears; ++i)
        for (size_t e = 0; e < W[i].size(); ++e) ASSERT_NEAR(acc[i][e], 0.25 + dW[i][e], 1e-14) << i << " " << e;

    // dX written over dY; only fc1's gradient asked for
    std::vector<double> g = p.R, fc1(W[kVisFc1].size(), 7.0);
    VisionBlockGrad<double>::Grads only{};
    only[kVisFc1] = fc1.data();
    blk.forward(p.X.data(), p.B, p.L, ptrs(W), Y.data());
    blk.backward(g.data(), only, false, g.data());
    for (size_t e = 0; e < g.size(); ++e) ASSERT_EQ(g[e], dX[e]) << e;
    for (size_t e = 0; e < fc1.size(); ++e) ASSERT_EQ(fc1[e], dW[kVisFc1][e]) << e;
}

// ---- bad inputs --------------------------------------------------------------------------------------

TEST(VisionBlockGrad, BadInputsThrow) {
    const SmallProblem p(true, ImageGrid{1, 4, 6}, 31);
    const Weights W = random_weights(p.c.dims, 90);
    auto blk = p.block();
    std::vector<double> Y(p.X.size());
    expect_error([&] { blk.forward(p.X.data(), 2, 23, ptrs(W), Y.data()); },
                 {"L = 23", "grid (t=1, h=4, w=6)", "t·h·w = 24"});
    expect_error([&] { blk.backward(p.R.data(), {}); }, {"call forward first"});
    auto missing = ptrs(W);
    missing[kVisProj] = nullptr;
    expect_error([&] { blk.forward(p.X.data(), 2, 24, missing, Y.data()); }, {"attn.proj", "missing"});

    // tables of another grid (4×4 instead of 4×6)
    std::vector<float> cos16(p.cos.begin(), p.cos.begin() + 16 * 4), sin16(p.sin.begin(), p.sin.begin() + 16 * 4);
    expect_error([&] { VisionBlockGrad<double>(p.c, ImageGrid{1, 4, 6}, cos16, sin16); },
                 {"rotary tables hold 64 (cos) and 64 (sin)", "grid (t=1, h=4, w=6)", "= 96 each"});
    expect_error([&] { VisionBlockGrad<double>(p.c, ImageGrid{0, 4, 6}, p.cos, p.sin); }, {"t=0"});
    auto bad = p.c;
    bad.fc1_b.pop_back();
    expect_error([&] { VisionBlockGrad<double>(bad, ImageGrid{1, 4, 6}, p.cos, p.sin); }, {"biases"});
    bad = p.c;
    bad.dims.num_heads = 16;  // head_dim 2
    expect_error([&] { VisionBlockGrad<double>(bad, ImageGrid{1, 4, 6}, p.cos, p.sin); }, {"multiple of 4"});

    const Qwen3VLVisionConfig cfg = nano_config();
    expect_error([&] { load_vision_block_consts(nano_store(), cfg, 4); }, {"vision block 4 is out of range", "4 blocks"});
    expect_error([&] { load_vision_block_weight(nano_store(), cfg, 0, 4); }, {"index 4"});
    expect_error([&] { load_vision_block_consts(nano_store(), cfg, 0, "model.nothing."); },
                 {"model.nothing.blocks.0.norm1.weight", "missing"});
    Qwen3VLVisionConfig wide = cfg;
    wide.intermediate_size = 300;
    expect_error([&] { load_vision_block_weight(nano_store(), wide, 1, kVisFc2); },
                 {"model.visual.blocks.1.mlp.linear_fc2.weight", "[128, 256]", "expected [128, 300]"});
}
