// bench/bench_decode_cuda.cpp — batch-1 decode and prefill speed of the GPU inference runtime
// (ops/cuda/decoder_runtime.h) at real Qwen3 sizes, as a fraction of the bytes-moved bound.
//
// Two sources of weights:
//   --like qwen3-4b|qwen3-8b|qwen3-0.6b|...  random weights with the preset's exact shapes (model/model_presets.h),
//       built in memory: every linear packed at --bits (default 4) with --group (default 128), GPTQ layout; the
//       embedding / LM head bf16 (tied when the preset ties them). No checkpoint on disk is needed.
//   --model DIR  a real checkpoint (bf16 or any packed export), loaded by model/qwen3_cuda_model.h.
// Decode: --decode_tokens single-token steps after a --prompt_tokens prompt, best of --reps; each step copies the
// logits to the host (what `generate` does). Bound: decode_read_bytes() (every linear's packed bytes + the LM head)
// plus the KV cache read, divided by the device-to-device copy bandwidth measured here (2 × bytes / time); the
// fraction reported is achieved bytes/s over that bandwidth.
// Usage: bench_decode_cuda --like qwen3-4b [--bits 4] [--group 128] [--prompt_tokens 8] [--decode_tokens 128]
//                          [--reps 3] [--no_graphs] [--exact_gemv] [--prefill 512]
// --exact_gemv: decode with the bit-exact bf16-weight GEMV and unfused norms (CudaDecoderOptions::exact_decode_gemv)
// instead of the default fast path.
// Built in every benchmark build; without CUDA (AUTOROUND_HAVE_CUDA undefined) it only says so.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#ifdef AUTOROUND_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "core/bf16.h"
#include "core/error.h"
#include "io/model_config.h"
#include "model/model_presets.h"
#include "model/qwen3_cuda_model.h"
#include "ops/cuda/decoder_runtime.h"
#include "ops/cuda/device_info.h"

using namespace autoround;

namespace {

struct Rng {
    uint64_t s;
    uint32_t next() {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(s >> 32);
    }
};

HostLinear random_packed(int64_t out, int64_t in, int bits, int64_t group, Rng& r) {
    HostLinear h;
    h.out = out;
    h.in = in;
    h.bits = bits;
    h.group_len = group;
    h.qweight.resize(size_t(in * bits / 32 * out));
    for (auto& w : h.qweight) w = r.next();
    const int64_t ng = in / group;
    h.scales.resize(size_t(ng * out));
    for (auto& s : h.scales) s = float_to_fp16(0.002f * float(1 + r.next() % 8));
    h.zeros.assign(size_t(ng * out), uint8_t(1u << (bits - 1)));
    return h;
}

std::vector<uint16_t> random_bf16(int64_t n, Rng& r) {
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = float_to_bf16((float(r.next() % 2001) - 1000.f) * 2e-5f);
    return v;
}

double copy_bandwidth_gbs() {
    const size_t bytes = size_t(1) << 30;
    void *a = nullptr, *b = nullptr;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) fail("cudaMalloc 1 GiB failed");
    cudaMemset(a, 1, bytes);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    float best = 1e30f;
    for (int i = 0; i < 10; ++i) {
        cudaEventRecord(e0);
        cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        best = std::min(best, ms);
    }
    cudaFree(a);
    cudaFree(b);
    return 2.0 * double(bytes) / (double(best) * 1e-3) / 1e9;
}

std::unique_ptr<CudaDecoder> random_model(const ModelConfig& c, int bits, int64_t group, const CudaDecoderOptions& opt) {
    const DecoderDims d = decoder_dims(c);
    auto dec = std::make_unique<CudaDecoder>(d, opt);
    Rng r{42};
    const int64_t H = d.hidden, I = d.intermediate, QD = int64_t(d.n_q_heads) * d.head_dim,
                  KD = int64_t(d.n_kv_heads) * d.head_dim;
    const std::vector<uint16_t> emb = random_bf16(d.vocab * H, r);
    dec->set_embedding(emb.data());
    const std::vector<float> ones(size_t(std::max<int64_t>(H, d.head_dim)), 1.f);
    dec->set_final_norm(ones.data());
    if (c.tie_word_embeddings) {
        dec->tie_lm_head_to_embedding();
    } else {
        const std::vector<uint16_t> head = random_bf16(d.vocab * H, r);
        HostLinear h;
        h.out = d.vocab;
        h.in = H;
        h.dense_bf16 = head.data();
        dec->set_lm_head(h);
    }
    for (int l = 0; l < d.n_layers; ++l) {
        const HostLinear q = random_packed(QD, H, bits, group, r), k = random_packed(KD, H, bits, group, r),
                         v = random_packed(KD, H, bits, group, r), o = random_packed(H, QD, bits, group, r),
                         gate = random_packed(I, H, bits, group, r), up = random_packed(I, H, bits, group, r),
                         down = random_packed(H, I, bits, group, r);
        HostDecoderLayer L;
        L.input_norm = L.post_attn_norm = ones.data();
        if (d.qk_norm) L.q_norm = L.k_norm = ones.data();
        L.q = &q;
        L.k = &k;
        L.v = &v;
        L.o = &o;
        L.gate = &gate;
        L.up = &up;
        L.down = &down;
        dec->set_layer(l, L);
    }
    return dec;
}

}  // namespace

