// eval/hellaswag.h — HellaSwag in llama.cpp's text format, scored like lm-evaluation-harness.
//
// Format (`llama-perplexity --hellaswag`, e.g. hellaswag_val_full.txt): tasks of 6 lines — the
// context (already "activity_label: ctx"), the index 0..3 of the gold ending, then the four endings.
// LF or CRLF; the last newline and blank lines at the very end are optional. The text must be UTF-8.
// A malformed file (bad gold index, a task cut short, an empty context, invalid UTF-8) is an error
// naming the line.
//
// Scoring, per task (0-shot, as lm-evaluation-harness's `hellaswag`): the continuation of ending j is
// " " + ending (trailing whitespace of the context moves into the continuation, as the harness does).
// Its log-likelihood ll_j is the sum of log p(token | all tokens before it) over the tokens of
// tokenize(context + " " + ending) after their longest common prefix with tokenize(context).
//   acc          argmax_j ll_j
//   acc_norm     argmax_j ll_j / len(ending_j) — the harness divides by Python's len() of the choice
//                string: Unicode characters of the ending, without the leading space
//   acc_llamacpp llama.cpp's: argmax_j of the mean log-prob per token over the tokens after the prefix
//                common to all four token sequences (at least the last token of each)
// Ties go to the lowest index (numpy argmax). Standard errors are sample std / sqrt(n) of the 0/1
// outcomes, i.e. sqrt(p(1−p)/(n−1)), in percent.
//
// The four endings share the context: its tokens are encoded once and its forward pass (the token
// prefix shared by all four sequences) runs once; each ending continues from a copy of that KV cache.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

class BpeTokenizer;
class Qwen3Model;

struct HellaswagTask {
    std::string context;
    int gold = 0;                       // 0..3
    std::array<std::string, 4> endings;
    int64_t line = 0;                   // 1-based line of the context in the file
};

// Parses the whole text; `label` (the file name) prefixes the errors.
std::vector<HellaswagTask> parse_hellaswag(std::string_view text, const std::string& label);

struct HellaswagTaskScore {
    std::array<double, 4> loglikelihood{};  // ll_j: summed log-probs of the ending's tokens
    std::array<int64_t, 4> tokens{};        // tokens in ll_j
    std::array<double, 4> llamacpp_mean{};  // llama.cpp's mean log-prob per token
    int pred = 0, pred_norm = 0, pred_llamacpp = 0;
};

HellaswagTaskScore score_hellaswag_task(const Qwen3Model& model, const BpeTokenizer& tok, const HellaswagTask& task);

struct HellaswagResult {
    int64_t tasks = 0;
    double acc = 0, acc_stderr = 0;            // percent
    double acc_norm = 0, acc_norm_stderr = 0;
    double acc_llamacpp = 0, acc_llamacpp_stderr = 0;
    double seconds = 0;
    std::vector<HellaswagTaskScore> scores;    // one per task, in order
};

HellaswagResult evaluate_hellaswag(const Qwen3Model& model, const BpeTokenizer& tok,
                                   std::span<const HellaswagTask> tasks, bool show_progress = true);

}  // namespace autoround
