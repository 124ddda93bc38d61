// eval/hellaswag.cpp — see hellaswag.h.
#include "eval/hellaswag.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/progress_bar.h"
#include "eval/perplexity.h"
#include "eval/token_windows.h"
#include "model/qwen3_model.h"
#include "text/bpe_tokenizer.h"
#include "text/utf8.h"

namespace autoround {
namespace {

constexpr std::string_view kWhitespace = " \t\n\v\f\r";  // Python's str.rstrip() set, ASCII part

std::string_view trim(std::string_view s) {
    const size_t b = s.find_first_not_of(kWhitespace);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(kWhitespace) - b + 1);
}

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
}

int64_t utf8_chars(std::string_view s) {
    int64_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// First index of the maximum (numpy argmax).
int argmax4(const std::array<double, 4>& v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

double percent_stderr(int64_t correct, int64_t n) {
    if (n < 2) return 0;
    const double p = double(correct) / double(n);
    return 100.0 * std::sqrt(p * (1 - p) / double(n - 1));
}

}  // namespace

std::vector<HellaswagTask> parse_hellaswag(std::string_view text, const std::string& label) {
    if (const size_t bad = utf8::find_invalid(text); bad != std::string_view::npos) {
        const size_t nl = bad == 0 ? std::string_view::npos : text.rfind('\n', bad - 1);
        const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
        const int64_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
        fail(label, ": line ", line, " is not valid UTF-8 (byte ", bad - line_start + 1,
             " of the line); the HellaSwag file must be UTF-8 text");
    }
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view l = text.substr(pos, end - pos);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        lines.push_back(l);
        pos = end + 1;
    }
    while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
    check(!lines.empty(), label, ": no HellaSwag tasks in the file (expected tasks of 6 lines: context, gold index 0-3, ",
          "4 endings)");
    const size_t n_tasks = (lines.size() + 5) / 6;
    if (lines.size() % 6 != 0)
        fail(label, ": truncated last task: the task starting at line ", (n_tasks - 1) * 6 + 1, " has only ", lines.size() % 6,
             " of its 6 lines (context, gold index 0-3, 4 endings)");
    std::vector<HellaswagTask> tasks(n_tasks);
    for (size_t t = 0; t < n_tasks; ++t) {
        const size_t l0 = t * 6;
        HellaswagTask& task = tasks[t];
        task.line = static_cast<int64_t>(l0 + 1);
        task.context = std::string(lines[l0]);
        check(!trim(lines[l0]).empty(), label, ": line ", l0 + 1, ": empty context (task ", t + 1, ")");
        const std::string_view gold = trim(lines[l0 + 1]);
        check(gold.size() == 1 && gold[0] >= '0' && gold[0] <= '3', label, ": line ", l0 + 2,
              ": the gold ending index must be 0, 1, 2 or 3 (got \"", lines[l0 + 1].substr(0, 40), "\"; task ", t + 1,
              " starts at line ", l0 + 1, ")");
        task.gold = gold[0] - '0';
        for (size_t j = 0; j < 4; ++j) task.endings[j] = std::string(lines[l0 + 2 + j]);
    }
    return tasks;
}

