// bench/bench_vl.cpp — CPU throughput of Qwen3-VL inference, stage by stage: image decode and
// preprocessing, the vision tower, the prefill of the expanded prompt (vision tower + language model)
// and greedy decoding at batch 1.
//
// Usage: bench_vl [--model DIR] [--image PATH] [--max_pixels N] [--min_pixels N] [--prompt TEXT]
//                 [--decode_tokens 32] [--reps 3] [--threads N]
//   defaults: ../shared/models/qwen3-vl-nano, ../shared/data/images/merlion.png, the folder's
//   preprocessor_config.json sizes. Each stage is timed `reps` times after one warm-up; the best is
//   reported. Without tokenizer.json / chat template in the folder (a random preset written by
//   `autoround init-model --like qwen3-vl-8b` without --tokenizer_from), the prompt is
//   <|im_start|>, <|vision_start|><|image_pad|><|vision_end|> and 16 arbitrary text ids.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "image/image.h"
#include "image/qwen3_vl_image_processor.h"
#include "io/model_config.h"
#include "model/qwen3_vl_model.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

using namespace autoround;
using clk = std::chrono::steady_clock;

static double secs(clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); }

static double load_average() {
    double l[3] = {0, 0, 0};
    return getloadavg(l, 3) >= 1 ? l[0] : -1;
}

