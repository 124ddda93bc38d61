// tests/quant/test_signround_tuner.cpp — quant/signround_tuner.h:
//  * the optimizer pieces: per-bits lr rule, PyTorch LinearLR as a chained fp32 product, SignSGD with
//    sign(0) = 0;
//  * tune_block on block 0 of qwen3-nano (4 random samples of 48 tokens, 20 iterations): the loss falls
//    below the RTN loss (iteration 0: V = 0, α = β = 1), the exported parameters are the ones that produced
//    the best loss (re-evaluated from scratch), the QDQ weights equal bf16(dequantize(codes)), iters 0 equals
//    plain RTN, not_use_best_mse, dynamic_max_gap, minmax tuning off, NaN detection naming the block;
//  * quantize_model on two nano blocks (plain RTN, optimized RTN, SignRound with an unselected block);
//  * --nblocks: two blocks tuned jointly (loss at iteration 0 = the RTN loss of the two-block chain, the
//    exported group reproduces the best loss, results differ from block-by-block), grouping (shorter last
//    group, a gap in the selection ends a group, nblocks above the block count), resume of groups.
// Kept small (L = 48, n <= 4) so the whole file runs in a few seconds on 2 cores.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "core/bf16.h"
#include "io/model_config.h"
#include "model/qwen3_model.h"
#include "quant/rtn.h"
#include "quant/signround_tuner.h"
#include "quant/tuning_checkpoint.h"
#include "quant_test_util.h"

using namespace autoround;
using autoround::testquant::expect_error;

namespace {

const std::string kNano = std::string(AR_SHARED_DIR) + "/models/qwen3-nano";

const Qwen3Model& nano() {
    static const std::unique_ptr<Qwen3Model> m = std::make_unique<Qwen3Model>(Qwen3Model::load(kNano));
    return *m;
}

std::vector<std::vector<int32_t>> random_samples(int n, int L, uint32_t seed) {
    return testquant::random_token_samples(nano().config().vocab_size, n, L, seed);
}

// Block 0 of nano with its inputs (embeddings of random tokens) and FP targets.
struct BlockFixture {
    int64_t n = 4, L = 48, H = 0;
    std::unique_ptr<Qwen3BlockGrad<float>> block;
    std::array<std::vector<float>, kNumBlockLinears> W;
    std::vector<float> in, ref;
    std::vector<BlockLayerSpec> specs;

    explicit BlockFixture(LayerScheme scheme = {4, 128, true, "int"}, int layer = 0) {
        block = std::make_unique<Qwen3BlockGrad<float>>(load_block_consts(nano(), layer));
        H = block->dims().hidden;
        std::array<const float*, kNumBlockLinears> wp{};
        for (int i = 0; i < kNumBlockLinears; ++i) {
            W[i] = load_block_weight(nano(), layer, i);
            wp[i] = W[i].data();
            specs.push_back({i, block_linear_tensor(layer, i).substr(0, block_linear_tensor(layer, i).size() - 7), scheme});
        }
        in = embed_samples(nano(), random_samples(static_cast<int>(n), static_cast<int>(L), 7));
        ref.resize(in.size());
        block_forward_all(*block, wp, in.data(), n, L, n, ref.data());
    }

    // Masked MSE of the block with weights `w` over all samples (what the tuner's loss is with batch = n).
    double loss_with(const std::array<std::vector<float>, kNumBlockLinears>& w) {
        std::array<const float*, kNumBlockLinears> wp{};
        for (int i = 0; i < kNumBlockLinears; ++i) wp[i] = w[i].data();
        std::vector<float> out(in.size());
        block_forward_all(*block, wp, in.data(), n, L, n, out.data());
        const auto mask = last_token_mask(n, L);
        return masked_mse_loss<float>(out.data(), ref.data(), mask.data(), n, L, H, nullptr);
    }

    SignRoundOptions options(int iters) const {
        SignRoundOptions o;
        o.iters = iters;
        o.batch_size = static_cast<int>(n);  // every iteration sees all samples: losses are comparable
        o.progress = false;
        return o;
    }
};

}  // namespace