HellaswagTaskScore score_hellaswag_task(const Qwen3Model& model, const BpeTokenizer& tok, const HellaswagTask& task) {
    // lm-evaluation-harness moves trailing whitespace of the context into the continuation.
    const size_t ctx_end = task.context.find_last_not_of(kWhitespace) + 1;  // context is not blank (parser)
    const std::string ctx = task.context.substr(0, ctx_end), moved = task.context.substr(ctx_end);
    const std::vector<int32_t> ctx_ids = tok.encode(ctx);  // [P], encoded once for all four endings
    std::array<std::vector<int32_t>, 4> whole;              // [L_j] tokens of context + " " + ending_j
    std::array<size_t, 4> first_scored{}, first_llama{};
    for (int j = 0; j < 4; ++j) {
        whole[j] = tok.encode(ctx + moved + " " + task.endings[j]);
        first_scored[j] = common_prefix(ctx_ids, whole[j]);
        check(whole[j].size() > first_scored[j], "hellaswag: task at line ", task.line, ": ending ", j,
              " adds no tokens to the context");
    }
    size_t shared = whole[0].size();  // prefix common to all four sequences
    for (int j = 1; j < 4; ++j) shared = std::min(shared, common_prefix(whole[0], whole[j]));
    size_t start = SIZE_MAX;  // first token scored by any rule; tokens [0, start) are the same in all four
    for (int j = 0; j < 4; ++j) {
        first_llama[j] = std::min(shared, whole[j].size() - 1);
        start = std::min({start, first_scored[j], first_llama[j]});
    }
    check(start >= 1, "hellaswag: task at line ", task.line,
          ": the context's first token changes when an ending is appended; cannot score it");

    const int64_t H = model.config().hidden_size, V = model.config().vocab_size;
    // The shared prefix runs once; its last hidden state predicts the first token after it.
    KvCache prefix = model.make_cache();
    std::vector<float> last(H);  // [H]
    model.forward(std::span<const int32_t>(whole[0]).first(start), prefix, nullptr, false,
                  [&](const std::string& name, int, const float* d, int64_t T, int64_t) {
                      if (name == "final_norm") std::copy(d + (T - 1) * H, d + T * H, last.begin());
                  });
    HellaswagTaskScore s;
    std::vector<float> hidden;                  // [L_j − start, H]: positions start−1 .. L_j−2
    std::vector<float> logits(kLogitRows * V);  // [kLogitRows, V]
    std::vector<double> logprob;                // [L_j − start]: log p(token t), t = start .. L_j−1
    for (int j = 0; j < 4; ++j) {
        const std::span<const int32_t> seq(whole[j]);
        const int64_t L = static_cast<int64_t>(seq.size()), rows = L - static_cast<int64_t>(start);
        hidden.resize(rows * H);
        std::copy(last.begin(), last.end(), hidden.begin());
        if (rows > 1) {
            KvCache cache = prefix;
            model.forward(seq.subspan(start, rows - 1), cache, nullptr, false,
                          [&](const std::string& name, int, const float* d, int64_t T, int64_t) {
                              if (name == "final_norm") std::copy(d, d + T * H, hidden.begin() + H);
                          });
        }
        logprob.assign(rows, 0.0);
        for (int64_t r0 = 0; r0 < rows; r0 += kLogitRows) {
            const int64_t nr = std::min(kLogitRows, rows - r0);
            model.lm_head(hidden.data() + r0 * H, nr, logits.data());
            for (int64_t i = 0; i < nr; ++i)
                logprob[r0 + i] = -token_nll(std::span<const float>(logits.data() + i * V, V), seq[start + r0 + i]);
        }
        double ll = 0, llama = 0;
        for (int64_t t = start; t < L; ++t) {
            if (t >= static_cast<int64_t>(first_scored[j])) ll += logprob[t - start];
            if (t >= static_cast<int64_t>(first_llama[j])) llama += logprob[t - start];
        }
        s.loglikelihood[j] = ll;
        s.tokens[j] = L - static_cast<int64_t>(first_scored[j]);
        s.llamacpp_mean[j] = llama / double(L - static_cast<int64_t>(first_llama[j]));
    }
    std::array<double, 4> normed;
    for (int j = 0; j < 4; ++j)
        normed[j] = s.loglikelihood[j] / double(std::max<int64_t>(1, utf8_chars(task.endings[j])));
    s.pred = argmax4(s.loglikelihood);
    s.pred_norm = argmax4(normed);
    s.pred_llamacpp = argmax4(s.llamacpp_mean);
    return s;
}

HellaswagResult evaluate_hellaswag(const Qwen3Model& model, const BpeTokenizer& tok,
                                   std::span<const HellaswagTask> tasks, bool show_progress) {
    check(!tasks.empty(), "hellaswag: no tasks to score");
    HellaswagResult r;
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar("hellaswag", static_cast<int64_t>(tasks.size()), "task");
    int64_t acc = 0, acc_norm = 0, acc_llama = 0;
    for (const HellaswagTask& task : tasks) {
        const HellaswagTaskScore s = score_hellaswag_task(model, tok, task);
        acc += s.pred == task.gold;
        acc_norm += s.pred_norm == task.gold;
        acc_llama += s.pred_llamacpp == task.gold;
        r.scores.push_back(s);
        const int64_t n = static_cast<int64_t>(r.scores.size());
        if (show_progress)
            bar.update(n, "acc " + std::to_string(100.0 * acc / n).substr(0, 5) + "% acc_norm " +
                              std::to_string(100.0 * acc_norm / n).substr(0, 5) + "%");
    }
    if (show_progress) bar.finish();
    const int64_t n = static_cast<int64_t>(tasks.size());
    r.tasks = n;
    r.acc = 100.0 * acc / n;
    r.acc_stderr = percent_stderr(acc, n);
    r.acc_norm = 100.0 * acc_norm / n;
    r.acc_norm_stderr = percent_stderr(acc_norm, n);
    r.acc_llamacpp = 100.0 * acc_llama / n;
    r.acc_llamacpp_stderr = percent_stderr(acc_llama, n);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace autoround
