// tests/cli/test_cli.cpp — the `autoround` binary end to end: subcommands work on qwen3-nano, and
// bad input (corrupt/truncated safetensors, missing shards, broken configs, unknown architectures,
// a non-BPE tokenizer.json, invalid UTF-8 prompts, nonsense flags) gives a clear error naming the
// file and exit status 1 — never a crash.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <unistd.h>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

using cli_test::kBin;
using cli_test::Result;
using cli_test::run;
const fs::path kNano = fs::path(AR_SHARED_DIR) / "models/qwen3-nano";


// A model folder in a temp dir whose files are symlinks to qwen3-nano (cheap), so one file can
// be replaced by a broken version.
struct TempModel {
    fs::path dir;
    explicit TempModel(const std::string& name) {
        dir = fs::temp_directory_path() / ("ar_cli_" + name + "_" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
        for (const auto& e : fs::directory_iterator(kNano)) fs::create_symlink(e.path(), dir / e.path().filename());
    }
    ~TempModel() { fs::remove_all(dir); }
    void replace(const std::string& file, const std::string& bytes) const {
        fs::remove(dir / file);
        std::ofstream(dir / file, std::ios::binary) << bytes;
    }
    std::string read(const std::string& file) const {
        std::ifstream f(kNano / file, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }
};

}  // namespace

TEST(Cli, HelpAndVersion) {
    EXPECT_EQ(run("--help").status, 0);
    for (const char* sub : {"generate", "eval ppl", "info", "tokenize", "init-model"}) {
        const Result r = run(std::string(sub) + " --help");
        EXPECT_EQ(r.status, 0) << sub;
        EXPECT_NE(r.out.find("--"), std::string::npos) << sub;
    }
}

TEST(Cli, NonsenseFlagsFailCleanly) {
    Result r = run("generate --model " + kNano.string() + " --prompt hi --frobnicate 3");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.out.find("frobnicate"), std::string::npos) << r.out;
    r = run("eval ppl --model " + kNano.string() + " --data /nonexistent/file.txt");
    EXPECT_NE(r.status, 0);
    r = run("generate --model /nonexistent/model --prompt hi");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("/nonexistent/model"), std::string::npos) << r.out;
    r = run("nosuchcommand");
    EXPECT_NE(r.status, 0);
}

TEST(Cli, InfoDescribesNano) {
    const Result r = run("info --model " + kNano.string());
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("Qwen3ForCausalLM"), std::string::npos);
    EXPECT_NE(r.out.find("tied embed    yes"), std::string::npos);
}

TEST(Cli, TokenizeMatchesReferenceIds) {
    const Result r = run("tokenize --model " + kNano.string() + " --text 'Hello world' --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto ids = nlohmann::json::parse(r.out);
    ASSERT_TRUE(ids.is_array());
    EXPECT_GE(ids.size(), 2u);
}

TEST(Cli, GreedyGenerateIsDeterministic) {
    const std::string args = "generate --model " + kNano.string() +
                             " --prompt 'Once upon a time' --temperature 0 --max_new_tokens 8 --no_stats";
    const Result a = run(args), b = run(args);
    ASSERT_EQ(a.status, 0) << a.out;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.out.rfind("Once upon a time", 0), 0u) << a.out;
}

TEST(Cli, EvalPplJson) {
    const Result r = run("eval ppl --model " + kNano.string() + " --data " + AR_SHARED_DIR +
                         "/data/text/tinyshakespeare.txt --seqlen 128 --max_tokens 512 --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j.at("ppl").get<double>(), 1.0);
    EXPECT_EQ(j.at("tokens").get<int>(), 512);
    EXPECT_GT(j.at("seconds").get<double>(), 0.0);
}

TEST(Cli, InvalidUtf8PromptIsAnError) {
    const Result r = run("generate --model " + kNano.string() + " --prompt \"$(printf 'abc\\377\\376')\" --max_new_tokens 1");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("UTF-8"), std::string::npos) << r.out;
}

struct BadInputCase {
    const char* name;
    const char* file;
    std::function<std::string(const TempModel&)> bytes;
    const char* expect;  // substring of the error
};

TEST(Cli, BadCheckpointsGiveClearErrors) {
    const std::string shard = "model-00003-of-00003.safetensors";
    const std::vector<BadInputCase> cases = {
        {"truncated", "model-00003-of-00003.safetensors", [&](const TempModel& m) { return m.read(shard).substr(0, 1000); },
         "model-00003-of-00003.safetensors"},
        {"header_past_eof", "model-00003-of-00003.safetensors",
         [](const TempModel&) { return std::string("\xff\xff\xff\x00\x00\x00\x00\x00{}", 10); }, "model-00003-of-00003"},
        {"garbage_json", "model-00003-of-00003.safetensors",
         [](const TempModel&) { return std::string("\x08\x00\x00\x00\x00\x00\x00\x00{not js}", 16); }, "model-00003"},
        {"bad_config_json", "config.json", [](const TempModel&) { return std::string("{\"hidden_size\": 5,"); },
         "config.json"},
        {"missing_field", "config.json",
         [](const TempModel& m) {
             auto j = nlohmann::json::parse(m.read("config.json"));
             j.erase("hidden_size");
             return j.dump();
         },
         "hidden_size"},
        {"unknown_arch", "config.json",
         [](const TempModel& m) {
             auto j = nlohmann::json::parse(m.read("config.json"));
             j["architectures"] = {"MambaForCausalLM"};
             return j.dump();
         },
         "unsupported architecture MambaForCausalLM"},
        {"wrong_shape", "config.json",
         [](const TempModel& m) {
             auto j = nlohmann::json::parse(m.read("config.json"));
             j["intermediate_size"] = 1024;
             return j.dump();
         },
         "mlp"},
        {"tokenizer_not_bpe", "tokenizer.json",
         [](const TempModel&) { return std::string(R"({"model": {"type": "Unigram", "vocab": []}})"); }, "tokenizer.json"},
    };
    for (const auto& c : cases) {
        TempModel m(c.name);
        m.replace(c.file, c.bytes(m));
        const Result r = run("generate --model " + m.dir.string() + " --prompt hello --max_new_tokens 1");
        EXPECT_EQ(r.status, 1) << c.name << ": " << r.out;
        EXPECT_NE(r.out.find("error:"), std::string::npos) << c.name << ": " << r.out;
        EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.name << ": " << r.out;
    }
    {
        TempModel m("missing_shard");
        fs::remove(m.dir / "model-00002-of-00003.safetensors");
        const Result r = run("info --model " + m.dir.string());
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find("model-00002-of-00003.safetensors"), std::string::npos) << r.out;
    }
}

TEST(Cli, InitModelWritesALoadableCheckpointAtomically) {
    const fs::path out = fs::temp_directory_path() / ("ar_init_" + std::to_string(::getpid()));
    fs::remove_all(out);
    Result r = run("init-model --like qwen3-nano-like --output " + out.string() + " --tokenizer_from " + kNano.string());
    ASSERT_EQ(r.status, 0) << r.out;
    r = run("generate --model " + out.string() + " --prompt hi --temperature 0 --max_new_tokens 3 --no_stats");
    EXPECT_EQ(r.status, 0) << r.out;
    r = run("init-model --like qwen3-nano-like --output " + out.string());
    EXPECT_EQ(r.status, 1) << "existing output must not be overwritten silently: " << r.out;
    r = run("init-model --like qwen9-huge --output " + out.string() + "_x");
    EXPECT_EQ(r.status, 1);
    EXPECT_FALSE(fs::exists(out.string() + "_x"));
    fs::remove_all(out);
}