TEST(SignRoundOptim, LearningRateRule) {
    SignRoundOptions o;
    o.iters = 200;
    EXPECT_DOUBLE_EQ(signround_lr(o, 4), 1.0 / 200);
    EXPECT_DOUBLE_EQ(signround_lr(o, 2), 1.0 / 200);  // < 1000 iters: 1/iters for every width
    o.iters = 1000;
    EXPECT_DOUBLE_EQ(signround_lr(o, 4), 1.0 / 1000);
    EXPECT_DOUBLE_EQ(signround_lr(o, 3), 2.0 / 1000);
    EXPECT_DOUBLE_EQ(signround_minmax_lr(o, 2), 2.0 / 1000);
    o.lr = 5e-3;  // an explicit lr applies to every layer, and minmax_lr follows it
    EXPECT_DOUBLE_EQ(signround_lr(o, 2), 5e-3);
    EXPECT_DOUBLE_EQ(signround_minmax_lr(o, 2), 5e-3);
    o.minmax_lr = 1e-2;
    EXPECT_DOUBLE_EQ(signround_minmax_lr(o, 4), 1e-2);
}

TEST(SignRoundOptim, LinearLrIsAChainedFp32Product) {
    const int T = 200;
    const std::vector<float> s = lr_schedule(1.0 / T, T);
    ASSERT_EQ(s.size(), 200u);
    EXPECT_EQ(s[0], static_cast<float>(1.0 / T));
    float lr = static_cast<float>(1.0 / T);
    double sum = 0;
    for (int i = 0; i < T; ++i) {
        if (i > 0) lr = lr * static_cast<float>(1.0 - 1.0 / double(T - i + 1));
        EXPECT_EQ(s[i], lr) << i;                                          // bit-exact chained product
        EXPECT_NEAR(s[i], (1.0 / T) * (T - i) / T, 2e-6 * (1.0 / T)) << i;  // ≈ lr0·(T−i)/T (fp32 drift)
        if (i > 0) {
            EXPECT_LT(s[i], s[i - 1]);
        }
        sum += s[i];
    }
    EXPECT_NEAR(sum, 0.5025, 1e-5);  // Σ lr_i = lr·(T+1)/2 (§2.1)
    EXPECT_NEAR(s[T - 1], 1.0 / T / T, 1e-10);
    EXPECT_TRUE(lr_schedule(0.1, 0).empty());
}

TEST(SignRoundOptim, SignSgdTreatsZeroAsZero) {
    std::vector<float> p = {1.f, 1.f, 1.f, 1.f, 1.f};
    const std::vector<float> g = {2.f, -0.5f, 0.f, -0.f, std::numeric_limits<float>::quiet_NaN()};
    signsgd_step(p.data(), g.data(), 5, 0.25f);
    EXPECT_EQ(p, (std::vector<float>{0.75f, 1.25f, 1.f, 1.f, 1.f}));
}

TEST(SignRoundTuner, TuningBeatsRtnAndReturnsTheBestParameters) {
    BlockFixture f;
    PythonRandom rng(42);
    const BlockTuneResult r = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, f.options(20), rng,
                                         "model.layers.0");
    ASSERT_EQ(r.losses.size(), 20u);
    EXPECT_EQ(r.report.iters_run, 20);
    EXPECT_EQ(r.quantized.size(), 7u);

    // iteration 0 runs V = 0, α = β = 1: plain RTN
    std::array<std::vector<float>, kNumBlockLinears> rtn = f.W;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const auto sh = block_linear_shape(f.block->dims(), i);
        QdqOptions o;
        o.scheme = {4, 128, true};
        rtn[i] = quantize_rtn(f.W[i], sh[0], sh[1], o).dequantize();
        for (float& v : rtn[i]) v = round_to_bf16(v);
    }
    const double rtn_loss = f.loss_with(rtn);
    EXPECT_NEAR(r.losses[0], rtn_loss, 1e-6 * rtn_loss);
    EXPECT_DOUBLE_EQ(r.report.initial_loss, r.losses[0]);

    // the best loss is the minimum, strictly below RTN
    double mn = r.losses[0];
    for (double l : r.losses) mn = std::min(mn, l);
    EXPECT_EQ(r.report.best_loss, mn);
    ASSERT_GE(r.report.best_iter, 1);
    EXPECT_EQ(r.losses[static_cast<size_t>(r.report.best_iter)], mn);
    EXPECT_LT(r.report.best_loss, 0.97 * rtn_loss) << "tuning should clearly beat RTN";
    std::printf("block 0: RTN loss %.6g -> best %.6g at iteration %d (%.2f s for 20 iterations)\n", rtn_loss,
                r.report.best_loss, r.report.best_iter, r.report.tune_seconds);

    // the exported model reproduces the best loss: QDQ weights = bf16(dequantize(codes))
    for (const auto& s : f.specs) {
        const QuantizedTensor& q = r.quantized.at(s.name);
        const std::vector<float> dq = q.dequantize();
        const std::vector<float>& w = r.qdq[s.which];
        ASSERT_EQ(dq.size(), w.size());
        for (size_t i = 0; i < dq.size(); ++i) ASSERT_EQ(round_to_bf16(dq[i]), w[i]) << s.name << " " << i;
        const LayerParams& p = r.best_params.at(s.name);
        QdqOptions o;
        o.scheme = s.scheme.quant_scheme();
        const QuantizedTensor again = quantize(f.W[s.which], q.out_features, q.in_features, p.V, p.alpha, p.beta, o);
        EXPECT_EQ(again.codes, q.codes);
        EXPECT_EQ(again.scales, q.scales);
    }
    const double reeval = f.loss_with(r.qdq);
    EXPECT_NEAR(reeval, r.report.best_loss, 1e-5 * r.report.best_loss);
}