int main(int argc, char** argv) {
    std::string model_dir = std::string(AR_SHARED_DIR) + "/models/qwen3-vl-nano";
    std::string image_path = std::string(AR_SHARED_DIR) + "/data/images/merlion.png";
    std::string prompt = "Describe this image.";
    int64_t max_pixels = 0, min_pixels = 0;
    int decode_tokens = 32, reps = 3, threads = 0;
    for (int i = 1; i < argc; i += 2) {
        const std::string k = argv[i];
        if (i + 1 >= argc) { std::fprintf(stderr, "option %s needs a value\n", k.c_str()); return 2; }
        const char* v = argv[i + 1];
        if (k == "--model") model_dir = v;
        else if (k == "--image") image_path = v;
        else if (k == "--prompt") prompt = v;
        else if (k == "--max_pixels") max_pixels = std::stoll(v);
        else if (k == "--min_pixels") min_pixels = std::stoll(v);
        else if (k == "--decode_tokens") decode_tokens = std::stoi(v);
        else if (k == "--reps") reps = std::max(1, std::stoi(v));
        else if (k == "--threads") threads = std::stoi(v);
        else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
    }
    if (threads > 0) omp_set_num_threads(threads);
    try {
        const double load0 = load_average();
        auto t = clk::now();
        const Qwen3VLModel vl = Qwen3VLModel::load(model_dir);
        const double load_s = secs(t, clk::now());
        const ModelConfig& c = vl.text().config();
        const Qwen3VLVisionConfig& vc = vl.vision().config();

        // ---- image decode + preprocess
        PixelOverrides px;
        if (max_pixels > 0) px.max_pixels = max_pixels;
        if (min_pixels > 0) px.min_pixels = min_pixels;
        const ImageProcessorConfig ipc = load_model_image_processor_config(model_dir, px);
        double best_decode_img = 1e30, best_pre = 1e30;
        RgbImage img;
        ProcessedImage im;
        for (int r = 0; r <= reps; ++r) {  // r = 0: warm-up (file cache)
            const auto a = clk::now();
            img = decode_image(image_path);
            const auto b = clk::now();
            im = preprocess_image(img, ipc);
            const auto e = clk::now();
            if (r > 0) best_decode_img = std::min(best_decode_img, secs(a, b)), best_pre = std::min(best_pre, secs(b, e));
        }

        // ---- prompt ids
        std::vector<int32_t> ids;
        std::string prompt_kind;
        const bool have_tok = std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json");
        const TokenizerConfig tc = load_tokenizer_config(model_dir);
        if (have_tok && tc.chat_template) {
            ChatTemplateInputs in;
            in.messages.push_back({{"role", "user"},
                                   {"content", nlohmann::ordered_json::array(
                                                   {{{"type", "image"}}, {{"type", "text"}, {"text", prompt}}})}});
            in.add_generation_prompt = true;
            ids = BpeTokenizer::load(std::filesystem::path(model_dir) / "tokenizer.json")
                      .encode(ChatTemplate(*tc.chat_template).render(in));
            prompt_kind = "chat template + tokenizer";
        } else {
            ids = {c.vision_start_token_id, c.image_token_id, c.vision_end_token_id};
            for (int i = 0; i < 16; ++i) ids.push_back((i * 7919 + 13) % std::min<int64_t>(c.vocab_size, 100000));
            prompt_kind = "synthetic ids (no tokenizer.json/chat template in the folder)";
        }
        const std::vector<int32_t> expanded = vl.expand_image_pads(ids, std::span<const ProcessedImage>(&im, 1));
        const int64_t T = static_cast<int64_t>(expanded.size());

        // ---- vision tower alone
        const ImageGrid grid{static_cast<int>(im.grid_thw[0]), static_cast<int>(im.grid_thw[1]),
                             static_cast<int>(im.grid_thw[2])};
        double best_enc = 1e30;
        for (int r = 0; r <= reps; ++r) {
            const auto a = clk::now();
            const VisionOutput vo = vl.vision().encode(im.pixel_values, std::span<const ImageGrid>(&grid, 1));
            if (r > 0) best_enc = std::min(best_enc, secs(a, clk::now()));
        }

        // ---- prefill (vision + LM) and greedy decode
        const int64_t V = c.vocab_size;
        std::vector<float> logits(V);
        double best_prefill = 1e30, best_dec = 1e30;
        std::vector<int32_t> generated;
        for (int r = 0; r <= reps; ++r) {
            KvCache cache = vl.text().make_cache();
            const auto a = clk::now();
            vl.prefill(expanded, std::span<const ProcessedImage>(&im, 1), cache, logits.data(), false);
            const auto b = clk::now();
            std::vector<int32_t> gen;
            for (int i = 0; i < decode_tokens; ++i) {
                const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
                gen.push_back(next);
                const int32_t one[1] = {next};
                vl.text().forward(one, cache, logits.data(), false);
            }
            const auto e = clk::now();
            if (r > 0) best_prefill = std::min(best_prefill, secs(a, b)), best_dec = std::min(best_dec, secs(b, e));
            generated = std::move(gen);
        }
        const double lm_prefill = std::max(1e-9, best_prefill - best_enc);
        const double load1 = load_average();

        std::printf("model             %s (%.3f B params; text %d layers, hidden %d; vision %d blocks, hidden %d)\n",
                    model_dir.c_str(), vl.text().parameter_count() / 1e9, c.num_hidden_layers, c.hidden_size,
                    vc.depth, vc.hidden_size);
        std::printf("threads           %d   (load average %.2f before, %.2f after)\n", omp_get_max_threads(), load0,
                    load1);
        std::printf("model load        %.3f s\n", load_s);
        std::printf("image             %s: %dx%d -> resized %dx%d, grid %lldx%lld patches, %lld image tokens\n",
                    image_path.c_str(), img.width, img.height, im.resized_width, im.resized_height,
                    (long long)im.grid_thw[1], (long long)im.grid_thw[2], (long long)im.n_image_tokens);
        std::printf("prompt            %lld tokens after expansion (%s)\n", (long long)T, prompt_kind.c_str());
        std::printf("%-18s%12s %14s\n", "stage", "ms", "rate");
        std::printf("%-18s%12.2f %14s\n", "image decode", best_decode_img * 1e3, "");
        std::printf("%-18s%12.2f %14s\n", "preprocess", best_pre * 1e3, "");
        std::printf("%-18s%12.2f %10.1f p/s\n", "vision encode", best_enc * 1e3, im.n_patches / best_enc);
        std::printf("%-18s%12.2f %10.1f t/s\n", "prefill (total)", best_prefill * 1e3, T / best_prefill);
        std::printf("%-18s%12.2f %10.1f t/s\n", "prefill (LM part)", lm_prefill * 1e3, T / lm_prefill);
        std::printf("%-18s%12.2f %10.2f t/s\n", "decode", best_dec * 1e3, decode_tokens / best_dec);
        std::printf("(best of %d after a warm-up; prefill LM part = prefill - vision encode; decode: %d greedy tokens, "
                    "%.2f ms/token)\n",
                    reps, decode_tokens, decode_tokens > 0 ? best_dec * 1e3 / decode_tokens : 0.0);
        std::printf("{\"model\":\"%s\",\"threads\":%d,\"image\":\"%s\",\"patches\":%lld,\"image_tokens\":%lld,"
                    "\"prompt_tokens\":%lld,\"decode_image_ms\":%.3f,\"preprocess_ms\":%.3f,\"vision_ms\":%.3f,"
                    "\"vision_patches_per_s\":%.2f,\"prefill_ms\":%.3f,\"prefill_tps\":%.2f,\"lm_prefill_tps\":%.2f,"
                    "\"decode_tokens\":%d,\"decode_tps\":%.3f,\"loadavg_before\":%.2f,\"loadavg_after\":%.2f}\n",
                    model_dir.c_str(), omp_get_max_threads(), image_path.c_str(), (long long)im.n_patches,
                    (long long)im.n_image_tokens, (long long)T, best_decode_img * 1e3, best_pre * 1e3, best_enc * 1e3,
                    im.n_patches / best_enc, best_prefill * 1e3, T / best_prefill, T / lm_prefill, decode_tokens,
                    decode_tokens / best_dec, load0, load1);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
