// tests/hub/test_hub_upload.cpp — hub/hub_upload (autoround push) against the fake Hub: the exact
// requests of the protocol doc §4 (create JSON, preupload samples, LFS batch headers and body, basic
// and multipart PUTs without Hub auth on the storage host, multipart completion, verify, NDJSON
// commit lines), the pushed files downloadable again, a second push uploading no LFS bytes, and
// clear errors (no token, 401) that never contain the token.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hub/fake_hub.h"
#include "hub/hub_download.h"
#include "hub/hub_upload.h"
#include "hub/sha256.h"

namespace fs = std::filesystem;
using autoround::Error;
using autoround::test::FakeHub;
using autoround::test::slurp;
using nlohmann::json;
namespace hub = autoround::hub;

namespace {

const std::string kToken = "hf_PuShToKeN_abcdef0123";

std::string bytes_of(size_t n, int seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + static_cast<size_t>(seed)) % 253);
    return s;
}

struct Folder {
    fs::path dir;
    explicit Folder(const fs::path& root) : dir(root / "out-model") {
        fs::create_directories(dir / "sub");
        fs::create_directories(dir / ".cache");
        std::ofstream(dir / "config.json") << R"({"model_type":"qwen3"})";
        std::ofstream(dir / "model.safetensors", std::ios::binary) << bytes_of(5000, 1);
        std::ofstream(dir / "sub" / "big.safetensors", std::ios::binary) << bytes_of(3000, 2);
        std::ofstream(dir / "empty.txt");
        std::ofstream(dir / ".cache" / "skipped") << "hidden";
    }
};

}  // namespace

