// tests/cli/test_cli_hub.cpp — every subcommand that takes a model accepts a Hugging Face id the same way
// (cli/model_source.h), against the local fake Hub (tests/hub/fake_hub_server.py; HF_ENDPOINT pointing at
// it, HF_HUB_CACHE in its temp folder):
//   * `tokenize --model org/nano[@rev]` gives the ids of the local folder and downloads no weights;
//   * `eval kld --model/--base`, `eval ppl`, `eval hellaswag`, `generate` and `info` with ids give the
//     numbers of the local folder; a bad --base id is an error naming --base; offline runs use the cache;
//   * `quantize --model org/nano ... --format auto_round,auto_gptq --push_to_hub me/nano-{format}` sends,
//     for each formatted repo, create -> preupload -> LFS batch -> LFS PUTs -> NDJSON commit, the token
//     only in the Authorization header of Hub requests and never in the output; the pushed model card
//     carries the base repo's license (its README.md is downloaded), and the pushed model loads back by id.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/fake_hub.h"
#include "hub/sha256.h"

namespace fs = std::filesystem;
using autoround::test::FakeHub;
using autoround::test::slurp;
using cli_test::Result;
using nlohmann::json;

namespace {

const fs::path kShared = fs::path(AR_SHARED_DIR);
const fs::path kNano = kShared / "models/qwen3-nano";
const std::string kWiki = (kShared / "data/text/wikitext-2-raw/wiki.test.raw").string();
const std::string kHs = (kShared / "data/eval/hellaswag_val_full.txt.bz2").string();
const std::string kC4 = (kShared / "data/text/c4-sample.jsonl").string();
const std::string kToken = "hf_CliHubSecret7781";
const std::string kCard = "---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n# qwen3-nano\n";

bool has(const Result& r, const std::string& s) { return r.out.find(s) != std::string::npos; }

// org/nano on the fake Hub: qwen3-nano's files (linked), plus a model card and a LICENSE; the server
// wants kToken.
void serve_nano(const FakeHub& h, const std::string& repo = "org/nano") {
    for (const auto& e : fs::directory_iterator(kNano)) {
        const fs::path dst = h.srv() / "models" / repo / e.path().filename();
        fs::create_directories(dst.parent_path());
        fs::create_symlink(e.path(), dst);
    }
    h.put("models", repo, "README.md", kCard);
    h.put("models", repo, "LICENSE", "Apache License 2.0 (test copy)");
    h.put("models", repo, "original/pytorch_model.bin", "never downloaded");
    h.control({{"token", kToken}});
}

// The environment of every run: the fake Hub, its cache, no token unless given, no token file.
std::string hub_env(const FakeHub& h, const std::string& token = "", bool offline = false) {
    return "HF_ENDPOINT=" + h.endpoint() + " HF_HUB_CACHE=" + h.cache().string() + " HF_HOME=" +
           (h.root() / "home").string() + " HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_OFFLINE= HF_HUB_OFFLINE=" +
           (offline ? "1" : "") + " HF_TOKEN=" + token;
}

Result run(const std::string& env, const std::string& args) { return cli_test::run(args, env); }

std::string snapshot_of(const FakeHub& h, const std::string& repo_folder) {
    const fs::path repo = h.cache() / repo_folder;
    return (repo / "snapshots" / slurp(repo / "refs/main")).string();
}

std::vector<std::string> files_below(const fs::path& dir) {
    std::vector<std::string> v;
    for (const auto& e : fs::recursive_directory_iterator(dir)) v.push_back(fs::relative(e.path(), dir).string());
    std::sort(v.begin(), v.end());
    return v;
}

#define REQUIRE_HUB(h) \
    if (!(h).ok()) GTEST_SKIP() << "python3 could not start the fake Hub server"

}  // namespace