TEST(SignRoundTuner, ItersZeroIsRtnAndOptionsChangeTheRun) {
    BlockFixture f;
    {
        PythonRandom rng(42);
        const BlockTuneResult r0 = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, f.options(0),
                                              rng, "model.layers.0");
        EXPECT_TRUE(r0.losses.empty());
        for (const auto& s : f.specs) {
            const auto sh = block_linear_shape(f.block->dims(), s.which);
            QdqOptions o;
            o.scheme = {4, 128, true};
            const QuantizedTensor q = quantize_rtn(f.W[s.which], sh[0], sh[1], o);
            EXPECT_EQ(r0.quantized.at(s.name).codes, q.codes);
            EXPECT_EQ(r0.quantized.at(s.name).scales, q.scales);
        }
    }
    {  // not_use_best_mse: the parameters of the last iteration are exported
        SignRoundOptions o = f.options(6);
        o.not_use_best_mse = true;
        PythonRandom rng(42);
        const BlockTuneResult r = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, o, rng, "b");
        EXPECT_NEAR(f.loss_with(r.qdq), r.losses.back(), 1e-5 * r.losses.back());
    }
    {  // dynamic_max_gap 1: stops at the first iteration that does not improve
        SignRoundOptions o = f.options(12);
        o.dynamic_max_gap = 1;
        o.lr = 0.5;  // large steps make a non-improving iteration certain
        PythonRandom rng(42);
        const BlockTuneResult r = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, o, rng, "b");
        ASSERT_LT(r.report.iters_run, 12);
        for (size_t i = 1; i + 1 < r.losses.size(); ++i) EXPECT_LT(r.losses[i], r.losses[i - 1]);
        EXPECT_GE(r.losses.back(), r.report.best_loss);
    }
    {  // minmax tuning off: α = β = 1 stay fixed
        SignRoundOptions o = f.options(3);
        o.enable_minmax_tuning = false;
        PythonRandom rng(42);
        const BlockTuneResult r = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, o, rng, "b");
        for (const auto& [name, p] : r.best_params)
            for (float a : p.alpha) ASSERT_EQ(a, 1.f) << name;
    }
}

TEST(SignRoundTuner, NonFiniteLossNamesTheBlock) {
    BlockFixture f;
    f.in[5] = std::numeric_limits<float>::quiet_NaN();
    PythonRandom rng(42);
    expect_error(
        [&] { tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, f.options(3), rng, "model.layers.0"); },
        {"model.layers.0", "nan", "iteration 0"});
}

