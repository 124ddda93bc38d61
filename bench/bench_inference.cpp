// bench/bench_inference.cpp — CPU prefill and decode throughput of the Qwen3 runtime, and how close
// decode gets to the machine's memory bandwidth.
//
// Decode reads every linear weight once per token, so tokens/s × weight bytes = achieved GB/s;
// it is compared with this machine's measured memcpy rate and a multi-threaded read-only sweep.
// Usage: bench_inference --model DIR [--prompt_tokens 128] [--decode_tokens 32] [--threads N]
//        (make a 0.6B-shaped model with: autoround init-model --like qwen3-0.6b --output DIR)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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

// Best of 5 multi-threaded sums over a 512 MiB buffer: bytes read per second.
static double read_gbs() {
    const size_t n = (size_t(512) << 20) / sizeof(float);
    std::vector<float> a(n, 1.0f);
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = clk::now();
        float s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; ++i) s += a[i];
        sink = s;
        best = std::max(best, n * sizeof(float) / secs(t0, clk::now()) / 1e9);
    }
    (void)sink;
    return best;
}

int main(int argc, char** argv) {
    std::string model_dir;
    int prompt_tokens = 128, decode_tokens = 32, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        if (k == "--model") model_dir = argv[i + 1];
        else if (k == "--prompt_tokens") prompt_tokens = std::stoi(argv[i + 1]);
        else if (k == "--decode_tokens") decode_tokens = std::stoi(argv[i + 1]);
        else if (k == "--threads") threads = std::stoi(argv[i + 1]);
        else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
    }
    if (model_dir.empty()) model_dir = std::string(AR_SHARED_DIR) + "/models/qwen3-nano";
    if (threads > 0) omp_set_num_threads(threads);
    try {
        const Qwen3Model m = Qwen3Model::load(model_dir);
        const ModelConfig& c = m.config();
        // Bytes a decode step streams: every layer matrix + the LM head (embedding rows are negligible).
        double weight_bytes = 0;
        for (const auto& [name, t] : m.tensors().tensors())
            if (t.shape.size() == 2 && name != "model.embed_tokens.weight") weight_bytes += double(t.nbytes);
        if (c.tie_word_embeddings) weight_bytes += double(m.tensors().get("model.embed_tokens.weight").nbytes);

        std::vector<int32_t> prompt(prompt_tokens);
        for (int i = 0; i < prompt_tokens; ++i) prompt[i] = (i * 7919 + 13) % c.vocab_size;
        std::vector<float> logits(c.vocab_size);
        {  // warm-up: touch every weight page once
            KvCache w = m.make_cache();
            m.forward(std::span<const int32_t>(prompt.data(), std::min(prompt_tokens, 8)), w, logits.data(), false);
        }
        double best_prefill = 1e30, best_decode = 1e30;
        for (int rep = 0; rep < 3; ++rep) {
            KvCache cache = m.make_cache();
            const auto t0 = clk::now();
            m.forward(prompt, cache, logits.data(), false);
            const auto t1 = clk::now();
            for (int i = 0; i < decode_tokens; ++i) {
                const int32_t one[1] = {(i * 31 + 7) % c.vocab_size};
                m.forward(one, cache, logits.data(), false);
            }
            const auto t2 = clk::now();
            best_prefill = std::min(best_prefill, secs(t0, t1));
            best_decode = std::min(best_decode, secs(t1, t2));
        }
        const double prefill_tps = prompt_tokens / best_prefill, decode_tps = decode_tokens / best_decode;
        const double decode_gbs = decode_tps * weight_bytes / 1e9;
        const double mc = memcpy_gbs(), rd = read_gbs();
        const double flops = 2.0 * double(m.parameter_count()) * prompt_tokens;
        std::printf("model            %s (%.3f B params, %d layers, hidden %d)\n", model_dir.c_str(),
                    m.parameter_count() / 1e9, c.num_hidden_layers, c.hidden_size);
        std::printf("threads          %d\n", omp_get_max_threads());
        std::printf("prefill          %d tokens: %.1f tok/s (%.1f GFLOP/s)\n", prompt_tokens, prefill_tps,
                    flops / best_prefill / 1e9);
        std::printf("decode           %d tokens after the prompt: %.2f tok/s, %.2f ms/tok\n", decode_tokens, decode_tps,
                    1e3 / decode_tps);
        std::printf("decode traffic   %.1f MB weights/token -> %.2f GB/s\n", weight_bytes / 1e6, decode_gbs);
        std::printf("machine          memcpy %.2f GB/s copied, parallel read %.2f GB/s\n", mc, rd);
        std::printf("decode vs read   %.0f%% of the measured read bandwidth\n", 100 * decode_gbs / rd);
        std::printf("{\"model\":\"%s\",\"threads\":%d,\"prefill_tps\":%.2f,\"decode_tps\":%.3f,\"decode_gbs\":%.3f,"
                    "\"memcpy_gbs\":%.3f,\"read_gbs\":%.3f}\n",
                    model_dir.c_str(), omp_get_max_threads(), prefill_tps, decode_tps, decode_gbs, mc, rd);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
