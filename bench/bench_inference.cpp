// bench/bench_inference.cpp — CPU prefill and decode throughput of the Qwen3 runtime, and how close
// decode gets to the machine's memory bandwidth.
//
// Decode reads every linear weight once per token, so tokens/s × weight bytes = achieved GB/s;
// it is compared with this machine's measured memcpy rate and a multi-threaded read-only sweep (the
// bytes-moved bound of decode is read bandwidth / weight bytes per token).
// Prefill: --prompt_tokens from an empty cache. Decode: --decode_tokens single-token steps after a
// --decode_prompt token prompt. Best of --reps runs of each (after one warm-up that touches every weight).
// Usage: bench_inference --model DIR|FILE.gguf [--prompt_tokens 128] [--decode_tokens 32] [--decode_prompt 8]
//                        [--reps 3] [--threads N]
//        bench_inference --membw [--threads N]   (only the read bandwidth, GB/s)
//        (make a 0.6B-shaped model with: autoround init-model --like qwen3-0.6b --output DIR; a .gguf runs
//         its quantized weights packed, ops/cpu/quant_matmul.h)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/qwen3_model.h"

using namespace autoround;
using clk = std::chrono::steady_clock;

static double secs(clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Best of 5 copies of a 512 MiB buffer: bytes copied per second.
static double memcpy_gbs() {
    const size_t n = size_t(512) << 20;
    std::vector<char> a(n, 1), b(n, 2);
    double best = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = clk::now();
        std::memcpy(b.data(), a.data(), n);
        best = std::max(best, n / secs(t0, clk::now()) / 1e9);
    }
    return best;
}

// Best of 5 multi-threaded sums over a 512 MiB buffer (16x the L3 here): bytes read per second. Integer
// adds so the compiler vectorizes the reduction (a float sum stays scalar and would measure the adder).
static double read_gbs() {
    const size_t n = (size_t(512) << 20) / sizeof(uint64_t);
    std::vector<uint64_t> a(n, 1);
    double best = 0;
    volatile uint64_t sink = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = clk::now();
        uint64_t s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; ++i) s += a[i];
        sink = s;
        best = std::max(best, n * sizeof(uint64_t) / secs(t0, clk::now()) / 1e9);
    }
    (void)sink;
    return best;
}

// Bytes a decode step streams: every 2-D weight + the LM head (embedding rows read per token are negligible).
static double decode_weight_bytes(const Qwen3Model& m) {
    double b = 0;
    const bool tied = m.config().tie_word_embeddings;
    if (const auto& g = m.gguf()) {
        for (const GgufTensorInfo& t : g->tensors())
            if (t.ne.size() == 2 && (t.name != "token_embd.weight" || tied)) b += double(t.nbytes);
        return b;
    }
    for (const auto& [name, t] : m.tensors().tensors())
        if (t.shape.size() == 2 && (name != "model.embed_tokens.weight" || tied)) b += double(t.nbytes);
    return b;
}

int main(int argc, char** argv) {
    std::string model_dir;
    int prompt_tokens = 128, decode_tokens = 32, decode_prompt = 8, reps = 3, threads = 0;
    bool membw_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--membw") { membw_only = true; continue; }
        if (i + 1 >= argc) { std::fprintf(stderr, "option %s needs a value\n", k.c_str()); return 2; }
        const char* v = argv[++i];
        if (k == "--model") model_dir = v;
        else if (k == "--prompt_tokens") prompt_tokens = std::stoi(v);
        else if (k == "--decode_tokens") decode_tokens = std::stoi(v);
        else if (k == "--decode_prompt") decode_prompt = std::stoi(v);
        else if (k == "--reps") reps = std::stoi(v);
        else if (k == "--threads") threads = std::stoi(v);
        else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
    }
    if (model_dir.empty()) model_dir = std::string(AR_SHARED_DIR) + "/models/qwen3-nano";
    if (threads > 0) omp_set_num_threads(threads);
    if (membw_only) {
        const double rd = read_gbs();
        std::printf("{\"threads\":%d,\"read_gbs\":%.3f}\n", omp_get_max_threads(), rd);
        return 0;
    }
    try {
        const Qwen3Model m = Qwen3Model::load(model_dir);
        const ModelConfig& c = m.config();
        const double weight_bytes = decode_weight_bytes(m);
        auto ids = [&](int n) {
            std::vector<int32_t> v(n);
            for (int i = 0; i < n; ++i) v[i] = (i * 7919 + 13) % c.vocab_size;
            return v;
        };
        const std::vector<int32_t> prompt = ids(prompt_tokens), short_prompt = ids(decode_prompt);
        std::vector<float> logits(c.vocab_size);
        {  // warm-up: touch every weight page once
            KvCache w = m.make_cache();
            m.forward(std::span<const int32_t>(prompt.data(), std::min(prompt_tokens, 8)), w, logits.data(), false);
        }
        double best_prefill = 1e30, best_decode = 1e30;
        for (int rep = 0; rep < reps; ++rep) {
            KvCache cache = m.make_cache();
            const auto t0 = clk::now();
            m.forward(prompt, cache, logits.data(), false);
            best_prefill = std::min(best_prefill, secs(t0, clk::now()));

            KvCache dc = m.make_cache();
            m.forward(short_prompt, dc, logits.data(), false);
            const auto t1 = clk::now();
            for (int i = 0; i < decode_tokens; ++i) {
                const int32_t one[1] = {(i * 31 + 7) % c.vocab_size};
                m.forward(one, dc, logits.data(), false);
            }
            best_decode = std::min(best_decode, secs(t1, clk::now()));
        }
        const double prefill_tps = prompt_tokens / best_prefill, decode_tps = decode_tokens / best_decode;
        const double decode_gbs = decode_tps * weight_bytes / 1e9;
        const double mc = memcpy_gbs(), rd = read_gbs();
        const double flops = 2.0 * double(m.parameter_count()) * prompt_tokens;
        std::printf("model            %s (%.3f B params, %d layers, hidden %d)\n", model_dir.c_str(),
                    m.parameter_count() / 1e9, c.num_hidden_layers, c.hidden_size);
        std::printf("threads          %d\n", omp_get_max_threads());
        std::printf("prefill          %d tokens: %.1f tok/s (%.1f GFLOP/s), best of %d\n", prompt_tokens, prefill_tps,
                    flops / best_prefill / 1e9, reps);
        std::printf("decode           %d tokens after a %d-token prompt: %.2f tok/s, %.2f ms/tok, best of %d\n",
                    decode_tokens, decode_prompt, decode_tps, 1e3 / decode_tps, reps);
        std::printf("decode traffic   %.1f MB weights/token -> %.2f GB/s\n", weight_bytes / 1e6, decode_gbs);
        std::printf("machine          memcpy %.2f GB/s copied, parallel read %.2f GB/s\n", mc, rd);
        std::printf("decode vs read   %.0f%% of the bytes-moved bound (%.1f tok/s at the read bandwidth)\n",
                    100 * decode_gbs / rd, rd * 1e9 / weight_bytes);
        std::printf("{\"model\":\"%s\",\"threads\":%d,\"prefill_tps\":%.2f,\"decode_tps\":%.3f,\"weight_mb\":%.3f,"
                    "\"decode_gbs\":%.3f,\"memcpy_gbs\":%.3f,\"read_gbs\":%.3f,\"bound_fraction\":%.4f}\n",
                    model_dir.c_str(), omp_get_max_threads(), prefill_tps, decode_tps, weight_bytes / 1e6, decode_gbs,
                    mc, rd, decode_gbs / rd);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