TEST(SignRoundTuner, QuantizeModelPaths) {
    const ModelLayout layout = describe_model(nano().config(), nano().tensors());
    SchemeOptions so;
    so.to_quant_block_names = "model.layers.1$";  // block 0 is forwarded in FP on both chains
    const QuantPlan plan = plan_quantization(layout, so);
    const auto samples = random_samples(2, 32, 11);

    SignRoundOptions o;
    o.progress = false;
    o.iters = 0;
    o.disable_opt_rtn = true;
    EXPECT_FALSE(rtn_needs_calibration(plan, o));
    const QuantizeResult rtn = quantize_model(nano(), plan, {}, o);
    EXPECT_EQ(rtn.method, "rtn");
    EXPECT_EQ(rtn.layers.size(), 7u);

    o.disable_opt_rtn = false;
    EXPECT_TRUE(rtn_needs_calibration(plan, o));
    const QuantizeResult opt = quantize_model(nano(), plan, samples, o);
    EXPECT_EQ(opt.method, "opt-rtn");
    ASSERT_EQ(opt.layers.size(), 7u);
    int differ = 0;
    for (const auto& [name, q] : opt.layers) {
        q.validate();
        differ += q.codes != rtn.layers.at(name).codes;
    }
    EXPECT_GT(differ, 0) << "optimized RTN should move some scales away from max/Q";

    o.iters = 2;
    const QuantizeResult sr = quantize_model(nano(), plan, samples, o);
    EXPECT_EQ(sr.method, "signround");
    EXPECT_EQ(sr.layers.size(), 7u);
    ASSERT_EQ(sr.blocks.size(), 2u);
    EXPECT_EQ(sr.blocks[0].method, "fp");
    EXPECT_EQ(sr.blocks[1].method, "signround");
    EXPECT_EQ(sr.blocks[1].iters_run, 2);
    EXPECT_GT(sr.blocks[1].final_loss, 0);

    o.nblocks = 0;
    expect_error([&] { quantize_model(nano(), plan, samples, o); }, {"--nblocks", ">= 1"});
    o.nblocks = 2;
    o.cuda = true;  // joint tuning is CPU only (the CLI falls back to the CPU before getting here)
    expect_error([&] { quantize_model(nano(), plan, samples, o); }, {"--nblocks", "CPU"});
    o.cuda = false;
    o.nblocks = 1;
    auto uneven = samples;
    uneven[1].pop_back();
    expect_error([&] { quantize_model(nano(), plan, uneven, o); }, {"same length"});
}

TEST(SignRoundTuner, EmbeddingsMatchTheModelAndRunsAreDeterministic) {
    const auto samples = random_samples(1, 8, 3);
    const std::vector<float> e = embed_samples(nano(), samples);
    std::vector<float> hooked;
    KvCache cache = nano().make_cache();
    nano().forward(samples[0], cache, nullptr, false,
                   [&](const std::string& name, int, const float* data, int64_t T, int64_t dim) {
                       if (name == "embeddings") hooked.assign(data, data + T * dim);
                   });
    EXPECT_EQ(e, hooked);

    BlockFixture f;
    std::vector<double> first;
    for (int run = 0; run < 2; ++run) {
        PythonRandom rng(42);
        SignRoundOptions o = f.options(3);
        o.batch_size = 2;  // two samples of four per iteration: the sampler decides which
        const BlockTuneResult r = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, o, rng, "b");
        if (run == 0) first = r.losses;
        else EXPECT_EQ(r.losses, first);
    }
}

TEST(SignRoundTuner, GradientAccumulationMatchesOneBigBatch) {
    BlockFixture f;
    std::vector<double> big, acc;
    {
        PythonRandom rng(42);
        SignRoundOptions o = f.options(2);  // batch 4 = all samples
        big = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, o, rng, "b").losses;
    }
    {
        PythonRandom rng(42);
        SignRoundOptions o = f.options(2);
        o.batch_size = 2;
        o.gradient_accumulate_steps = 2;  // the same global batch of 4 in two sub-batches
        acc = tune_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, o, rng, "b").losses;
    }
    ASSERT_EQ(big.size(), 2u);
    ASSERT_EQ(acc.size(), 2u);
    EXPECT_NEAR(acc[0], big[0], 1e-6 * big[0]);
    EXPECT_NEAR(acc[1], big[1], 1e-3 * big[1]);  // same step up to float summation order of the gradients
}

// ---- --nblocks ------------------------------------------------------------------------------------------

