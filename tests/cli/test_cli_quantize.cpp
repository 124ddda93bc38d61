// tests/cli/test_cli_quantize.cpp — `autoround quantize` end to end on qwen3-nano with a tiny schedule:
// folders and report as specified, every export reloads with identical logits (eval ppl gives the same
// number for all formats), a run killed with SIGKILL mid-way and restarted with the same command resumes
// and ends bit-identical to an uninterrupted run, and bad requests are refused before any work.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

using cli_test::kBin;
using cli_test::Result;
using cli_test::run;
const fs::path kShared = fs::path(AR_SHARED_DIR);
const std::string kNano = (kShared / "models/qwen3-nano").string();
const std::string kC4 = (kShared / "data/text/c4-sample.jsonl").string();


std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

struct TempDir {
    fs::path dir;
    explicit TempDir(const std::string& name) {
        dir = fs::temp_directory_path() / ("ar_cliq_" + name + "_" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~TempDir() { fs::remove_all(dir); }
};

// A small but real SignRound run: 6 blocks × 4 iterations on 8 samples of 64 tokens.
std::string tiny_args(const fs::path& out) {
    return "quantize --model " + kNano + " --output_dir " + out.string() + " --iters 4 --nsamples 8 --seqlen 64 " +
           "--batch_size 4 --dataset " + kC4 + ":shuffle=false --threads 1 --quiet";
}

std::vector<std::string> weight_files(const fs::path& root) {
    std::vector<std::string> v;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file() && e.path().filename() != "quantize_report.json" && e.path().filename() != "README.md")
            v.push_back(fs::relative(e.path(), root).string());
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST(Cli, QuantizeWritesEveryFormatAndTheyReloadIdentically) {
    TempDir t("e2e");
    const Result r = run(tiny_args(t.dir) + " --format auto_round,auto_gptq,auto_awq,fake");
    ASSERT_EQ(r.status, 0) << r.out;
    const fs::path m = t.dir / "qwen3-nano-w4g128";
    for (const char* sub : {"auto-round-auto-gptq", "auto-gptq", "auto-awq", "fake"}) {
        EXPECT_TRUE(fs::exists(m / sub / "config.json")) << sub;
        EXPECT_TRUE(fs::exists(m / sub / "tokenizer.json")) << sub;
        const auto rep = nlohmann::json::parse(slurp(m / sub / "quantize_report.json"));
        EXPECT_EQ(rep["method"], "signround");
        EXPECT_EQ(rep["blocks"].size(), 6u);
        EXPECT_EQ(rep["folders"].size(), 4u);
        EXPECT_EQ(rep["blocks"][0]["losses"].size(), 4u);
    }
    EXPECT_FALSE(fs::exists(fs::path(m.string() + ".resume"))) << "the resume checkpoint must be removed";
    EXPECT_NE(r.out.find("model.layers.5"), std::string::npos) << "summary table";
    // identical logits after reload -> identical perplexity in every format (the fake export holds the
    // dequantized weights in bf16, which are exactly the QDQ values)
    std::string models;
    for (const char* sub : {"auto-round-auto-gptq", "auto-gptq", "auto-awq", "fake"})
        models += " --model " + (m / sub).string();
    const Result e = run("eval ppl" + models + " --data " + (kShared / "data/text/wikitext-2-raw/wiki.test.raw").string() +
                         " --seqlen 128 --max_tokens 512 --json --threads 1");
    ASSERT_EQ(e.status, 0) << e.out;
    std::vector<double> ppl;
    std::istringstream lines(e.out);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty() && line[0] == '{') ppl.push_back(nlohmann::json::parse(line)["ppl"].get<double>());
    ASSERT_EQ(ppl.size(), 4u) << e.out;
    for (double p : ppl) EXPECT_EQ(p, ppl[0]);
}

TEST(Cli, QuantizeResumesAfterKill9BitIdentical) {
    TempDir t("resume");
    const fs::path a = t.dir / "a", b = t.dir / "b";
    const std::string fmt = " --format auto_gptq,auto_awq";
    ASSERT_EQ(run(tiny_args(a) + fmt).status, 0);

    // the same command, killed with SIGKILL once two blocks are checkpointed
    const fs::path ck = b / "qwen3-nano-w4g128.resume";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        const std::string cmd = "exec " + kBin + " " + tiny_args(b) + fmt + " >/dev/null 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    bool killed = false;
    for (int i = 0; i < 6000 && !killed; ++i) {  // up to 10 minutes
        if (fs::exists(ck / "block-0001.json")) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) FAIL() << "the run ended before it could be killed";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(killed);
    ASSERT_FALSE(fs::exists(b / "qwen3-nano-w4g128")) << "no output folder may appear before the run ends";

    const Result r = run(tiny_args(b) + fmt);
    ASSERT_EQ(r.status, 0) << r.out;
    const auto rep = nlohmann::json::parse(slurp(b / "qwen3-nano-w4g128/auto-gptq/quantize_report.json"));
    EXPECT_TRUE(rep["blocks"][0]["resumed"].get<bool>());
    EXPECT_FALSE(rep["blocks"][5]["resumed"].get<bool>());
    const auto fa = weight_files(a), fb = weight_files(b);
    ASSERT_EQ(fa, fb);
    for (const auto& f : fa) EXPECT_EQ(slurp(a / f), slurp(b / f)) << f << " differs after resume";
    EXPECT_FALSE(fs::exists(ck));
}

TEST(Cli, QuantizeRefusesAnotherCommandsCheckpoint) {
    TempDir t("ckmismatch");
    const fs::path ck = t.dir / "qwen3-nano-w4g128.resume";
    fs::create_directories(ck);
    std::ofstream(ck / "fingerprint.json") << R"({"version": 1, "fingerprint": "0123456789abcdef"})";
    std::ofstream(ck / "block-0000.json") << "{}";
    const Result r = run(tiny_args(t.dir) + " --format auto_gptq");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("different quantize command"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(ck / "block-0000.json")) << "never deleted without --overwrite";
}

TEST(Cli, QuantizeRefusesBadRequestsBeforeWork) {
    TempDir t("bad");
    // 3-bit AWQ cannot be stored: refused before calibration, naming formats that can
    Result r = run(tiny_args(t.dir) + " --bits 3 --format auto_awq");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("auto_gptq"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(t.dir / "qwen3-nano-w3g128"));
    // a non-empty output folder is refused unless --overwrite
    fs::create_directories(t.dir / "qwen3-nano-w4g128");
    std::ofstream(t.dir / "qwen3-nano-w4g128" / "keep.txt") << "x";
    r = run(tiny_args(t.dir) + " --format auto_gptq --iters 0 --disable_opt_rtn");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("--overwrite"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(t.dir / "qwen3-nano-w4g128" / "keep.txt"));
    // --nblocks 0 names the flag
    r = run(tiny_args(t.dir) + " --format auto_gptq --nblocks 0");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("--nblocks"), std::string::npos) << r.out;
    // --enable_torch_compile and --disable_torch_compile contradict each other
    r = run(tiny_args(t.dir) + " --format auto_gptq --enable_torch_compile --disable_torch_compile");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("--disable_torch_compile"), std::string::npos) << r.out;
    // an empty dataset is a clear error
    std::ofstream(t.dir / "empty.jsonl") << "";
    r = run("quantize --model " + kNano + " --output_dir " + (t.dir / "o2").string() + " --iters 2 --nsamples 4 " +
            "--seqlen 32 --dataset " + (t.dir / "empty.jsonl").string() + " --quiet");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("empty.jsonl"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(t.dir / "o2"));
    // the default dataset comes from the Hub: offline and not cached, the error names it
    setenv("HF_HUB_OFFLINE", "1", 1);
    r = run("quantize --model " + kNano + " --output_dir " + (t.dir / "o3").string() + " --iters 2 --quiet");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("pile-10k"), std::string::npos) << r.out;
    unsetenv("HF_HUB_OFFLINE");
}

