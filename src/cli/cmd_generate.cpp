// cli/cmd_generate.cpp — `autoround generate`: prompt (raw or through the chat template) ->
// prefill -> token-by-token decode with the KV cache, streaming text as it is produced.
// Sampling defaults come from generation_config.json; --temperature 0 means greedy.
// With --image (Qwen3-VL models), the prompt goes through the chat template as a user message whose
// content is the image parts followed by the text; each image is decoded, resized and patchified by the
// model's image processor, encoded by the vision tower and placed at its <|image_pad|> tokens.
#include <chrono>
#include <cstdlib>
#include <optional>
#include <cstdio>
#include <set>

#include "cli/common.h"
#include "cli/model_source.h"
#include "core/error.h"
#include "image/image.h"
#include "image/qwen3_vl_image_processor.h"
#include "io/model_config.h"
#include "model/qwen3_cuda_model.h"
#include "model/qwen3_model.h"
#include "model/qwen3_vl_model.h"
#include "model/sampler.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

namespace autoround::cli {
namespace {

struct GenerateArgs {
    std::string model, prompt, prompt_file, system, tokenizer, device = "cpu";
    std::vector<std::string> images;
    int64_t min_pixels = 0, max_pixels = 0;  // 0: from preprocessor_config.json
    bool no_exif_rotate = false;
    bool chat = false, ids = false, no_stats = false;
    int max_new_tokens = -1, top_k = -1, threads = 0;
    float temperature = -1, top_p = -1, min_p = 0, repetition_penalty = -1;
    uint64_t seed = 0;
    bool ignore_eos = false;
};

int run_generate(const GenerateArgs& a) {
    set_threads(a.threads);
    const bool with_images = !a.images.empty();
    const std::string device_flag = resolve_device(with_images && a.device == "auto" ? "cpu" : a.device);
    const ModelSource src = model_source_arg(a.model);  // HF folder, or a GGUF file / folder
    const auto& dir = src.path;
    check(!(with_images && device_flag == "cuda"), "--image with --device cuda: the GPU runtime runs text only; use "
          "--device cpu for images");
    // --device cuda: the GPU runtime holds the weights; the CPU model is still loaded (packed layers left packed)
    // for the config and the generation settings, and handed to the GPU loader.
    const std::string device = device_for_model(device_flag, a.device, src);
    Qwen3Model text_model = Qwen3Model::load(dir, device == "cuda" ? PackedLayers::Skip : PackedLayers::Dequantize);
    std::unique_ptr<Qwen3CudaModel> gpu;
    if (device == "cuda") {
        gpu = Qwen3CudaModel::load(text_model, {}, !a.no_stats);
        if (!a.no_stats) std::fprintf(stderr, "[cuda] %s\n", gpu->summary().c_str());
    }
    // Images: decoded and preprocessed before the (slow) vision tower loads, so bad files fail fast.
    std::vector<ProcessedImage> images;
    std::optional<Qwen3VLModel> vl;
    if (with_images) {
        check(text_model.config().vision_language, "--image: ", dir.string(), " is a ", text_model.config().architecture,
              " model, which takes no images; use a Qwen3-VL model (Qwen3VLForConditionalGeneration)");
        PixelOverrides px;
        if (a.min_pixels > 0) px.min_pixels = a.min_pixels;
        if (a.max_pixels > 0) px.max_pixels = a.max_pixels;
        const ImageProcessorConfig ipc = load_model_image_processor_config(dir, px);
        DecodeOptions dopt;
        dopt.apply_exif_orientation = !a.no_exif_rotate;
        for (const std::string& path : a.images) images.push_back(preprocess_image(decode_image(path, dopt), ipc));
        vl = Qwen3VLModel::from_text_model(std::move(text_model), dir);
    }
    const Qwen3Model& model = vl ? vl->text() : text_model;
    const BpeTokenizer tok = src.tokenizer(a.tokenizer);
    const GenerationConfig gen = src.generation_config();

    std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
    const bool chat = a.chat || with_images;  // image parts only exist in the chat template's message format
    if (chat) {
        const TokenizerConfig tc = src.tokenizer_config();
        check(tc.chat_template.has_value(), with_images ? "--image" : "--chat", ": ", dir.string(),
              " has no chat template (tokenizer_config.json chat_template or chat_template.jinja)",
              with_images ? "" : "; drop --chat");
        ChatTemplateInputs in;
        if (!a.system.empty()) in.messages.push_back({{"role", "system"}, {"content", a.system}});
        if (with_images) {
            nlohmann::ordered_json parts = nlohmann::ordered_json::array();
            for (size_t i = 0; i < images.size(); ++i) parts.push_back({{"type", "image"}});
            parts.push_back({{"type", "text"}, {"text", prompt}});
            in.messages.push_back({{"role", "user"}, {"content", parts}});
        } else {
            in.messages.push_back({{"role", "user"}, {"content", prompt}});
        }
        in.add_generation_prompt = true;
        in.extra["bos_token"] = tc.bos_token;
        in.extra["eos_token"] = tc.eos_token;
        prompt = ChatTemplate(*tc.chat_template).render(in);
    } else {
        check(a.system.empty(), "--system needs --chat (the system prompt goes through the chat template)");
    }
    std::vector<int32_t> ids = tok.encode(prompt);
    check(!ids.empty(), "the prompt is empty; pass --prompt TEXT");
    if (vl) ids = vl->expand_image_pads(ids, images);

    SamplingParams sp;
    sp.temperature = a.temperature >= 0 ? a.temperature : gen.temperature;
    sp.greedy = a.temperature == 0 || (a.temperature < 0 && !gen.do_sample);
    sp.top_k = a.top_k >= 0 ? a.top_k : gen.top_k;
    sp.top_p = a.top_p >= 0 ? a.top_p : gen.top_p;
    sp.min_p = a.min_p;
    sp.repetition_penalty = a.repetition_penalty > 0 ? a.repetition_penalty : gen.repetition_penalty;
    sp.seed = a.seed;
    check(sp.top_p > 0 && sp.top_p <= 1, "--top_p must be in (0, 1], got ", sp.top_p);
    check(sp.temperature >= 0, "--temperature must be >= 0");
    const int max_new = a.max_new_tokens >= 0 ? a.max_new_tokens : gen.max_new_tokens.value_or(256);
    std::set<int32_t> eos(gen.eos_token_ids.begin(), gen.eos_token_ids.end());
    for (int e : model.config().eos_token_ids) eos.insert(e);

    const int64_t V = model.config().vocab_size;
    std::vector<float> logits(V);
    KvCache cache = model.make_cache();
    Sampler sampler(sp);
    StreamingDecoder sd(tok, /*skip_special_tokens=*/false);
    if (!chat && !a.ids) {
        std::fputs(prompt.c_str(), stdout);
        std::fflush(stdout);
    }
    if (gpu) gpu->decoder().reserve(int64_t(ids.size()) + max_new);  // the KV cache, allocated outside the timing
    const auto t0 = std::chrono::steady_clock::now();
    if (vl) vl->prefill(ids, images, cache, logits.data(), false);
    else if (gpu) gpu->forward(ids, logits.data(), false);
    else model.forward(ids, cache, logits.data(), false);
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<int32_t> generated;
    // AUTOROUND_HOST_SAMPLING=1: the whole logits to the host every step (the comparison for the two paths below)
    const char* host_sampling_env = std::getenv("AUTOROUND_HOST_SAMPLING");
    const bool host_sampling = host_sampling_env && host_sampling_env[0] == '1';
    // Greedy decoding on the GPU without a repetition penalty: the argmax is taken on the device and only the token
    // id comes back (the first token still comes from the prefill's logits).
    const bool device_argmax = gpu && !vl && !host_sampling && (sp.greedy || sp.temperature <= 0.f) &&
                               sp.repetition_penalty == 1.0f;
    // Random sampling with top-k on the GPU: the top-k candidates are selected on the device and only they come back
    // (Sampler::sample_candidates draws exactly what sample() would from the whole logits).
    const bool device_topk =
        gpu && !vl && !host_sampling && !device_argmax && sampler.top_k_on_candidates() && sp.top_k < V;
    if (device_topk) gpu->decoder().set_history(ids.data(), int64_t(ids.size()));
    int32_t device_next = -1;
    bool have_candidates = false;
    std::vector<int32_t> cand_idx;
    std::vector<float> cand_val;
    for (int i = 0; i < max_new; ++i) {
        const int32_t next = device_next >= 0 ? device_next
                             : have_candidates ? sampler.sample_candidates(cand_idx, cand_val)
                                               : sampler.sample(logits, ids);
        ids.push_back(next);
        generated.push_back(next);
        if (!a.ignore_eos && eos.count(next)) break;
        if (a.ids) std::printf("%d ", next);
        else std::fputs(sd.push(next).c_str(), stdout);
        std::fflush(stdout);
        if (i + 1 == max_new) break;
        const int32_t one[1] = {next};
        if (device_argmax) device_next = gpu->decoder().forward_greedy(next);
        else if (device_topk)
            have_candidates = gpu->decoder().forward_top_k(next, sp.repetition_penalty, sp.temperature, sp.top_k,
                                                           cand_idx, cand_val, logits.data());
        else if (gpu) gpu->forward(one, logits.data(), false);
        else model.forward(one, cache, logits.data(), false);
    }
    if (!a.ids) std::fputs(sd.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    const auto t2 = std::chrono::steady_clock::now();
    const double pre = std::chrono::duration<double>(t1 - t0).count();
    const double dec = std::chrono::duration<double>(t2 - t1).count();
    if (!a.no_stats)
        std::fprintf(stderr, "[prefill %zu tokens in %.3f s (%.1f tok/s) | decode %zu tokens in %.3f s (%.2f tok/s)]\n",
                     ids.size() - generated.size(), pre, double(ids.size() - generated.size()) / pre,
                     generated.size(), dec, generated.size() > 0 ? double(generated.size()) / dec : 0.0);
    return 0;
}

}  // namespace

void add_generate_command(CLI::App& root) {
    auto a = std::make_shared<GenerateArgs>();
    CLI::App* c = root.add_subcommand("generate", "Generate text from a prompt (streams tokens as they come)");
    c->add_option("--model", a->model, "Model folder (Hugging Face layout), or a GGUF file")->required();
    auto* p = c->add_option("--prompt", a->prompt, "Prompt text");
    auto* pf = c->add_option("--prompt_file", a->prompt_file, "Read the prompt from a file");
    p->excludes(pf);
    c->add_option("--tokenizer", a->tokenizer, "tokenizer.json (or its folder) when the model folder has none");
    c->add_flag("--chat", a->chat, "Wrap the prompt as a user message with the model's chat template");
    c->add_option("--image", a->images,
                  "Image file (PNG or JPEG) for a Qwen3-VL model; repeat for several. Implies --chat: the user message "
                  "is the images followed by the prompt")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_option("--min_pixels", a->min_pixels, "Smallest image area after resizing (default: preprocessor_config.json)")
        ->check(CLI::PositiveNumber);
    c->add_option("--max_pixels", a->max_pixels,
                  "Largest image area after resizing; bigger images are scaled down (default: preprocessor_config.json)")
        ->check(CLI::PositiveNumber);
    c->add_flag("--no_exif_rotate", a->no_exif_rotate,
                "Ignore the EXIF Orientation tag of photos (transformers 5.17 does not rotate images given by path)");
    c->add_option("--system", a->system, "System message (with --chat)");
    c->add_option("--max_new_tokens", a->max_new_tokens, "Tokens to generate (default: generation_config or 256)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--temperature", a->temperature, "Sampling temperature; 0 = greedy (default: generation_config)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--top_p", a->top_p, "Nucleus sampling mass (default: generation_config)");
    c->add_option("--top_k", a->top_k, "Top-k sampling, 0 = off (default: generation_config)")->check(CLI::NonNegativeNumber);
    c->add_option("--min_p", a->min_p, "Min-p sampling (default 0 = off)");
    c->add_option("--repetition_penalty", a->repetition_penalty, "Repetition penalty (default: generation_config or 1)");
    c->add_option("--seed", a->seed, "Random seed for sampling (default 0)");
    c->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
    c->add_option("--device", a->device, "cpu (default), cuda (the whole model on one GPU; text prompts), auto");
    c->add_flag("--ids", a->ids, "Print generated token ids instead of text");
    c->add_flag("--ignore_eos", a->ignore_eos, "Do not stop at end-of-sequence tokens");
    c->add_flag("--no_stats", a->no_stats, "Do not print timing statistics to stderr");
    c->callback([a] {
        check(!a->prompt.empty() || !a->prompt_file.empty(), "generate: pass --prompt TEXT or --prompt_file FILE");
        if (int rc = run_generate(*a); rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace autoround::cli
