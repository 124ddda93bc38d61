// tests/cli/test_cli_eval.cpp — `autoround eval kld` and `eval hellaswag` end to end: --json output
// on qwen3-nano (a model against itself: KLD 0, 100 % agreement; five real HellaSwag tasks from the
// .bz2), and bad input — unknown flags, a missing --base, data files that do not exist or are
// malformed, bad --limit/--seqlen values — gives a clear message and a non-zero status (1 for
// everything autoround itself checks), never a crash.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

using cli_test::kBin;
using cli_test::Result;
using cli_test::run;
const std::string kNano = (fs::path(AR_SHARED_DIR) / "models/qwen3-nano").string();
const std::string kWiki = (fs::path(AR_SHARED_DIR) / "data/text/wikitext-2-raw/wiki.test.raw").string();
const std::string kHs = (fs::path(AR_SHARED_DIR) / "data/eval/hellaswag_val_full.txt.bz2").string();


bool has(const Result& r, const std::string& s) { return r.out.find(s) != std::string::npos; }

}  // namespace

TEST(CliEval, Help) {
    for (const char* sub : {"eval kld", "eval hellaswag"}) {
        const Result r = run(std::string(sub) + " --help");
        EXPECT_EQ(r.status, 0) << sub;
        EXPECT_TRUE(has(r, "--model") && has(r, "--data") && has(r, "--json")) << r.out;
    }
    EXPECT_TRUE(has(run("eval kld --help"), "--base"));
    EXPECT_TRUE(has(run("eval hellaswag --help"), "--limit"));
}

TEST(CliEval, KldOfAModelAgainstItselfJson) {
    const Result r = run("eval kld --model " + kNano + " --base " + kNano + " --data " + kWiki +
                         " --seqlen 64 --max_tokens 192 --json --threads 1");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"kld_mean", "kld_stderr", "kld_median", "kld_p99", "kld_max", "top1_agreement", "ppl_base",
                            "ppl_model", "ln_ppl_ratio", "tokens", "seconds"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j.at("kld_mean").get<double>(), 0.0);
    EXPECT_EQ(j.at("kld_max").get<double>(), 0.0);
    EXPECT_EQ(j.at("top1_agreement").get<double>(), 100.0);
    EXPECT_EQ(j.at("ln_ppl_ratio").get<double>(), 0.0);
    EXPECT_GT(j.at("ppl_base").get<double>(), 1.0);
    EXPECT_EQ(j.at("tokens").get<int>(), 192);
    EXPECT_EQ(j.at("predictions").get<int>(), 189);
}

TEST(CliEval, KldTextReport) {
    const Result r = run("eval kld --model " + kNano + " --base " + kNano + " --data " + kWiki +
                         " --seqlen 32 --max_tokens 64 --threads 1");
    ASSERT_EQ(r.status, 0) << r.out;
    for (const char* line : {"Mean    KLD:", "Median  KLD:", "99.0%   KLD:", "Maximum KLD:", "Same top p : 100.000",
                             "PPL(base)", "PPL(Q)", "ln(PPL(Q)/PPL(base))"})
        EXPECT_TRUE(has(r, line)) << line << "\n" << r.out;
}

TEST(CliEval, HellaswagJsonOnTheRealBz2) {
    const Result r = run("eval hellaswag --model " + kNano + " --data " + kHs + " --limit 5 --json --threads 1");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("tasks").get<int>(), 5);
    for (const char* key : {"acc", "acc_norm", "acc_llamacpp"}) {
        EXPECT_GE(j.at(key).get<double>(), 0.0) << key;
        EXPECT_LE(j.at(key).get<double>(), 100.0) << key;
        EXPECT_TRUE(j.contains(std::string(key) + "_stderr")) << key;
    }
    EXPECT_GT(j.at("seconds").get<double>(), 0.0);
}

TEST(CliEval, BadInputGivesClearErrors) {
    const std::string kld = "eval kld --model " + kNano + " --data " + kWiki;
    Result r = run(kld + " --base " + kNano + " --frobnicate 3");
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(has(r, "frobnicate")) << r.out;

    r = run(kld);  // no --base
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "--base is required")) << r.out;

    r = run(kld + " --base /nonexistent/base-model");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "--base /nonexistent/base-model")) << r.out;

    r = run("eval kld --model " + kNano + " --base " + kNano + " --data /nonexistent/wiki.raw");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "--data /nonexistent/wiki.raw")) << r.out;

    r = run(kld + " --base " + kNano + " --seqlen 1");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "--seqlen")) << r.out;

    r = run(kld + " --base " + kNano + " --seqlen 4096 --max_tokens 100");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "fewer than one window")) << r.out;

    r = run("eval hellaswag --model " + kNano + " --data /nonexistent/hs.txt.bz2");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "--data /nonexistent/hs.txt.bz2")) << r.out;

    r = run("eval hellaswag --model " + kNano + " --data " + kHs + " --limit -2");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, "--limit")) << r.out;

    r = run("eval hellaswag --model " + kNano + " --data " + kHs + " --bogus");
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(has(r, "bogus")) << r.out;

    r = run("eval hellaswag --data " + kHs);  // no --model
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(has(r, "--model")) << r.out;

    const fs::path bad = fs::temp_directory_path() / ("ar_cli_hs_" + std::to_string(::getpid()) + ".txt");
    std::ofstream(bad) << "context\n7\na\nb\nc\nd\n";
    r = run("eval hellaswag --model " + kNano + " --data " + bad.string());
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, bad.string() + ": line 2: the gold ending index must be 0, 1, 2 or 3")) << r.out;
    std::ofstream(bad, std::ios::trunc) << "BZh91AY&SYtruncated";
    r = run("eval hellaswag --model " + kNano + " --data " + bad.string());
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_TRUE(has(r, bad.string() + ": ")) << r.out;
    fs::remove(bad);
}

// --device on the commands that run a model: a spelling that is not a device, and cuda where this build or machine
// has none, are errors that say what to pass instead (never a crash or a silent CPU run).
TEST(CliEval, DeviceFlagOfGenerateAndPpl) {
    Result r = run("eval ppl --model " + kNano + " --data " + kWiki + " --device tpu --max_tokens 64 --seqlen 32");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("--device tpu: expected cpu, cuda"), std::string::npos) << r.out;
    r = run("generate --model " + kNano + " --prompt hi --max_new_tokens 2 --device gpu7");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("--device gpu7"), std::string::npos) << r.out;
    const Result dev = run("devices");
    if (dev.out.find("cuda:0") == std::string::npos) {  // no GPU here (or no CUDA build)
        r = run("generate --model " + kNano + " --prompt hi --max_new_tokens 2 --device cuda");
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find("use --device cpu"), std::string::npos) << r.out;
        // auto falls back to the CPU when there is no GPU
        r = run("eval ppl --model " + kNano + " --data " + kWiki + " --device auto --max_tokens 64 --seqlen 32 --json");
        EXPECT_EQ(r.status, 0) << r.out;
    }
}
