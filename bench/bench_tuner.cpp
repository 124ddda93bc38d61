// bench/bench_tuner.cpp — SignRound tuning speed on CPU: seconds per block-iteration (one SignSGD step of
// one decoder block: fake-quant of 7 weights, block forward + masked MSE, backward, fake-quant backward,
// update) and where the time goes, op by op.
//
// Why: the issue's speed target is "tuning time per block-iteration on 2 cores for qwen3-nano at seqlen 512,
// batch 8" with the hot spots named; this reports exactly that for any model, thread count and shape, so
// thread scaling can be checked on bigger machines too.
// Usage: bench_tuner [--model DIR] [--layer 0] [--batch 8] [--seqlen 512] [--nsamples 16] [--iters 5]
//                    [--threads N] [--bits 4] [--group_size 128] [--cuda]
// With --cuda the block math runs on the GPU (its time shows as "block fwd+loss"; "block bwd" is then the
// download of the weight gradients) and the per-op CPU profile is empty.
// Inputs are the embeddings of random token ids (the shapes, not the values, decide the cost).
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "model/qwen3_block_grad.h"
#include "model/qwen3_model.h"
#include "quant/python_random.h"
#include "quant/signround_tuner.h"

using namespace autoround;

int main(int argc, char** argv) {
    std::string model_dir = std::string(AR_SHARED_DIR) + "/models/qwen3-nano";
    int layer = 0, batch = 8, seqlen = 512, nsamples = 16, iters = 5, threads = 0, bits = 4;
    int64_t group = 128;
    bool cuda = false;
    for (int i = 1; i < argc; i += 2) {
        const std::string k = argv[i];
        if (k == "--cuda") {  // a flag: the block forward/backward on the GPU
            cuda = true;
            --i;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "flag %s needs a value\n", k.c_str());
            return 1;
        }
        const std::string v = argv[i + 1];
        if (k == "--model") model_dir = v;
        else if (k == "--layer") layer = std::stoi(v);
        else if (k == "--batch") batch = std::stoi(v);
        else if (k == "--seqlen") seqlen = std::stoi(v);
        else if (k == "--nsamples") nsamples = std::stoi(v);
        else if (k == "--iters") iters = std::stoi(v);
        else if (k == "--threads") threads = std::stoi(v);
        else if (k == "--bits") bits = std::stoi(v);
        else if (k == "--group_size") group = std::stoll(v);
        else {
            std::fprintf(stderr, "unknown flag %s\n", k.c_str());
            return 1;
        }
    }
    if (threads > 0) omp_set_num_threads(threads);
    try {
        const Qwen3Model model = Qwen3Model::load(model_dir);
        Qwen3BlockGrad<float> block(load_block_consts(model, layer));
        std::array<std::vector<float>, kNumBlockLinears> W;
        for (int i = 0; i < kNumBlockLinears; ++i) W[i] = load_block_weight(model, layer, i);
        std::mt19937 gen(1);
        std::uniform_int_distribution<int> tok(0, model.config().vocab_size - 1);
        std::vector<std::vector<int32_t>> samples(static_cast<size_t>(nsamples), std::vector<int32_t>(seqlen));
        for (auto& s : samples)
            for (auto& t : s) t = tok(gen);
        const std::vector<float> in = embed_samples(model, samples);
        std::vector<float> ref(in.size());
        std::array<const float*, kNumBlockLinears> wp{};
        for (int i = 0; i < kNumBlockLinears; ++i) wp[i] = W[i].data();
        block_forward_all(block, wp, in.data(), nsamples, seqlen, batch, ref.data());
        // targets: the FP output with a small perturbation so the loss is not zero at V = 0
        for (float& r : ref) r *= 1.001f;
        std::vector<BlockLayerSpec> specs;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            LayerScheme s;
            s.bits = bits;
            s.group_size = group;
            specs.push_back({i, "model.layers." + std::to_string(layer) + "." + block_linear_name(i), s});
        }
        SignRoundOptions opt;
        opt.iters = iters;
        opt.batch_size = batch;
        opt.progress = false;
        opt.cuda = cuda;
        PythonRandom rng(42);
        BlockOpProfile prof;
        block.set_profile(&prof);
        const BlockTuneResult r = tune_block(block, W, specs, in.data(), ref.data(), nsamples, seqlen, opt, rng,
                                             "model.layers." + std::to_string(layer), layer);
        const BlockReport& b = r.report;
        const double per = b.tune_seconds / b.iters_run;
        const Qwen3BlockDims& d = block.dims();
        double params = 0;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            const auto sh = block_linear_shape(d, i);
            params += double(sh[0]) * double(sh[1]);
        }
        const double tokens = double(batch) * seqlen;
        // forward 2·P·T, backward dW 2·P·T + dX 2·(P - P_qkv)·T, attention ~ (fwd 2 + bwd 5 matmuls)·B·nq·L²·D
        const double qkv = double(d.hidden) * double((d.n_q_heads + 2 * d.n_kv_heads) * d.head_dim);
        const double attn = 7.0 * batch * d.n_q_heads * double(seqlen) * seqlen * d.head_dim;  // causal half of 2·...
        const double flops = 2 * params * tokens + 2 * params * tokens + 2 * (params - qkv) * tokens + attn;
        std::printf("model            %s layer %d (hidden %lld, intermediate %lld, heads %lld/%lld, head_dim %lld)\n",
                    model_dir.c_str(), layer, (long long)d.hidden, (long long)d.intermediate, (long long)d.n_q_heads,
                    (long long)d.n_kv_heads, (long long)d.head_dim);
        std::printf("shape            batch %d x seqlen %d, W%dG%lld, %d iterations, %d threads, %s\n", batch, seqlen,
                    bits, (long long)group, b.iters_run, omp_get_max_threads(), cuda ? "GPU block math" : "CPU");
        std::printf("per iteration    %.4f s  (%.1f GFLOP/s of useful block math)\n", per, flops / per / 1e9);
        std::printf("  fake-quant fwd %.4f s, block fwd+loss %.4f s, block bwd %.4f s, device fwd+loss+bwd %.4f s, "
                    "fq bwd+update %.4f s\n",
                    b.qdq_seconds / b.iters_run, b.forward_seconds / b.iters_run, b.backward_seconds / b.iters_run,
                    b.device_step_seconds / b.iters_run, b.update_seconds / b.iters_run);
        const double tot = prof.total();
        for (const auto& [op, s] : prof.seconds)
            std::printf("  %-26s %8.4f s/it  %5.1f%%\n", op.c_str(), s / b.iters_run, 100 * s / tot);
        std::printf("{\"threads\":%d,\"cuda\":%s,\"batch\":%d,\"seqlen\":%d,\"seconds_per_iter\":%.5f}\n",
                    omp_get_max_threads(), cuda ? "true" : "false", batch, seqlen, per);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
