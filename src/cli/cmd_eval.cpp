// cli/cmd_eval.cpp — `autoround eval`: model evaluations, one JSON object per result with --json.
//   ppl        tokenize a whole file, score non-overlapping windows, print perplexity (and tokens/s)
//   kld        KL divergence of a quantized model from its base over the same windows as ppl, reported
//              like llama.cpp's `perplexity --kl-divergence` (eval/kl_divergence.h)
//   hellaswag  0-shot HellaSwag accuracy from llama.cpp's text format, plain or .bz2 (eval/hellaswag.h)
// Every model flag (--model, and kld's --base) takes a local folder or a Hugging Face id org/name[@rev],
// resolved through cli/model_source.h like the other subcommands.
// Errors in the flags' values (a missing --base, a data file that cannot be read, a bad --limit) are
// autoround errors, so they exit with status 1 and name the flag.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/model_source.h"
#include "core/error.h"
#include "eval/hellaswag.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "io/compressed_file.h"
#include "model/qwen3_cuda_model.h"
#include "model/qwen3_model.h"
#include "text/bpe_tokenizer.h"

namespace autoround::cli {
namespace {

struct PplArgs {
    std::vector<std::string> models;
    std::string data, tokenizer, device = "cpu";
    int64_t seqlen = 2048;
    int64_t max_tokens = 0;
    bool json = false, partial = false;
    int threads = 0;
};

int run_ppl(const PplArgs& a) {
    set_threads(a.threads);
    const std::string device = resolve_device(a.device);
    const std::string text = read_text_file(a.data);
    for (const std::string& m : a.models) {
        const ModelSource src = model_source_arg(m);  // HF folder, or a GGUF file / folder
        const BpeTokenizer tok = src.tokenizer(a.tokenizer);
        std::vector<int32_t> ids = tok.encode(text);
        if (a.max_tokens > 0 && static_cast<int64_t>(ids.size()) > a.max_tokens) ids.resize(a.max_tokens);
        PerplexityResult r;
        const std::string dev = device_for_model(device, a.device, src);
        if (dev == "cuda") {
            CudaDecoderOptions opt;
            opt.prefill_chunk = std::max<int64_t>(a.seqlen, 1);
            const std::unique_ptr<Qwen3CudaModel> gpu = Qwen3CudaModel::load(src.path, opt, !a.json);
            if (!a.json) std::fprintf(stderr, "[cuda] %s\n", gpu->summary().c_str());
            CudaDecoder& dec = gpu->decoder();
            r = evaluate_perplexity(
                [&](std::span<const int32_t> w) { return dec.window_nll(w.data(), int64_t(w.size())); }, ids, a.seqlen,
                !a.partial, !a.json);
        } else {
            const Qwen3Model model = Qwen3Model::load(src.path);
            r = evaluate_perplexity(model, ids, a.seqlen, !a.partial, !a.json);
        }
        const double tps = double(r.tokens) / r.seconds;
        if (a.json) {
            nlohmann::json j = {{"model", m},          {"data", a.data},        {"ppl", r.ppl},
                                {"mean_nll", r.mean_nll}, {"tokens", r.tokens},  {"predictions", r.predictions},
                                {"windows", r.windows}, {"seqlen", a.seqlen},   {"seconds", r.seconds},
                                {"device", dev},
                                {"tokens_per_second", tps}};
            std::printf("%s\n", j.dump().c_str());
        } else {
            std::printf("%s: ppl %.4f over %lld windows of %lld (%lld tokens) in %.2f s, %.1f tokens/s\n", m.c_str(),
                        r.ppl, (long long)r.windows, (long long)a.seqlen, (long long)r.tokens, r.seconds, tps);
        }
        std::fflush(stdout);
    }
    return 0;
}

std::filesystem::path tokenizer_path(const std::string& flag, const std::filesystem::path& model_dir) {
    return flag.empty() ? model_dir / "tokenizer.json" : std::filesystem::path(flag);
}

struct KldArgs {
    std::string model, base, data, tokenizer;
    int64_t seqlen = 2048;
    int64_t max_tokens = 0;
    bool json = false;
    int threads = 0;
};

int run_kld(const KldArgs& a) {
    check(!a.base.empty(),
          "eval kld: --base is required: the unquantized model (folder or Hub id) that --model is compared against");
    check(a.seqlen >= 2, "eval kld: --seqlen must be at least 2 (got ", a.seqlen, ")");
    check(a.max_tokens >= 0, "eval kld: --max_tokens must be 0 (all) or positive (got ", a.max_tokens, ")");
    check(a.threads >= 0, "eval kld: --threads must be 0 (all cores) or positive (got ", a.threads, ")");
    set_threads(a.threads);
    check(std::filesystem::is_regular_file(a.data), "--data ", a.data, ": no such file; pass a text file to score");
    const std::string text = read_text_file(a.data);
    // both: a local folder or a Hub id (cli/model_source.h); --model may also be a GGUF file / folder
    const std::filesystem::path base_dir = model_dir_flag(a.base, "--base");
    const std::filesystem::path model_dir = model_source_arg(a.model).path;
    const Qwen3Model base = Qwen3Model::load(base_dir);
    const Qwen3Model model = Qwen3Model::load(model_dir);
    const BpeTokenizer tok = BpeTokenizer::load(tokenizer_path(a.tokenizer, base_dir));
    std::vector<int32_t> ids = tok.encode(text);
    if (a.max_tokens > 0 && static_cast<int64_t>(ids.size()) > a.max_tokens) ids.resize(a.max_tokens);
    const KlDivergenceResult r = evaluate_kl_divergence(base, model, ids, a.seqlen, true, !a.json);
    const KlSummary& s = r.summary;
    if (a.json) {
        const nlohmann::json j = {
            {"model", a.model},           {"base", a.base},
            {"data", a.data},             {"kld_mean", s.kld_mean},
            {"kld_stderr", s.kld_stderr}, {"kld_median", s.kld_median},
            {"kld_p99", s.kld_p99},       {"kld_max", s.kld_max},
            {"top1_agreement", s.top1_agreement}, {"top1_agreement_stderr", s.top1_stderr},
            {"ppl_base", s.ppl_base},     {"ppl_model", s.ppl_model},
            {"ln_ppl_ratio", s.ln_ppl_ratio}, {"ln_ppl_ratio_stderr", s.ln_ppl_ratio_stderr},
            {"tokens", r.tokens},         {"predictions", s.count},
            {"windows", r.windows},       {"seqlen", a.seqlen},
            {"seconds", r.seconds}};
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("%s vs base %s: %lld windows of %lld (%lld tokens, %lld scored) in %.2f s\n", a.model.c_str(),
                    a.base.c_str(), (long long)r.windows, (long long)a.seqlen, (long long)r.tokens, (long long)s.count,
                    r.seconds);
        std::printf("Mean    KLD: %10.6f ± %10.6f\n", s.kld_mean, s.kld_stderr);
        std::printf("Median  KLD: %10.6f\n", s.kld_median);
        std::printf("99.0%%   KLD: %10.6f\n", s.kld_p99);
        std::printf("Maximum KLD: %10.6f\n", s.kld_max);
        std::printf("Same top p : %6.3f ± %5.3f %%\n", s.top1_agreement, s.top1_stderr);
        std::printf("PPL(base)  : %10.6f\n", s.ppl_base);
        std::printf("PPL(Q)     : %10.6f\n", s.ppl_model);
        std::printf("ln(PPL(Q)/PPL(base)): %10.6f ± %10.6f\n", s.ln_ppl_ratio, s.ln_ppl_ratio_stderr);
    }
    std::fflush(stdout);
    return 0;
}

struct HellaswagArgs {
    std::string model, data, tokenizer;
    int64_t limit = 0;
    bool json = false;
    int threads = 0;
};

int run_hellaswag(const HellaswagArgs& a) {
    check(a.limit >= 0, "eval hellaswag: --limit must be 0 (all tasks) or positive (got ", a.limit, ")");
    check(a.threads >= 0, "eval hellaswag: --threads must be 0 (all cores) or positive (got ", a.threads, ")");
    set_threads(a.threads);
    check(std::filesystem::is_regular_file(a.data), "--data ", a.data,
          ": no such file; pass a HellaSwag file in llama.cpp's format (e.g. hellaswag_val_full.txt.bz2)");
    std::vector<HellaswagTask> tasks = parse_hellaswag(read_file_maybe_compressed(a.data), a.data);
    if (a.limit > 0 && static_cast<int64_t>(tasks.size()) > a.limit) tasks.resize(a.limit);
    const ModelSource src = model_source_arg(a.model);
    const Qwen3Model model = Qwen3Model::load(src.path);
    const BpeTokenizer tok = src.tokenizer(a.tokenizer);
    const HellaswagResult r = evaluate_hellaswag(model, tok, tasks, !a.json);
    if (a.json) {
        const nlohmann::json j = {{"model", a.model},
                                  {"data", a.data},
                                  {"tasks", r.tasks},
                                  {"acc", r.acc},
                                  {"acc_stderr", r.acc_stderr},
                                  {"acc_norm", r.acc_norm},
                                  {"acc_norm_stderr", r.acc_norm_stderr},
                                  {"acc_llamacpp", r.acc_llamacpp},
                                  {"acc_llamacpp_stderr", r.acc_llamacpp_stderr},
                                  {"seconds", r.seconds}};
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("%s: hellaswag, %lld tasks in %.2f s (%.2f tasks/s)\n", a.model.c_str(), (long long)r.tasks,
                    r.seconds, double(r.tasks) / r.seconds);
        std::printf("acc          : %7.3f ± %6.3f %%\n", r.acc, r.acc_stderr);
        std::printf("acc_norm     : %7.3f ± %6.3f %%\n", r.acc_norm, r.acc_norm_stderr);
        std::printf("acc_llamacpp : %7.3f ± %6.3f %%\n", r.acc_llamacpp, r.acc_llamacpp_stderr);
    }
    std::fflush(stdout);
    return 0;
}

}  // namespace

void add_eval_command(CLI::App& root) {
    CLI::App* e = root.add_subcommand("eval", "Evaluate models (perplexity, KL divergence, HellaSwag)");
    e->require_subcommand(1);
    auto a = std::make_shared<PplArgs>();
    CLI::App* p = e->add_subcommand("ppl", "Perplexity of a text file over non-overlapping windows");
    p->add_option("--model", a->models, "Model folder(s), GGUF file(s) or Hub id(s) org/name[@rev]; repeat to compare")
        ->required();
    p->add_option("--data", a->data, "Text file, scored as is (tokenized whole)")->required()->check(CLI::ExistingFile);
    p->add_option("--tokenizer", a->tokenizer, "tokenizer.json (or its folder) when the model folder has none");
    p->add_option("--seqlen", a->seqlen, "Window length in tokens (default 2048)")->check(CLI::Range(2, 1 << 20));
    p->add_option("--max_tokens", a->max_tokens, "Use only the first N tokens (default: all)")
        ->check(CLI::NonNegativeNumber);
    p->add_flag("--partial", a->partial, "Also score a final partial window");
    p->add_flag("--json", a->json, "Print one JSON object per model (ppl, tokens, seconds, ...)");
    p->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
    p->add_option("--device", a->device, "cpu (default), cuda (the whole model on one GPU), auto");
    p->callback([a] { run_ppl(*a); });

    auto k = std::make_shared<KldArgs>();
    CLI::App* kc = e->add_subcommand("kld", "KL divergence of a quantized model from its base (llama.cpp style)");
    kc->add_option("--model", k->model, "Quantized (or any other) model folder, GGUF file or Hub id")->required();
    kc->add_option("--base", k->base, "Base model folder or Hub id: the reference distribution p (required)");
    kc->add_option("--data", k->data, "Text file, tokenized whole with the base's tokenizer")->required();
    kc->add_option("--tokenizer", k->tokenizer, "tokenizer.json (or its folder) when the base folder has none");
    kc->add_option("--seqlen", k->seqlen, "Window length in tokens (default 2048)");
    kc->add_option("--max_tokens", k->max_tokens, "Use only the first N tokens (default: all)");
    kc->add_flag("--json", k->json, "Print one JSON object (kld_mean, kld_stderr, ..., top1_agreement, ...)");
    kc->add_option("--threads", k->threads, "CPU threads (default: all cores)");
    kc->callback([k] { run_kld(*k); });

    auto h = std::make_shared<HellaswagArgs>();
    CLI::App* hc = e->add_subcommand("hellaswag", "0-shot HellaSwag accuracy (llama.cpp text format, plain or .bz2)");
    hc->add_option("--model", h->model, "Model folder, GGUF file or Hub id org/name[@rev]")->required();
    hc->add_option("--data", h->data, "Tasks of 6 lines (context, gold 0-3, 4 endings), e.g. hellaswag_val_full.txt.bz2")
        ->required();
    hc->add_option("--tokenizer", h->tokenizer, "tokenizer.json (or its folder) when the model folder has none");
    hc->add_option("--limit", h->limit, "Score only the first N tasks (default: all)");
    hc->add_flag("--json", h->json, "Print one JSON object (acc, acc_norm, acc_llamacpp, std errors, tasks, seconds)");
    hc->add_option("--threads", h->threads, "CPU threads (default: all cores)");
    hc->callback([h] { run_hellaswag(*h); });
}

}  // namespace autoround::cli