TEST(CliHub, TokenizeAcceptsAModelIdAndDownloadsNoWeights) {
    FakeHub h("clitok");
    REQUIRE_HUB(h);
    serve_nano(h);
    const std::string args = " --text 'Hello world, tokenized from the Hub' --json";
    const Result local = cli_test::run("tokenize --model " + kNano.string() + args);
    ASSERT_EQ(local.status, 0) << local.out;

    // no token: a clear error naming the flag and the id
    const Result denied = run(hub_env(h), "tokenize --model org/nano" + args);
    EXPECT_EQ(denied.status, 1) << denied.out;
    EXPECT_TRUE(has(denied, "--model org/nano")) << denied.out;
    EXPECT_TRUE(has(denied, "401")) << denied.out;

    // HF_TOKEN, with an explicit revision
    const Result hub = run(hub_env(h, kToken), "tokenize --model org/nano@main" + args);
    ASSERT_EQ(hub.status, 0) << hub.out;
    EXPECT_EQ(hub.out, local.out);
    EXPECT_FALSE(has(hub, kToken)) << hub.out;
    const fs::path snap = snapshot_of(h, "models--org--nano");
    EXPECT_TRUE(fs::exists(snap / "tokenizer.json"));
    for (const std::string& f : files_below(snap))
        EXPECT_EQ(f.find(".safetensors"), std::string::npos) << "tokenize downloaded weights: " << f;

    // offline: the cache only, no request; a repo not in the cache is an error naming the flag
    h.clear_log();
    const Result offline = run(hub_env(h, "", true), "tokenize --model org/nano" + args);
    ASSERT_EQ(offline.status, 0) << offline.out;
    EXPECT_EQ(offline.out, local.out);
    EXPECT_TRUE(h.requests().empty());
    const Result missing = run(hub_env(h, "", true), "tokenize --model org/other" + args);
    EXPECT_EQ(missing.status, 1) << missing.out;
    EXPECT_TRUE(has(missing, "--model org/other")) << missing.out;
    EXPECT_TRUE(has(missing, "HF_HUB_OFFLINE=1")) << missing.out;
    // a path that is neither a file nor an id
    const Result bad = cli_test::run("tokenize --model ./no/such/folder --text x");
    EXPECT_EQ(bad.status, 1) << bad.out;
    EXPECT_TRUE(has(bad, "--model ./no/such/folder")) << bad.out;
}

TEST(CliHub, EvalInfoAndGenerateAcceptModelIds) {
    FakeHub h("clieval");
    REQUIRE_HUB(h);
    serve_nano(h);
    const std::string env = hub_env(h);  // the token comes from --token below
    const std::string kld = " --data " + kWiki + " --seqlen 64 --max_tokens 128 --json --threads 1";

    // eval kld: both flags ids; then a local model against a Hub base (mixed)
    const Result both = run(env, "eval kld --model org/nano --base org/nano@main --token " + kToken + kld);
    ASSERT_EQ(both.status, 0) << both.out;
    EXPECT_FALSE(has(both, kToken)) << both.out;
    const json jb = json::parse(both.out);
    EXPECT_EQ(jb.at("kld_mean").get<double>(), 0.0);
    EXPECT_EQ(jb.at("base"), "org/nano@main");
    const Result local = cli_test::run("eval kld --model " + kNano.string() + " --base " + kNano.string() + kld);
    ASSERT_EQ(local.status, 0) << local.out;
    EXPECT_EQ(jb.at("ppl_base").get<double>(), json::parse(local.out).at("ppl_base").get<double>());
    const Result mixed = run(env, "eval kld --model " + kNano.string() + " --base org/nano --token " + kToken + kld);
    ASSERT_EQ(mixed.status, 0) << mixed.out;
    EXPECT_EQ(json::parse(mixed.out).at("kld_max").get<double>(), 0.0);
    // the weights and the card came into the cache; other files did not
    const fs::path snap = snapshot_of(h, "models--org--nano");
    EXPECT_TRUE(fs::exists(snap / "model-00003-of-00003.safetensors"));
    EXPECT_EQ(slurp(snap / "README.md"), kCard);
    EXPECT_TRUE(fs::exists(snap / "LICENSE"));
    EXPECT_FALSE(fs::exists(snap / "original"));

    // a bad --base id: the error names --base (not --model)
    const Result bad = run(env, "eval kld --model org/nano --base org/missing --token " + kToken + kld);
    EXPECT_EQ(bad.status, 1) << bad.out;
    EXPECT_TRUE(has(bad, "--base org/missing")) << bad.out;
    EXPECT_FALSE(has(bad, "--model org/missing")) << bad.out;
    EXPECT_FALSE(has(bad, kToken)) << bad.out;
    const Result nodir = cli_test::run("eval kld --model " + kNano.string() + " --base /nonexistent/base" + kld);
    EXPECT_EQ(nodir.status, 1) << nodir.out;
    EXPECT_TRUE(has(nodir, "--base /nonexistent/base")) << nodir.out;

    // the rest offline, from the cache the runs above filled: same numbers as the local folder
    const std::string off = hub_env(h, "", true);
    const std::string ppl = " --data " + kWiki + " --seqlen 64 --max_tokens 128 --json --threads 1";
    const Result p_hub = run(off, "eval ppl --model org/nano" + ppl);
    const Result p_loc = cli_test::run("eval ppl --model " + kNano.string() + ppl);
    ASSERT_EQ(p_hub.status, 0) << p_hub.out;
    ASSERT_EQ(p_loc.status, 0) << p_loc.out;
    EXPECT_EQ(json::parse(p_hub.out).at("ppl").get<double>(), json::parse(p_loc.out).at("ppl").get<double>());
    const std::string hs = " --data " + kHs + " --limit 2 --json --threads 1";
    const Result h_hub = run(off, "eval hellaswag --model org/nano" + hs);
    const Result h_loc = cli_test::run("eval hellaswag --model " + kNano.string() + hs);
    ASSERT_EQ(h_hub.status, 0) << h_hub.out;
    ASSERT_EQ(h_loc.status, 0) << h_loc.out;
    EXPECT_EQ(json::parse(h_hub.out).at("acc_norm").get<double>(), json::parse(h_loc.out).at("acc_norm").get<double>());
    const std::string gen = " --prompt 'The capital of France' --max_new_tokens 4 --temperature 0 --ids --no_stats "
                            "--threads 1";
    const Result g_hub = run(off, "generate --model org/nano" + gen);
    const Result g_loc = cli_test::run("generate --model " + kNano.string() + gen);
    ASSERT_EQ(g_hub.status, 0) << g_hub.out;
    EXPECT_EQ(g_hub.out, g_loc.out);
    const Result info = run(off, "info --model org/nano");
    ASSERT_EQ(info.status, 0) << info.out;
    EXPECT_TRUE(has(info, "Qwen3")) << info.out;
}