namespace {

QuantPlan plan_of(const std::string& blocks) {
    SchemeOptions so;
    so.to_quant_block_names = blocks;
    return plan_quantization(describe_model(nano().config(), nano().tensors()), so);
}

SignRoundOptions group_options(int iters, int nblocks, int batch) {
    SignRoundOptions o;
    o.progress = false;
    o.iters = iters;
    o.nblocks = nblocks;
    o.batch_size = batch;
    return o;
}

// Masked MSE between the chain of nano blocks [first, first + W.size()) run with weights W and the
// same chain with the original weights, on the embeddings of `samples`.
double chain_loss(const std::vector<std::vector<int32_t>>& samples, int first,
                  const std::vector<std::array<std::vector<float>, kNumBlockLinears>>& W) {
    const int64_t n = static_cast<int64_t>(samples.size()), L = static_cast<int64_t>(samples[0].size());
    std::vector<float> q = embed_samples(nano(), samples), f = q;
    int64_t H = 0;
    for (size_t m = 0; m < W.size(); ++m) {
        const int layer = first + static_cast<int>(m);
        Qwen3BlockGrad<float> blk(load_block_consts(nano(), layer));
        H = blk.dims().hidden;
        std::array<const float*, kNumBlockLinears> wq{}, wf{};
        std::array<std::vector<float>, kNumBlockLinears> orig;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            orig[i] = load_block_weight(nano(), layer, i);
            wq[i] = W[m][i].data();
            wf[i] = orig[i].data();
        }
        block_forward_all(blk, wq, q.data(), n, L, n, q.data());
        block_forward_all(blk, wf, f.data(), n, L, n, f.data());
    }
    const auto mask = last_token_mask(n, L);
    return masked_mse_loss<float>(q.data(), f.data(), mask.data(), n, L, H, nullptr);
}

// bf16(dequantize(codes)) of the 7 linears of `layer` in a result (the QDQ weights the tuner ran with).
std::array<std::vector<float>, kNumBlockLinears> qdq_of(const QuantizeResult& r, int layer) {
    std::array<std::vector<float>, kNumBlockLinears> w;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const std::string t = block_linear_tensor(layer, i);
        w[i] = r.layers.at(t.substr(0, t.size() - 7)).dequantize();
        for (float& v : w[i]) v = round_to_bf16(v);
    }
    return w;
}

