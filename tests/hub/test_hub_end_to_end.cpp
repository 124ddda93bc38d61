// tests/hub/test_hub_end_to_end.cpp — the Hub client wired into the product, against the fake Hub:
//   * --dataset org/name: a dataset repo's train Parquet file downloaded into the cache and read as
//     the calibration set, rows in HF datasets' Dataset.shuffle(seed) order (numpy permutation);
//   * `autoround info --model org/nano` downloading qwen3-nano through HF_ENDPOINT into HF_HUB_CACHE,
//     then the same with HF_HUB_OFFLINE=1 (no request), a local folder winning over an id, the token
//     never printed; `autoround push` from the command line.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "hub/fake_hub.h"
#include "io/model_config.h"
#include "io/parquet_reader.h"
#include "quant/calibration.h"
#include "text/bpe_tokenizer.h"

namespace fs = std::filesystem;
using autoround::test::FakeHub;
using autoround::test::slurp;

namespace {

const fs::path kNano = fs::path(AR_SHARED_DIR) / "models/qwen3-nano";
const std::string kToken = "hf_EndToEndSecret42";

using cli_test::Result;
Result run(const std::string& env, const std::string& args) { return cli_test::run(args, env); }

}  // namespace

TEST(HubEndToEnd, CalibrationFromAHubParquetDataset) {
    FakeHub h("calib");
    if (!h.ok()) GTEST_SKIP() << "python3 could not start the fake Hub server";
    const fs::path fixture = fs::path(AR_SOURCE_DIR) / "tests/data/parquet/pa_dict_v1_snappy.parquet";
    h.put("datasets", "org/texts", "data/train-00000-of-00001.parquet", slurp(fixture));
    h.put("datasets", "org/texts", "README.md", "# card");
    ::setenv("HF_ENDPOINT", h.endpoint().c_str(), 1);
    ::setenv("HF_HUB_CACHE", h.cache().c_str(), 1);
    ::unsetenv("HF_HUB_OFFLINE");

    const autoround::BpeTokenizer tok = autoround::BpeTokenizer::load(kNano / "tokenizer.json");
    const autoround::TokenizerConfig tcfg = autoround::load_tokenizer_config(kNano);
    autoround::CalibrationOptions o;
    o.dataset = "org/texts";
    o.seqlen = 4;
    o.nsamples = 6;
    const autoround::CalibrationSet set = autoround::build_calibration_set(o, tok, tcfg);
    ::unsetenv("HF_ENDPOINT");
    ::unsetenv("HF_HUB_CACHE");
    ASSERT_EQ(set.samples.size(), 6u);

    // expected: rows in numpy_permutation(n, 42) order, keeping those with >= 4 tokens (nulls are empty)
    const auto col = autoround::parquet::read_parquet_string_column(fixture, "text");
    const auto perm = autoround::numpy_permutation(col.values.size(), 42);
    std::vector<size_t> expect;
    for (const size_t d : perm) {
        const std::string t = col.values[d].value_or("");
        const auto ids = tok.encode(t);
        if (ids.size() >= 4 && autoround::calibration_sample_ok(ids, 4)) expect.push_back(d);
        if (expect.size() == 6) break;
    }
    for (size_t k = 0; k < 6; ++k) {
        EXPECT_EQ(set.origins[k].document, expect[k]) << k;
        EXPECT_NE(set.origins[k].file.find("datasets--org--texts/snapshots/"), std::string::npos) << set.origins[k].file;
    }
    EXPECT_NE(set.description.find("Hub dataset org/texts"), std::string::npos) << set.description;
}

TEST(HubEndToEnd, CliModelIdDownloadsThenWorksOffline) {
    FakeHub h("cli");
    if (!h.ok()) GTEST_SKIP() << "python3 could not start the fake Hub server";
    for (const auto& e : fs::directory_iterator(kNano)) {
        const fs::path dst = h.srv() / "models/org/nano" / e.path().filename();
        fs::create_directories(dst.parent_path());
        fs::create_symlink(e.path(), dst);
    }
    h.control({{"token", kToken}});
    const std::string env = "HF_ENDPOINT=" + h.endpoint() + " HF_HUB_CACHE=" + h.cache().string() +
                            " HF_HUB_DISABLE_PROGRESS_BARS=1 HF_TOKEN=";
    // no token: a clear 401
    const Result denied = run(env, "info --model org/nano");
    EXPECT_EQ(denied.status, 1) << denied.out;
    EXPECT_NE(denied.out.find("401"), std::string::npos) << denied.out;
    EXPECT_NE(denied.out.find("HF_TOKEN"), std::string::npos) << denied.out;
    // --token
    const Result first = run(env, "info --model org/nano --token " + kToken);
    ASSERT_EQ(first.status, 0) << first.out;
    EXPECT_NE(first.out.find("Qwen3"), std::string::npos) << first.out;
    EXPECT_EQ(first.out.find(kToken), std::string::npos) << first.out;
    const fs::path repo = h.cache() / "models--org--nano";
    const std::string commit = slurp(repo / "refs/main");
    EXPECT_EQ(slurp(repo / "snapshots" / commit / "model-00002-of-00003.safetensors"),
              slurp(kNano / "model-00002-of-00003.safetensors"));
    // offline: no request at all
    h.clear_log();
    const Result offline = run("HF_HUB_OFFLINE=1 " + env, "info --model org/nano");
    ASSERT_EQ(offline.status, 0) << offline.out;
    EXPECT_TRUE(h.requests().empty());
    const Result missing = run("HF_HUB_OFFLINE=1 " + env, "info --model org/other");
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.out.find("HF_HUB_OFFLINE=1"), std::string::npos) << missing.out;
    // a local folder wins over a Hub id of the same spelling
    const Result local = run("HF_HUB_OFFLINE=1 " + env, "info --model " + kNano.string());
    EXPECT_EQ(local.status, 0) << local.out;

    // push from the command line (fake Hub accepts the token); the token is not echoed
    const Result pushed = run(env, "push --repo me/nano-copy --folder " + kNano.string() + " --token " + kToken);
    ASSERT_EQ(pushed.status, 0) << pushed.out;
    EXPECT_NE(pushed.out.find("pushed 10 files"), std::string::npos) << pushed.out;
    EXPECT_EQ(pushed.out.find(kToken), std::string::npos) << pushed.out;
    EXPECT_EQ(slurp(h.srv() / "models/me/nano-copy/config.json"), slurp(kNano / "config.json"));
}
