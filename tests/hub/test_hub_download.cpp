// tests/hub/test_hub_download.cpp — hub/ downloads against the local fake Hub (fake_hub_server.py):
// the cache layout (blobs, relative snapshot links, refs without newline), a second run without
// downloads and an offline run without any request, resume of a killed (.incomplete) download with
// Range, a server that ignores Range, SHA-256 mismatch (re-fetched once, then refused), renamed repos
// (relative redirect), Authorization dropped on the CDN host, 401/403/404/500/timeouts with clear
// messages that never contain the token, unsafe names from the server refused, dataset file choice, the
// model file choice (weights, tokenizer, README.md card, LICENSE, processor files of vision models).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "hub/hf_cache.h"
#include "hub/hub_download.h"
#include "hub/sha256.h"
#include "hub/fake_hub.h"

namespace fs = std::filesystem;
using autoround::Error;
using autoround::test::FakeHub;
using autoround::test::slurp;
namespace hub = autoround::hub;

namespace {

const std::string kToken = "hf_SeCrEtToKeN0123456789";

std::string weights(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
    return s;
}

void make_tiny_model(const FakeHub& h, const std::string& repo = "org/tiny") {
    h.put("models", repo, "config.json", R"({"model_type":"qwen3"})");
    h.put("models", repo, "model.safetensors", weights(5000));
    h.put("models", repo, "tokenizer.json", std::string(300, 't'));
    h.put("models", repo, "README.md", "---\nlicense: apache-2.0\n---\n# card");
    h.put("models", repo, "extra/other.bin", "not downloaded");
    h.put("models", repo, "pytorch_model.bin", "not downloaded either");
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

size_t count_requests(const FakeHub& h, const std::string& method, const std::string& path_part) {
    size_t n = 0;
    for (const auto& r : h.requests())
        if (r["method"] == method && r["path"].get<std::string>().find(path_part) != std::string::npos) ++n;
    return n;
}

#define REQUIRE_HUB(h) \
    if (!(h).ok()) GTEST_SKIP() << "python3 could not start the fake Hub server"

}  // namespace

TEST(HubDownload, ModelIntoCacheLayoutThenNoDownloadThenOffline) {
    FakeHub h("layout");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    h.control({{"token", kToken}});
    auto s = h.settings();
    s.token = kToken;
    const fs::path dir = hub::resolve_model_repo("org/tiny", s);

    const fs::path repo = h.cache() / "models--org--tiny";
    const std::string commit = slurp(repo / "refs" / "main");
    ASSERT_EQ(commit.size(), 40u) << "refs/main holds the 40-hex commit without newline";
    EXPECT_EQ(dir, repo / "snapshots" / commit);
    EXPECT_TRUE(fs::exists(h.cache() / "CACHEDIR.TAG"));
    // LFS file: blob named by its SHA-256, relative link
    const std::string sha = hub::sha256_hex(weights(5000));
    EXPECT_TRUE(fs::is_symlink(dir / "model.safetensors"));
    EXPECT_EQ(fs::read_symlink(dir / "model.safetensors").string(), "../../blobs/" + sha);
    EXPECT_EQ(slurp(dir / "model.safetensors"), weights(5000));
    EXPECT_EQ(slurp(dir / "config.json"), R"({"model_type":"qwen3"})");
    EXPECT_TRUE(fs::exists(dir / "tokenizer.json"));
    EXPECT_EQ(slurp(dir / "README.md"), "---\nlicense: apache-2.0\n---\n# card");  // the card: license, base model
    EXPECT_FALSE(fs::exists(dir / "extra"));
    EXPECT_FALSE(fs::exists(dir / "pytorch_model.bin"));
    for (const auto& e : fs::directory_iterator(repo / "blobs"))
        EXPECT_EQ(e.path().extension(), "") << "no .incomplete left: " << e.path();

    // the Hub got the token; the CDN host (a pre-signed URL) did not
    for (const auto& r : h.requests()) {
        const std::string path = r["path"];
        const bool has_auth = r["headers"].contains("authorization");
        if (path.rfind("/cdn/", 0) == 0) {
            EXPECT_FALSE(has_auth) << path;
        } else {
            EXPECT_TRUE(has_auth) << path;
        }
        if (r["method"] == "HEAD") {
            EXPECT_EQ(r["headers"].value("accept-encoding", ""), "identity");
        }
    }
    EXPECT_EQ(count_requests(h, "GET", "/cdn/"), 2u);  // model.safetensors, tokenizer.json

    // second run: one listing request, no file request at all
    h.clear_log();
    EXPECT_EQ(hub::resolve_model_repo("org/tiny", s), dir);
    const auto reqs = h.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_NE(reqs[0]["path"].get<std::string>().find("/api/models/org/tiny/revision/main"), std::string::npos);

    // offline: no request at all
    h.clear_log();
    s.offline = true;
    EXPECT_EQ(hub::resolve_model_repo("org/tiny", s), dir);
    EXPECT_TRUE(h.requests().empty());
    // a pinned commit is served from the cache without a request too
    s.offline = false;
    hub::HubClient c(s);
    hub::RepoRef pinned = hub::parse_repo_ref("org/tiny@" + commit, hub::RepoType::Model, "--model");
    EXPECT_EQ(c.download_file(pinned, "config.json"), dir / "config.json");
    EXPECT_TRUE(h.requests().empty());
}

TEST(HubDownload, OfflineMissingFileNamesIt) {
    FakeHub h("offline");
    REQUIRE_HUB(h);
    auto s = h.settings();
    s.offline = true;
    const std::string m = message_of([&] { hub::resolve_model_repo("org/tiny", s); });
    EXPECT_NE(m.find("HF_HUB_OFFLINE=1"), std::string::npos) << m;
    EXPECT_NE(m.find("org/tiny"), std::string::npos) << m;
    hub::HubClient c(s);
    const auto r = hub::parse_repo_ref("org/tiny", hub::RepoType::Model, "--model");
    const std::string m2 = message_of([&] { c.download_file(r, "config.json"); });
    EXPECT_NE(m2.find("config.json"), std::string::npos) << m2;
    EXPECT_TRUE(h.requests().empty());
}

TEST(HubDownload, KilledDownloadResumesWithRange) {
    FakeHub h("resume");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    const std::string data = weights(5000);
    const std::string sha = hub::sha256_hex(data);
    // a previous run was killed after 1234 bytes
    const fs::path blobs = h.cache() / "models--org--tiny" / "blobs";
    fs::create_directories(blobs);
    std::ofstream(blobs / (sha + ".incomplete"), std::ios::binary) << data.substr(0, 1234);
    hub::HubClient c(h.settings());
    const auto r = hub::parse_repo_ref("org/tiny", hub::RepoType::Model, "--model");
    EXPECT_EQ(slurp(c.download_file(r, "model.safetensors")), data);
    bool ranged = false;
    for (const auto& q : h.requests())
        if (q["path"].get<std::string>().rfind("/cdn/", 0) == 0) ranged = q["headers"].value("range", "") == "bytes=1234-";
    EXPECT_TRUE(ranged);
    EXPECT_FALSE(fs::exists(blobs / (sha + ".incomplete")));
}

TEST(HubDownload, DroppedConnectionIsResumed) {
    FakeHub h("dropped");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    const std::string data = weights(5000);
    const std::string sha = hub::sha256_hex(data);
    h.control({{"truncate", {{sha, 2000}}}});
    hub::HubClient c(h.settings());
    const auto r = hub::parse_repo_ref("org/tiny", hub::RepoType::Model, "--model");
    EXPECT_EQ(slurp(c.download_file(r, "model.safetensors")), data);
    EXPECT_EQ(count_requests(h, "GET", "/cdn/"), 2u);
    bool resumed = false;
    for (const auto& q : h.requests()) resumed = resumed || q["headers"].value("range", "") == "bytes=2000-";
    EXPECT_TRUE(resumed);
}

TEST(HubDownload, ServerIgnoringRangeRestartsFromZero) {
    FakeHub h("norange");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    const std::string data = weights(5000);
    const std::string sha = hub::sha256_hex(data);
    h.control({{"cdn_ignore_range", true}});
    const fs::path blobs = h.cache() / "models--org--tiny" / "blobs";
    fs::create_directories(blobs);
    std::ofstream(blobs / (sha + ".incomplete"), std::ios::binary) << data.substr(0, 999);
    hub::HubClient c(h.settings());
    const auto r = hub::parse_repo_ref("org/tiny", hub::RepoType::Model, "--model");
    EXPECT_EQ(slurp(c.download_file(r, "model.safetensors")), data);
}

TEST(HubDownload, CorruptBlobIsRefetchedOnceThenRefused) {
    FakeHub h("sha");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    const std::string data = weights(5000);
    const std::string sha = hub::sha256_hex(data);
    const auto r = hub::parse_repo_ref("org/tiny", hub::RepoType::Model, "--model");
    {
        h.control({{"corrupt", {{sha, 1}}}});
        hub::HubClient c(h.settings());
        EXPECT_EQ(slurp(c.download_file(r, "model.safetensors")), data);
        EXPECT_EQ(count_requests(h, "GET", "/cdn/"), 2u);
    }
    fs::remove_all(h.cache());
    h.clear_log();
    h.control({{"corrupt", {{sha, 100}}}});
    hub::HubClient c(h.settings());
    const std::string m = message_of([&] { c.download_file(r, "model.safetensors"); });
    EXPECT_NE(m.find("SHA-256 mismatch"), std::string::npos) << m;
    EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
    const fs::path blobs = h.cache() / "models--org--tiny" / "blobs";
    EXPECT_FALSE(fs::exists(blobs / sha));
    EXPECT_FALSE(fs::exists(blobs / (sha + ".incomplete")));
}

TEST(HubDownload, RenamedRepoFollowsRelativeRedirect) {
    FakeHub h("rename");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    h.control({{"renames", {{"org/old-name", "org/tiny"}}}});
    hub::HubClient c(h.settings());
    const auto r = hub::parse_repo_ref("org/old-name", hub::RepoType::Model, "--model");
    EXPECT_EQ(slurp(c.download_file(r, "config.json")), R"({"model_type":"qwen3"})");
    EXPECT_EQ(slurp(c.download_file(r, "model.safetensors")), weights(5000));
}

TEST(HubDownload, HttpErrorsSayWhatToDoAndNeverShowTheToken) {
    FakeHub h("errors");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    make_tiny_model(h, "org/gated");
    auto s = h.settings();
    s.token = kToken;
    const auto tiny = hub::parse_repo_ref("org/tiny", hub::RepoType::Model, "--model");
    std::vector<std::string> all;

    h.control({{"token", "another-token"}});
    {
        hub::HubClient c(s);
        const std::string m = message_of([&] { c.download_file(tiny, "config.json"); });
        EXPECT_NE(m.find("401"), std::string::npos) << m;
        EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
        all.push_back(m);
        all.push_back(message_of([&] { hub::resolve_model_repo("org/tiny", s); }));
    }
    h.control({{"gated", {"org/gated"}}});
    {
        hub::HubClient c(s);
        const auto g = hub::parse_repo_ref("org/gated", hub::RepoType::Model, "--model");
        const std::string m = message_of([&] { c.download_file(g, "config.json"); });
        EXPECT_NE(m.find("403"), std::string::npos) << m;
        EXPECT_NE(m.find("accept its license"), std::string::npos) << m;
        all.push_back(m);
    }
    h.control(nlohmann::json::object());
    {
        hub::HubClient c(s);
        const std::string m = message_of([&] { c.download_file(tiny, "nope.json"); });
        EXPECT_NE(m.find("404"), std::string::npos) << m;
        EXPECT_NE(m.find("nope.json"), std::string::npos) << m;
        all.push_back(m);
        // the miss is remembered as .no_exist/<commit>/nope.json
        const std::string commit = slurp(h.cache() / "models--org--tiny" / "refs" / "main");
        EXPECT_TRUE(fs::exists(h.cache() / "models--org--tiny" / ".no_exist" / commit / "nope.json"));
        const auto bad_rev = hub::parse_repo_ref("org/tiny@v9", hub::RepoType::Model, "--model");
        const std::string m2 = message_of([&] { c.download_file(bad_rev, "config.json"); });
        EXPECT_NE(m2.find("revision"), std::string::npos) << m2;
        all.push_back(m2);
        const std::string m3 = message_of([&] { hub::resolve_model_repo("nobody/missing", s); });
        EXPECT_NE(m3.find("401"), std::string::npos) << m3;
        EXPECT_NE(m3.find("check the id"), std::string::npos) << m3;
        all.push_back(m3);
    }
    h.clear_log();
    h.control({{"status", {{"/resolve/", 500}}}});
    {
        hub::HubClient c(s);
        const std::string m = message_of([&] { c.download_file(tiny, "config.json"); });
        EXPECT_NE(m.find("500"), std::string::npos) << m;
        EXPECT_NE(m.find("retry later"), std::string::npos) << m;
        all.push_back(m);
        EXPECT_EQ(count_requests(h, "HEAD", "/resolve/"), 3u) << "1 try + 2 retries";
    }
    h.clear_log();
    h.control({{"status", {{"/resolve/", 503}}}, {"status_times", {{"/resolve/", 1}}}});
    {
        hub::HubClient c(s);
        EXPECT_EQ(slurp(c.download_file(tiny, "config.json")), R"({"model_type":"qwen3"})") << "a 503 is retried";
    }
    h.control({{"delay", {{"/resolve/", 3}}}});
    {
        auto st = s;
        st.etag_timeout_s = 1;
        st.max_retries = 0;
        fs::remove_all(h.cache());
        hub::HubClient c(st);
        const std::string m = message_of([&] { c.download_file(tiny, "config.json"); });
        EXPECT_NE(m.find("timed out"), std::string::npos) << m;
        all.push_back(m);
    }
    for (const auto& m : all) {
        EXPECT_EQ(m.find(kToken), std::string::npos) << m;
        EXPECT_EQ(m.find("SeCrEt"), std::string::npos) << m;
    }
}

TEST(HubDownload, UnsafeNamesFromTheServerAreRefused) {
    FakeHub h("unsafe");
    REQUIRE_HUB(h);
    make_tiny_model(h);
    for (const std::string bad : {"../evil.safetensors", "/etc/evil.safetensors", "a\\..\\evil.safetensors",
                                  "sub/../../evil.safetensors"}) {
        h.control({{"extra_siblings", {bad}}});
        const std::string m = message_of([&] { hub::resolve_model_repo("org/tiny", h.settings()); });
        EXPECT_NE(m.find("refused"), std::string::npos) << bad << ": " << m;
    }
    EXPECT_FALSE(fs::exists(h.cache() / "evil.safetensors"));
    EXPECT_FALSE(fs::exists(h.cache().parent_path() / "evil.safetensors"));
}

TEST(HubDownload, DatasetTrainSplitFiles) {
    FakeHub h("dataset");
    REQUIRE_HUB(h);
    h.put("datasets", "org/ds", "data/train-00000-of-00002.parquet", "PAR1 fake 0 PAR1");
    h.put("datasets", "org/ds", "data/train-00001-of-00002.parquet", "PAR1 fake 1 PAR1");
    h.put("datasets", "org/ds", "data/test-00000-of-00001.parquet", "PAR1 test PAR1");
    h.put("datasets", "org/ds", "README.md", "# dataset card");
    const auto files = hub::resolve_dataset_files("org/ds", {}, h.settings());
    ASSERT_EQ(files.size(), 2u);
    EXPECT_EQ(files[0].filename(), "train-00000-of-00002.parquet");
    EXPECT_EQ(slurp(files[1]), "PAR1 fake 1 PAR1");
    EXPECT_NE(files[0].string().find("datasets--org--ds/snapshots/"), std::string::npos) << files[0];
    const auto test = hub::resolve_dataset_files("org/ds", {"test"}, h.settings());
    ASSERT_EQ(test.size(), 1u);
    EXPECT_EQ(test[0].filename(), "test-00000-of-00001.parquet");
    auto off = h.settings();
    off.offline = true;
    EXPECT_EQ(hub::resolve_dataset_files("org/ds", {}, off), files);
}

TEST(HubDatasetFiles, SplitSelectionFollowsHfDatasets) {
    using V = std::vector<std::string>;
    EXPECT_EQ(hub::select_dataset_files({"README.md", "data/train-00000-of-00001-4746b8785c874cc7.parquet"}, {}),
              V{"data/train-00000-of-00001-4746b8785c874cc7.parquet"});
    // no split keyword anywhere: everything is train
    EXPECT_EQ(hub::select_dataset_files({"b.jsonl", "a.jsonl", "notes.txt"}, {}), (V{"a.jsonl", "b.jsonl"}));
    EXPECT_EQ(hub::select_dataset_files({"train.jsonl", "validation.jsonl", "test.jsonl"}, {"validation"}),
              V{"validation.jsonl"});
    EXPECT_EQ(hub::select_dataset_files({"train/0.parquet", "dev/0.parquet"}, {"validation"}), V{"dev/0.parquet"});
    EXPECT_EQ(hub::select_dataset_files({"train.jsonl", "test.jsonl"}, {"train", "test"}),
              (V{"train.jsonl", "test.jsonl"}));
    // "constrained" contains "train" but not as a word
    EXPECT_EQ(hub::select_dataset_files({"constrained.jsonl", "test.jsonl"}, {"train"}), V{});
    EXPECT_TRUE(hub::select_dataset_files({"dataset_infos.json", "README.md"}, {}).empty());
}

TEST(HubModelFiles, OnlyWhatAModelNeeds) {
    for (const char* f : {"config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                          "tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
                          "chat_template.json", "preprocessor_config.json", "video_preprocessor_config.json",
                          "processor_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                          "README.md", "LICENSE", "LICENSE.txt", "LICENSE.md", "license", "LICENCE", "LICENSE-MODEL"})
        EXPECT_TRUE(hub::is_model_file(f)) << f;
    for (const char* f : {"pytorch_model.bin", "onnx/model.safetensors", ".gitattributes", "model.gguf",
                          "docs/README.md", "sub/LICENSE", "README_zh.md", "LICENSES_OF_DATA.json.bak2x", "LICENSEE",
                          "figures/benchmark.png", "USE_POLICY.md"})
        EXPECT_FALSE(hub::is_model_file(f)) << f;
    // tokenize needs no weights
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                          "chat_template.jinja"})
        EXPECT_TRUE(hub::is_tokenizer_file(f)) << f;
    for (const char* f : {"model.safetensors", "model.safetensors.index.json", "README.md", "LICENSE"})
        EXPECT_FALSE(hub::is_tokenizer_file(f)) << f;
}

// A vision-language repo: the card, the license and the processor files come with the model, the rest
// (other weight formats, pictures, sub-folders) does not.
TEST(HubModelFiles, SnapshotFetchesCardLicenseAndProcessorFiles) {
    FakeHub h("vlfiles");
    REQUIRE_HUB(h);
    const std::vector<std::string> wanted = {
        "LICENSE",          "README.md",         "chat_template.jinja", "chat_template.json",
        "config.json",      "model.safetensors", "preprocessor_config.json", "processor_config.json",
        "tokenizer.json",   "video_preprocessor_config.json"};
    for (const std::string& f : wanted)
        h.put("models", "org/vl", f, f == "model.safetensors" ? weights(300) : "{\"f\":1}");
    for (const char* f : {"pytorch_model.bin", "figures/arch.png", "onnx/model.onnx", "notes.txt"})
        h.put("models", "org/vl", f, "unwanted");
    hub::HubClient c(h.settings());
    std::vector<std::string> chosen;
    const fs::path dir =
        c.download_snapshot(hub::parse_repo_ref("org/vl", hub::RepoType::Model, "--model"), hub::is_model_file, &chosen);
    EXPECT_EQ(chosen, wanted);
    for (const std::string& f : wanted) EXPECT_TRUE(fs::exists(dir / f)) << f;
    for (const char* f : {"pytorch_model.bin", "figures", "onnx", "notes.txt"})
        EXPECT_FALSE(fs::exists(dir / f)) << f;
    // the tokenizer-only choice (tokenize --model org/vl) downloads no weights
    FakeHub h2("vltok");
    REQUIRE_HUB(h2);
    for (const std::string& f : wanted) h2.put("models", "org/vl", f, f == "model.safetensors" ? weights(300) : "{}");
    const fs::path tdir = hub::resolve_model_repo("org/vl", h2.settings(), hub::is_tokenizer_file);
    EXPECT_TRUE(fs::exists(tdir / "tokenizer.json"));
    EXPECT_TRUE(fs::exists(tdir / "chat_template.jinja"));
    EXPECT_FALSE(fs::exists(tdir / "model.safetensors"));
    EXPECT_EQ(count_requests(h2, "GET", "/cdn/"), 0u);
}