// --nblocks above the model's 6 blocks: clamped with a note, all blocks tuned as one group, recorded (and
// --enable_torch_compile noted as a GPU-only option).
TEST(Cli, QuantizeNblocksIsClampedAndRecorded) {
    TempDir t("nblocks");
    const Result r = run("quantize --model " + kNano + " --output_dir " + t.dir.string() +
                         " --iters 2 --nsamples 4 --seqlen 32 --batch_size 4 --dataset " + kC4 +
                         ":shuffle=false --threads 1 --nblocks 99 --format fake --enable_torch_compile");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("--nblocks 99 is clamped to the model's 6 decoder blocks"), std::string::npos) << r.out;
    // on the CPU --enable_torch_compile is accepted with a note (CUDA graphs are a --device cuda feature)
    EXPECT_NE(r.out.find("--enable_torch_compile has no effect on CPU"), std::string::npos) << r.out;
    const auto rep = nlohmann::json::parse(slurp(t.dir / "qwen3-nano-w4g128" / "quantize_report.json"));
    EXPECT_EQ(rep["settings"]["nblocks"], 6);
    EXPECT_EQ(rep["settings"]["cuda_graphs"], false);
    ASSERT_EQ(rep["blocks"].size(), 6u);
    for (const auto& b : rep["blocks"]) {
        EXPECT_EQ(b["method"], "signround");
        EXPECT_EQ(b["losses"], rep["blocks"][0]["losses"]) << "one group: one loss curve";
    }
}