struct TempDir {
    std::filesystem::path dir;
    explicit TempDir(const std::string& name) {
        dir = std::filesystem::temp_directory_path() / ("ar_tuner_" + name + "_" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
    }
    ~TempDir() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST(SignRoundGroups, TwoBlocksTunedJointly) {
    const QuantPlan plan = plan_of("model.layers.0$,model.layers.1$");
    const auto samples = random_samples(4, 64, 21);
    // batch = all 4 samples: every iteration's loss is over the whole calibration set
    const QuantizeResult r1 = quantize_model(nano(), plan, samples, group_options(10, 1, 4));
    const QuantizeResult r2 = quantize_model(nano(), plan, samples, group_options(10, 2, 4));
    ASSERT_EQ(r2.blocks.size(), 2u);
    for (const BlockReport& b : r2.blocks) {
        EXPECT_EQ(b.method, "signround");
        EXPECT_EQ(b.group, "model.layers.0-1");
        EXPECT_EQ(b.layers, 7);
        EXPECT_EQ(b.iters_run, 10);
        EXPECT_EQ(b.losses.size(), 10u);
    }
    EXPECT_EQ(r2.blocks[0].name, "model.layers.0");
    EXPECT_EQ(r2.blocks[1].name, "model.layers.1");
    EXPECT_EQ(r2.blocks[0].losses, r2.blocks[1].losses);  // one loss: the group's
    EXPECT_TRUE(r1.blocks[0].group.empty());

    // iteration 0 (V = 0, α = β = 1) is RTN on both blocks, measured at block 1's output against the FP chain
    std::vector<std::array<std::vector<float>, kNumBlockLinears>> rtn(2);
    for (int m = 0; m < 2; ++m)
        for (int i = 0; i < kNumBlockLinears; ++i) {
            const auto w = load_block_weight(nano(), m, i);
            const auto sh = block_linear_shape(load_block_consts(nano(), m).dims, i);
            QdqOptions q;
            q.scheme = {4, 128, true};
            rtn[m][i] = quantize_rtn(w, sh[0], sh[1], q).dequantize();
            for (float& v : rtn[m][i]) v = round_to_bf16(v);
        }
    const double rtn_loss = chain_loss(samples, 0, rtn);
    const BlockReport& g = r2.blocks[1];
    EXPECT_NEAR(g.initial_loss, rtn_loss, 1e-5 * rtn_loss);
    EXPECT_LT(g.best_loss, 0.97 * g.initial_loss) << "joint tuning should clearly beat RTN";
    // the exported codes of both blocks are the best iterate of the whole group
    const double exported = chain_loss(samples, 0, {qdq_of(r2, 0), qdq_of(r2, 1)});
    EXPECT_NEAR(exported, g.best_loss, 1e-5 * g.best_loss);
    EXPECT_NEAR(g.final_loss, g.best_loss, 1e-5 * g.best_loss);

    // block by block gives other codes (block 0 is tuned for its own output, not for block 1's)
    int differ = 0;
    for (const auto& [name, q] : r2.layers) differ += q.codes != r1.layers.at(name).codes;
    EXPECT_GT(differ, 0);
    // both final losses measure the quantized chain after block 1 against the FP chain
    const double sequential = chain_loss(samples, 0, {qdq_of(r1, 0), qdq_of(r1, 1)});
    EXPECT_NEAR(r1.blocks[1].final_loss, sequential, 1e-5 * sequential);
    std::printf("nano blocks 0-1, 4 x 64 tokens, 10 iters: RTN %.6g; nblocks 1: block 0 %.6g -> %.6g, block 1 %.6g -> %.6g "
                "(final %.6g); nblocks 2: %.6g -> %.6g @%d (final %.6g)\n",
                rtn_loss, r1.blocks[0].initial_loss, r1.blocks[0].best_loss, r1.blocks[1].initial_loss,
                r1.blocks[1].best_loss, r1.blocks[1].final_loss, g.initial_loss, g.best_loss, g.best_iter, g.final_loss);
}

// Block 0 quantized, block 1 not: its parameters learn only from the loss at block 1's output, i.e.
// through block 1's dX. With small steps the first step already lowers that loss.
TEST(SignRoundGroups, GradientReachesTheFirstBlockThroughTheSecond) {
    const auto samples = random_samples(2, 32, 13);
    const int64_t n = 2, L = 32;
    std::vector<std::unique_ptr<Qwen3BlockGrad<float>>> blocks;
    std::array<std::vector<float>, kNumBlockLinears> W[2];
    std::vector<BlockGroupMember> members(2);
    std::vector<float> in = embed_samples(nano(), samples), ref = in;
    for (int m = 0; m < 2; ++m) {
        blocks.push_back(std::make_unique<Qwen3BlockGrad<float>>(load_block_consts(nano(), m)));
        std::array<const float*, kNumBlockLinears> wp{};
        for (int i = 0; i < kNumBlockLinears; ++i) {
            W[m][i] = load_block_weight(nano(), m, i);
            wp[i] = W[m][i].data();
        }
        block_forward_all(*blocks[m], wp, ref.data(), n, L, n, ref.data());
        members[m].block = blocks[m].get();
        members[m].W = &W[m];
        members[m].name = "model.layers." + std::to_string(m);
        members[m].index = m;
    }
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const std::string t = block_linear_tensor(0, i);
        members[0].layers.push_back({i, t.substr(0, t.size() - 7), LayerScheme{4, 128, true, "int"}});
    }
    EXPECT_EQ(block_group_name(members), "model.layers.0-1");
    SignRoundOptions o = group_options(8, 2, 2);
    o.lr = 2e-3;
    PythonRandom rng(42);
    const std::vector<BlockTuneResult> r = tune_block_group(members, in.data(), ref.data(), n, L, o, rng);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].quantized.size(), 7u);
    EXPECT_TRUE(r[1].quantized.empty());
    EXPECT_EQ(r[1].qdq[kLinDown], W[1][kLinDown]) << "an unquantized member keeps its weights";
    const auto& l = r[0].losses;
    ASSERT_EQ(l.size(), 8u);
    EXPECT_LT(l[1], l[0]);
    EXPECT_LT(r[0].report.best_loss, 0.97 * l[0]);
}

