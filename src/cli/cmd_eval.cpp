// cli/cmd_eval.cpp — `autoround eval ppl`: tokenize a whole file, score non-overlapping windows,
// print perplexity (and tokens/s); --json prints one JSON object per model.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "eval/perplexity.h"
#include "model/qwen3_model.h"
#include "text/bpe_tokenizer.h"

namespace autoround::cli {
namespace {

struct PplArgs {
    std::vector<std::string> models;
    std::string data, tokenizer;
    int64_t seqlen = 2048;
    int64_t max_tokens = 0;
    bool json = false, partial = false;
    int threads = 0;
};

int run_ppl(const PplArgs& a) {
    set_threads(a.threads);
    const std::string text = read_text_file(a.data);
    for (const std::string& m : a.models) {
        const auto dir = model_dir_arg(m);
        const Qwen3Model model = Qwen3Model::load(dir);
        const BpeTokenizer tok = BpeTokenizer::load(a.tokenizer.empty() ? dir / "tokenizer.json" : std::filesystem::path(a.tokenizer));
        std::vector<int32_t> ids = tok.encode(text);
        if (a.max_tokens > 0 && static_cast<int64_t>(ids.size()) > a.max_tokens) ids.resize(a.max_tokens);
        const PerplexityResult r = evaluate_perplexity(model, ids, a.seqlen, !a.partial, !a.json);
        const double tps = double(r.tokens) / r.seconds;
        if (a.json) {
            nlohmann::json j = {{"model", m},          {"data", a.data},        {"ppl", r.ppl},
                                {"mean_nll", r.mean_nll}, {"tokens", r.tokens},  {"predictions", r.predictions},
                                {"windows", r.windows}, {"seqlen", a.seqlen},   {"seconds", r.seconds},
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

}  // namespace

void add_eval_command(CLI::App& root) {
    CLI::App* e = root.add_subcommand("eval", "Evaluate models (perplexity)");
    e->require_subcommand(1);
    auto a = std::make_shared<PplArgs>();
    CLI::App* p = e->add_subcommand("ppl", "Perplexity of a text file over non-overlapping windows");
    p->add_option("--model", a->models, "Model folder(s); repeat to compare several")->required();
    p->add_option("--data", a->data, "Text file, scored as is (tokenized whole)")->required()->check(CLI::ExistingFile);
    p->add_option("--tokenizer", a->tokenizer, "tokenizer.json (or its folder) when the model folder has none");
    p->add_option("--seqlen", a->seqlen, "Window length in tokens (default 2048)")->check(CLI::Range(2, 1 << 20));
    p->add_option("--max_tokens", a->max_tokens, "Use only the first N tokens (default: all)")
        ->check(CLI::NonNegativeNumber);
    p->add_flag("--partial", a->partial, "Also score a final partial window");
    p->add_flag("--json", a->json, "Print one JSON object per model (ppl, tokens, seconds, ...)");
    p->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
    p->callback([a] { run_ppl(*a); });
}

}  // namespace autoround::cli