TEST(HubUpload, PushSendsTheDocumentedRequests) {
    FakeHub h("push");
    if (!h.ok()) GTEST_SKIP() << "python3 could not start the fake Hub server";
    Folder f(h.root());
    h.control({{"token", kToken}, {"multipart_chunk", 1024}});
    auto s = h.settings();
    s.token = kToken;
    hub::PushOptions o;
    o.repo = "me/tiny-w4";
    o.folder = f.dir;
    o.private_repo = true;
    o.commit_message = "Add W4G128 model";
    const hub::PushResult r = hub::push_folder(o, s);
    EXPECT_TRUE(r.created);
    EXPECT_EQ(r.files, 4u);
    EXPECT_EQ(r.lfs_files, 2u);
    EXPECT_EQ(r.lfs_uploaded, 2u);
    EXPECT_EQ(r.commit_oid.size(), 40u);

    const auto reqs = h.requests();
    auto find = [&](const std::string& method, const std::string& part) {
        std::vector<json> out;
        for (const auto& q : reqs)
            if (q["method"] == method && q["path"].get<std::string>().find(part) != std::string::npos) out.push_back(q);
        return out;
    };
    // 1. create
    const auto create = find("POST", "/api/repos/create");
    ASSERT_EQ(create.size(), 1u);
    EXPECT_EQ(json::parse(create[0]["body"].get<std::string>()),
              (json{{"name", "tiny-w4"}, {"organization", "me"}, {"visibility", "private"}}));
    EXPECT_EQ(create[0]["headers"]["authorization"], "Bearer " + kToken);
    // 2. preupload: every non-hidden file with size and a base64 sample of its first 512 bytes
    const auto pre = find("POST", "/api/models/me/tiny-w4/preupload/main");
    ASSERT_EQ(pre.size(), 1u);
    const json pj = json::parse(pre[0]["body"].get<std::string>());
    ASSERT_EQ(pj["files"].size(), 4u);
    EXPECT_EQ(pj["files"][0]["path"], "config.json");
    EXPECT_EQ(pj["files"][1]["path"], "empty.txt");
    EXPECT_EQ(pj["files"][1]["size"], 0);
    EXPECT_EQ(pj["files"][2]["path"], "model.safetensors");
    EXPECT_EQ(pj["files"][2]["sample"], hub::base64_encode(bytes_of(5000, 1).substr(0, 512)));
    EXPECT_EQ(pj["files"][3]["path"], "sub/big.safetensors");
    // 3. LFS batch
    const auto batch = find("POST", "/me/tiny-w4.git/info/lfs/objects/batch");
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0]["headers"]["accept"], "application/vnd.git-lfs+json");
    EXPECT_EQ(batch[0]["headers"]["content-type"], "application/vnd.git-lfs+json");
    EXPECT_EQ(batch[0]["headers"]["authorization"], "Bearer " + kToken);
    const std::string sha_a = hub::sha256_hex(bytes_of(5000, 1)), sha_b = hub::sha256_hex(bytes_of(3000, 2));
    EXPECT_EQ(json::parse(batch[0]["body"].get<std::string>()),
              (json{{"operation", "upload"},
                    {"transfers", {"basic", "multipart"}},
                    {"objects", {{{"oid", sha_a}, {"size", 5000}}, {{"oid", sha_b}, {"size", 3000}}}},
                    {"hash_algo", "sha256"},
                    {"ref", {{"name", "main"}}}}));
    // model.safetensors: 5 parts of 1024 (multipart); sub/big.safetensors: 3 parts
    const auto puts = find("PUT", "/lfs-upload/");
    ASSERT_EQ(puts.size(), 8u);
    for (const auto& p : puts) EXPECT_FALSE(p["headers"].contains("authorization")) << p["path"];
    const auto complete = find("POST", "/lfs-complete/" + sha_a);
    ASSERT_EQ(complete.size(), 1u);
    const json cj = json::parse(complete[0]["body"].get<std::string>());
    EXPECT_EQ(cj["oid"], sha_a);
    ASSERT_EQ(cj["parts"].size(), 5u);
    EXPECT_EQ(cj["parts"][0]["partNumber"], 1);
    EXPECT_EQ(find("POST", "/lfs-verify/").size(), 2u);
    // 4. commit: NDJSON, header first, then regular files as base64, LFS files as pointers
    const auto commit = find("POST", "/api/models/me/tiny-w4/commit/main");
    ASSERT_EQ(commit.size(), 1u);
    EXPECT_EQ(commit[0]["headers"]["content-type"], "application/x-ndjson");
    std::istringstream lines(commit[0]["body"].get<std::string>());
    std::vector<json> ops;
    for (std::string l; std::getline(lines, l);) ops.push_back(json::parse(l));
    ASSERT_EQ(ops.size(), 5u);
    EXPECT_EQ(ops[0], (json{{"key", "header"}, {"value", {{"summary", "Add W4G128 model"}, {"description", ""}}}}));
    EXPECT_EQ(ops[1], (json{{"key", "file"},
                            {"value", {{"content", hub::base64_encode(R"({"model_type":"qwen3"})")},
                                       {"path", "config.json"},
                                       {"encoding", "base64"}}}}));
    EXPECT_EQ(ops[2]["value"]["path"], "empty.txt");
    EXPECT_EQ(ops[3], (json{{"key", "lfsFile"},
                            {"value", {{"path", "model.safetensors"}, {"algo", "sha256"}, {"oid", sha_a}, {"size", 5000}}}}));
    EXPECT_EQ(ops[4]["value"]["path"], "sub/big.safetensors");

    // what was pushed downloads again, byte for byte
    hub::HubClient c(s);
    const auto ref = hub::parse_repo_ref("me/tiny-w4", hub::RepoType::Model, "--model");
    EXPECT_EQ(slurp(c.download_file(ref, "model.safetensors")), bytes_of(5000, 1));
    EXPECT_EQ(slurp(c.download_file(ref, "sub/big.safetensors")), bytes_of(3000, 2));
    EXPECT_FALSE(fs::exists(h.srv() / "models/me/tiny-w4/.cache"));

    // a second push: the repo exists (409 is fine), the LFS objects are stored: nothing re-uploaded
    h.clear_log();
    const hub::PushResult r2 = hub::push_folder(o, s);
    EXPECT_FALSE(r2.created);
    EXPECT_EQ(r2.lfs_uploaded, 0u);
    for (const auto& q : h.requests()) EXPECT_NE(q["method"], "PUT") << q["path"];
}

TEST(HubUpload, ErrorsNeverShowTheToken) {
    FakeHub h("push_err");
    if (!h.ok()) GTEST_SKIP() << "python3 could not start the fake Hub server";
    Folder f(h.root());
    hub::PushOptions o;
    o.repo = "me/x";
    o.folder = f.dir;
    auto s = h.settings();
    try {
        hub::push_folder(o, s);
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos) << e.what();
    }
    h.control({{"token", "the-right-one"}});
    s.token = kToken;
    try {
        hub::push_folder(o, s);
        ADD_FAILURE();
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("401"), std::string::npos) << m;
        EXPECT_EQ(m.find(kToken), std::string::npos) << m;
    }
    o.repo = "../x";
    EXPECT_THROW(hub::push_folder(o, s), Error);
}