TEST(SignRoundGroups, GroupingShortLastGroupGapsAndClamp) {
    const auto samples = random_samples(2, 32, 5);
    {  // blocks 0, 2, 3, 4 with nblocks 2: [0] (block 1 unselected ends it), fp 1, [2-3], [4] (shorter last)
        const QuantizeResult r = quantize_model(nano(), plan_of("model.layers.[0234]$"), samples, group_options(2, 2, 2));
        ASSERT_EQ(r.blocks.size(), 5u);
        EXPECT_EQ(r.blocks[0].group, "");
        EXPECT_EQ(r.blocks[0].method, "signround");
        EXPECT_EQ(r.blocks[1].method, "fp");
        EXPECT_EQ(r.blocks[2].group, "model.layers.2-3");
        EXPECT_EQ(r.blocks[3].group, "model.layers.2-3");
        EXPECT_EQ(r.blocks[4].group, "");
        EXPECT_EQ(r.blocks[4].method, "signround");
        EXPECT_EQ(r.layers.size(), 28u);
    }
    // nblocks above the block count: one group of every selected block, the same as nblocks = 3 here
    const QuantPlan plan = plan_of("model.layers.[012]$");
    const QuantizeResult big = quantize_model(nano(), plan, samples, group_options(2, 100, 2));
    const QuantizeResult three = quantize_model(nano(), plan, samples, group_options(2, 3, 2));
    ASSERT_EQ(big.blocks.size(), 3u);
    for (const BlockReport& b : big.blocks) EXPECT_EQ(b.group, "model.layers.0-2");
    for (const auto& [name, q] : big.layers) EXPECT_EQ(q.codes, three.layers.at(name).codes) << name;
    EXPECT_EQ(big.blocks[2].losses, three.blocks[2].losses);
}

TEST(SignRoundGroups, GroupsResumeBitIdentical) {
    const QuantPlan plan = plan_of("model.layers.[012]$");
    const auto samples = random_samples(4, 32, 9);
    const SignRoundOptions o = group_options(3, 2, 2);  // groups [0-1], [2]; 2 of 4 samples per step
    const std::string fp = tuning_fingerprint("nano", plan, samples, o);
    SignRoundOptions o1 = o;
    o1.nblocks = 1;
    EXPECT_NE(fp, tuning_fingerprint("nano", plan, samples, o1)) << "nblocks is part of the fingerprint";

    TempDir t("groups");
    const auto ck = t.dir / "ck";
    QuantizeResult full;
    {
        TuningCheckpoint c(ck, fp, false);
        full = quantize_model(nano(), plan, samples, o, &c);
        EXPECT_EQ(c.finished(), (std::vector<int>{0, 1, 2}));
    }
    const QuantizeResult plain = quantize_model(nano(), plan, samples, o);  // no checkpoint: the same
    auto same = [&](const QuantizeResult& r, const std::string& what) {
        ASSERT_EQ(r.layers.size(), full.layers.size()) << what;
        for (const auto& [name, q] : full.layers) {
            EXPECT_EQ(r.layers.at(name).codes, q.codes) << what << " " << name;
            EXPECT_EQ(r.layers.at(name).scales, q.scales) << what << " " << name;
        }
        for (size_t b = 0; b < full.blocks.size(); ++b) {
            EXPECT_EQ(r.blocks[b].losses, full.blocks[b].losses) << what << " block " << b;
            EXPECT_EQ(r.blocks[b].group, full.blocks[b].group) << what << " block " << b;
        }
    };
    same(plain, "no checkpoint");

    // killed after the first group: it is loaded, the sampler continues from its saved state
    std::filesystem::remove(ck / "block-0002.json");
    {
        TuningCheckpoint c(ck, fp, false);
        const QuantizeResult r = quantize_model(nano(), plan, samples, o, &c);
        same(r, "resume after group 0-1");
        EXPECT_TRUE(r.blocks[0].resumed);
        EXPECT_TRUE(r.blocks[1].resumed);
        EXPECT_FALSE(r.blocks[2].resumed);
        EXPECT_EQ(r.blocks[1].group, "model.layers.0-1");
    }
    // killed while saving the first group (block 1 missing): the whole group is tuned again, block 2 loaded
    std::filesystem::remove(ck / "block-0001.json");
    {
        TuningCheckpoint c(ck, fp, false);
        const QuantizeResult r = quantize_model(nano(), plan, samples, o, &c);
        same(r, "resume of a partly saved group");
        EXPECT_FALSE(r.blocks[0].resumed);
        EXPECT_FALSE(r.blocks[1].resumed);
        EXPECT_TRUE(r.blocks[2].resumed);
    }
}