TEST(CliHub, QuantizePushesEveryFormatToItsRepo) {
    FakeHub h("cliquant");
    REQUIRE_HUB(h);
    serve_nano(h);
    const fs::path out = h.root() / "out";
    // a small but real SignRound run (2 iterations, 4 samples of 32 tokens) of a model given by id
    const Result r = run(hub_env(h), "quantize --model org/nano --output_dir " + out.string() +
                                         " --iters 2 --nsamples 4 --seqlen 32 --batch_size 4 --dataset " + kC4 +
                                         ":shuffle=false --threads 1 --quiet --format auto_round,auto_gptq "
                                         "--push_to_hub 'me/nano-{format}' --token " + kToken);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_FALSE(has(r, kToken)) << r.out;
    EXPECT_TRUE(has(r, "pushed")) << r.out;

    const std::vector<json> reqs = h.requests();
    const std::string bearer = "Bearer " + kToken;
    // the token only ever travels in the authorization header of Hub requests, never to the upload host
    for (const json& q : reqs) {
        const std::string path = q["path"], body = q["body"];
        EXPECT_EQ(path.find(kToken), std::string::npos) << path;
        EXPECT_EQ(body.find(kToken), std::string::npos) << path;
        for (const auto& [k, v] : q["headers"].items()) {
            if (k != "authorization") {
                EXPECT_EQ(v.get<std::string>().find(kToken), std::string::npos) << k;
            }
        }
        if (path.rfind("/lfs-upload/", 0) == 0 || path.rfind("/cdn/", 0) == 0) {
            EXPECT_FALSE(q["headers"].contains("authorization")) << path;
        }
    }

    for (const std::string fmt : {"auto_round", "auto_gptq"}) {
        SCOPED_TRACE(fmt);
        const std::string name = "nano-" + fmt, repo = "me/" + name;
        auto find = [&](const std::string& method, const std::string& path) -> long {
            for (size_t i = 0; i < reqs.size(); ++i)
                if (reqs[i]["method"] == method && reqs[i]["path"].get<std::string>() == path) return long(i);
            return -1;
        };
        // 1. create
        long create = -1;
        for (size_t i = 0; i < reqs.size() && create < 0; ++i)
            if (reqs[i]["method"] == "POST" && reqs[i]["path"] == "/api/repos/create" &&
                json::parse(reqs[i]["body"].get<std::string>()).value("name", "") == name)
                create = long(i);
        ASSERT_GE(create, 0) << "no create-repo request for " << repo;
        const json cb = json::parse(reqs[create]["body"].get<std::string>());
        EXPECT_EQ(cb.at("organization"), "me");
        EXPECT_EQ(reqs[create]["headers"].value("authorization", ""), bearer);
        // 2. preupload
        const long pre = find("POST", "/api/models/" + repo + "/preupload/main");
        ASSERT_GT(pre, create);
        EXPECT_EQ(reqs[pre]["headers"].value("authorization", ""), bearer);
        std::vector<std::string> pre_paths;
        const json pj = json::parse(reqs[pre]["body"].get<std::string>());
        for (const json& f : pj.at("files")) pre_paths.push_back(f["path"]);
        for (const char* f : {"config.json", "README.md", "tokenizer.json", "quantize_report.json"})
            EXPECT_NE(std::find(pre_paths.begin(), pre_paths.end(), f), pre_paths.end()) << f;
        // 3. LFS batch, then one PUT per object (basic transfer), before the commit
        const long batch = find("POST", "/" + repo + ".git/info/lfs/objects/batch");
        ASSERT_GT(batch, pre);
        EXPECT_EQ(reqs[batch]["headers"].value("authorization", ""), bearer);
        EXPECT_EQ(reqs[batch]["headers"].value("accept", ""), "application/vnd.git-lfs+json");
        EXPECT_EQ(reqs[batch]["headers"].value("content-type", ""), "application/vnd.git-lfs+json");
        const json bb = json::parse(reqs[batch]["body"].get<std::string>());
        EXPECT_EQ(bb.at("operation"), "upload");
        EXPECT_EQ(bb.at("hash_algo"), "sha256");
        EXPECT_EQ(bb.at("ref").at("name"), "main");
        ASSERT_FALSE(bb.at("objects").empty());
        const long commit = find("POST", "/api/models/" + repo + "/commit/main");
        ASSERT_GT(commit, batch);
        std::map<std::string, int64_t> batch_oids;
        for (const json& o : bb.at("objects")) {
            const std::string oid = o.at("oid");
            batch_oids[oid] = o.at("size").get<int64_t>();
            const long put = find("PUT", "/lfs-upload/" + oid + "?sig=x");
            EXPECT_GT(put, batch) << oid;
            EXPECT_LT(put, commit) << oid;
            if (put >= 0) {
                EXPECT_EQ(reqs[put]["body_size"].get<int64_t>(), o.at("size").get<int64_t>()) << oid;
            }
        }
        // 4. the NDJSON commit: header, regular files inline, the weights as lfsFile lines
        EXPECT_EQ(reqs[commit]["headers"].value("authorization", ""), bearer);
        EXPECT_EQ(reqs[commit]["headers"].value("content-type", ""), "application/x-ndjson");
        std::istringstream nd(reqs[commit]["body"].get<std::string>());
        std::string line;
        std::vector<json> ops;
        while (std::getline(nd, line))
            if (!line.empty()) ops.push_back(json::parse(line));
        ASSERT_FALSE(ops.empty());
        EXPECT_EQ(ops[0].at("key"), "header");
        size_t lfs_lines = 0;
        bool config_inline = false;
        for (size_t i = 1; i < ops.size(); ++i) {
            const json& v = ops[i].at("value");
            if (ops[i]["key"] == "lfsFile") {
                ++lfs_lines;
                EXPECT_EQ(v.at("algo"), "sha256");
                EXPECT_TRUE(batch_oids.count(v.at("oid").get<std::string>())) << v.dump();
                const std::string stored = slurp(h.srv() / "models" / repo / v.at("path").get<std::string>());
                EXPECT_EQ(autoround::hub::sha256_hex(stored), v.at("oid")) << v.dump();
            }
            if (ops[i]["key"] == "file" && v.at("path") == "config.json") config_inline = true;
        }
        EXPECT_GE(lfs_lines, 1u);
        EXPECT_TRUE(config_inline);
        // what the fake Hub now holds: the exported folder, with a card that names the base and its license
        const fs::path pushed = h.srv() / "models" / repo;
        const std::string card = slurp(pushed / "README.md");
        EXPECT_NE(card.find("license: apache-2.0"), std::string::npos) << card;
        EXPECT_NE(card.find("org/nano"), std::string::npos) << card;
        EXPECT_TRUE(fs::exists(pushed / "config.json"));
    }

    // the pushed auto_round model loads back by its id and scores like the local export
    const std::string ppl = " --data " + kWiki + " --seqlen 64 --max_tokens 128 --json --threads 1";
    const Result back = run(hub_env(h, kToken), "eval ppl --model me/nano-auto_round" + ppl);
    ASSERT_EQ(back.status, 0) << back.out;
    // "  pushed <folder> -> <commit url of me/nano-auto_round>" names the local export
    std::istringstream lines(r.out);
    std::string line, local_ar;
    while (std::getline(lines, line)) {
        const size_t p = line.find("pushed "), arrow = line.find(" -> ");
        if (p != std::string::npos && arrow != std::string::npos &&
            line.find("/me/nano-auto_round/") != std::string::npos)
            local_ar = line.substr(p + 7, arrow - p - 7);
    }
    ASSERT_FALSE(local_ar.empty()) << r.out;
    const Result here = cli_test::run("eval ppl --model " + local_ar + ppl);
    ASSERT_EQ(here.status, 0) << here.out;
    EXPECT_EQ(json::parse(back.out).at("ppl").get<double>(), json::parse(here.out).at("ppl").get<double>());
}