int main(int argc, char** argv) {
    std::string like, model;
    int bits = 4, prompt = 8, decode = 128, reps = 3, prefill = 512;
    int64_t group = 128;
    bool graphs = true, exact_gemv = false;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--no_graphs") { graphs = false; continue; }
        if (k == "--exact_gemv") { exact_gemv = true; continue; }
        if (i + 1 >= argc) { std::fprintf(stderr, "option %s needs a value\n", k.c_str()); return 2; }
        const char* v = argv[++i];
        if (k == "--like") like = v;
        else if (k == "--model") model = v;
        else if (k == "--bits") bits = std::stoi(v);
        else if (k == "--group") group = std::stoll(v);
        else if (k == "--prompt_tokens") prompt = std::stoi(v);
        else if (k == "--decode_tokens") decode = std::stoi(v);
        else if (k == "--reps") reps = std::stoi(v);
        else if (k == "--prefill") prefill = std::stoi(v);
        else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
    }
    if (like.empty() == model.empty()) { std::fprintf(stderr, "pass --like PRESET or --model DIR\n"); return 2; }
    try {
        if (!cuda_available()) { std::printf("bench_decode_cuda: no CUDA device visible\n"); return 0; }
        const auto devs = cuda_list_devices();
        CudaDecoderOptions opt;
        opt.cuda_graphs = graphs;
        opt.exact_decode_gemv = exact_gemv;
        std::unique_ptr<Qwen3CudaModel> loaded;
        std::unique_ptr<CudaDecoder> own;
        ModelConfig cfg;
        std::string what;
        if (!model.empty()) {
            loaded = Qwen3CudaModel::load(model, opt);
            cfg = loaded->config();
            what = model + " (" + loaded->summary() + ")";
        } else {
            cfg = parse_model_config(qwen3_preset_config(like), like);
            own = random_model(cfg, bits, group, opt);
            what = like + " random, W" + std::to_string(bits) + "G" + std::to_string(group);
        }
        CudaDecoder& dec = loaded ? loaded->decoder() : *own;
        const double bw = copy_bandwidth_gbs();
        const int64_t V = cfg.vocab_size;
        std::vector<float> logits(static_cast<size_t>(V));
        std::vector<int32_t> ids(static_cast<size_t>(std::max(prompt, prefill)));
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7919 + 13) % size_t(V));
        dec.reserve(std::max<int64_t>(prompt + decode, prefill) + 1);
        double best_decode = 1e30, best_prefill = 1e30;
        for (int rep = 0; rep < reps + 1; ++rep) {  // rep 0: warm-up (graph capture, cuBLAS heuristics)
            dec.clear();
            auto t0 = std::chrono::steady_clock::now();
            dec.forward(ids.data(), prefill, logits.data(), false);
            auto t1 = std::chrono::steady_clock::now();
            dec.clear();
            dec.forward(ids.data(), prompt, logits.data(), false);
            int32_t tok = ids[0];
            auto t2 = std::chrono::steady_clock::now();
            for (int s = 0; s < decode; ++s) {
                dec.forward(&tok, 1, logits.data(), false);
                tok = int32_t((tok + 101) % V);
            }
            auto t3 = std::chrono::steady_clock::now();
            if (rep == 0) continue;
            best_prefill = std::min(best_prefill, std::chrono::duration<double>(t1 - t0).count());
            best_decode = std::min(best_decode, std::chrono::duration<double>(t3 - t2).count());
        }
        const double tps = decode / best_decode;
        const double kv_bytes = 2.0 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 2.0 *
                                (prompt + decode / 2.0);  // average cache read per step
        const double bytes = double(dec.decode_read_bytes()) + kv_bytes;
        const double gbs = bytes * tps / 1e9;
        std::printf("device           %s\n", devs.empty() ? "?" : devs[0].name.c_str());
        std::printf("model            %s\n", what.c_str());
        std::printf("weights on GPU   %.3f GiB; one decode step reads %.1f MB\n", double(dec.weight_bytes()) / (1u << 30),
                    bytes / 1e6);
        std::printf("copy bandwidth   %.0f GB/s (device-to-device, read + write)\n", bw);
        std::printf("prefill %d tok    %.1f ms (%.0f tok/s)\n", prefill, best_prefill * 1e3, prefill / best_prefill);
        std::printf("decode           %.1f tok/s (%.3f ms/token, CUDA graphs %s, %s GEMV), %.0f GB/s = %.1f%% of "
                    "the copy bandwidth\n",
                    tps, 1e3 / tps, graphs ? "on" : "off", exact_gemv ? "exact" : "fast", gbs, 100.0 * gbs / bw);
        std::printf("{\"model\":\"%s\",\"decode_tps\":%.2f,\"prefill_tps\":%.1f,\"bytes_per_token\":%.0f,"
                    "\"copy_gbs\":%.1f,\"bound_fraction\":%.4f,\"gemv\":\"%s\"}\n",
                    like.empty() ? model.c_str() : like.c_str(), tps, prefill / best_prefill, bytes, bw, gbs / bw,
                    exact_gemv ? "exact" : "fast");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_decode_cuda: %s\n", e.what());
        return 1;
    }
    return 0;
}

#else
int main() {
    std::printf("bench_decode_cuda: this build has no CUDA (configure with -DAUTOROUND_CUDA=ON)\n");
    return 0;
}
#endif
