// tests/hub/test_hf_cache.cpp — hub/ without a server: repo ids and revisions, path safety, URL
// quoting, SHA-256 test vectors, the environment (HF_HOME / HF_HUB_CACHE / HF_ENDPOINT / HF_TOKEN),
// and offline resolution on a cache laid out by hand the way Python's huggingface_hub writes it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "hub/hf_cache.h"
#include "hub/hub_settings.h"
#include "hub/repo_id.h"
#include "hub/sha256.h"

namespace fs = std::filesystem;
namespace hub = autoround::hub;
using autoround::Error;

TEST(HubRepoId, ParsesIdsAndRevisions) {
    auto r = hub::parse_repo_ref("Qwen/Qwen3-4B-Instruct-2507", hub::RepoType::Model, "--model");
    EXPECT_EQ(r.id, "Qwen/Qwen3-4B-Instruct-2507");
    EXPECT_EQ(r.revision, "main");
    EXPECT_FALSE(r.revision_given);
    r = hub::parse_repo_ref("NeelNanda/pile-10k@refs/pr/3", hub::RepoType::Dataset, "--dataset");
    EXPECT_EQ(r.revision, "refs/pr/3");
    EXPECT_TRUE(r.revision_given);
    for (const char* bad : {"a/b/c", "/abs", "a/..", "a/b@", "a/b@../x", "-a/b", "a--b/c", "a/b c", ""})
        EXPECT_THROW(hub::parse_repo_ref(bad, hub::RepoType::Model, "--model"), Error) << bad;
    EXPECT_TRUE(hub::looks_like_repo_id("org/name@v1"));
    EXPECT_FALSE(hub::looks_like_repo_id("./models/x"));
    EXPECT_FALSE(hub::looks_like_repo_id("../shared/models/qwen3-nano"));
    EXPECT_FALSE(hub::looks_like_repo_id("qwen3-nano"));
    EXPECT_TRUE(hub::is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
    EXPECT_FALSE(hub::is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
}

TEST(HubRepoId, RefusesUnsafeFileNames) {
    for (const char* ok : {"config.json", "sub/dir/model.safetensors", "a..b.txt", "..hidden/x"})
        EXPECT_NO_THROW(hub::check_repo_path(ok, "test")) << ok;
    for (const char* bad : {"../x", "a/../../x", "/etc/passwd", "a\\b", "a//b", "./a", "a/.", "", "a/\n"}) {
        try {
            hub::check_repo_path(bad, "the server's listing");
            ADD_FAILURE() << "accepted " << bad;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
        }
    }
}

TEST(HubRepoId, UrlQuoteMatchesPython) {
    EXPECT_EQ(hub::url_quote("refs/pr/3", ""), "refs%2Fpr%2F3");
    EXPECT_EQ(hub::url_quote("sub dir/a+b.json"), "sub%20dir/a%2Bb.json");
    EXPECT_EQ(hub::url_quote("~_.-"), "~_.-");
}

TEST(HubSha256, TestVectors) {
    EXPECT_EQ(hub::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hub::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hub::sha256_hex(std::string(1000000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(HubSettings, EnvironmentVariables) {
    const fs::path home = fs::temp_directory_path() / ("ar_hfhome_" + std::to_string(::getpid()));
    fs::create_directories(home);
    std::ofstream(home / "token") << "hf_fromfile\n";
    ::setenv("HF_HOME", home.c_str(), 1);
    ::unsetenv("HF_HUB_CACHE");
    ::unsetenv("HUGGINGFACE_HUB_CACHE");
    ::unsetenv("HF_TOKEN");
    ::unsetenv("HF_TOKEN_PATH");
    ::setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
    ::setenv("HF_HUB_OFFLINE", "1", 1);
    auto s = hub::hub_settings_from_env();
    EXPECT_EQ(s.cache_dir, home / "hub");
    EXPECT_EQ(s.token, "hf_fromfile");
    EXPECT_EQ(s.endpoint, "http://127.0.0.1:9");
    EXPECT_TRUE(s.offline);
    ::setenv("HF_HUB_CACHE", "/tmp/elsewhere", 1);
    ::setenv("HF_TOKEN", "hf_fromenv", 1);
    s = hub::hub_settings_from_env();
    EXPECT_EQ(s.cache_dir, fs::path("/tmp/elsewhere"));
    EXPECT_EQ(s.token, "hf_fromenv");
    EXPECT_EQ(hub::hub_settings_from_env("hf_flag").token, "hf_flag");
    for (const char* v : {"HF_HOME", "HF_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"}) ::unsetenv(v);
    fs::remove_all(home);
}

TEST(HubCache, ResolvesAPythonWrittenCacheOffline) {
    const fs::path root = fs::temp_directory_path() / ("ar_hfcache_" + std::to_string(::getpid()));
    fs::remove_all(root);
    const std::string commit = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd";
    const fs::path repo = root / "models--Qwen--Qwen3-0.6B";
    fs::create_directories(repo / "blobs");
    fs::create_directories(repo / "refs");
    fs::create_directories(repo / "snapshots" / commit / "sub");
    std::ofstream(repo / "refs" / "main") << commit;  // no newline, as Python writes it
    std::ofstream(repo / "blobs" / "e1") << "{}";
    std::ofstream(repo / "blobs" / "e2") << "x";
    fs::create_symlink("../../blobs/e1", repo / "snapshots" / commit / "config.json");
    fs::create_symlink("../../../blobs/e2", repo / "snapshots" / commit / "sub" / "f.txt");
    fs::create_directories(repo / ".no_exist" / commit);
    std::ofstream(repo / ".no_exist" / commit / "generation_config.json");

    hub::HfCache cache(root);
    const auto r = hub::parse_repo_ref("Qwen/Qwen3-0.6B", hub::RepoType::Model, "--model");
    EXPECT_EQ(cache.repo_dir(r), repo);
    EXPECT_EQ(cache.cached_commit(r), commit);
    EXPECT_EQ(hub::resolve_cached_file(cache, r, "config.json", "offline"), repo / "snapshots" / commit / "config.json");
    EXPECT_EQ(cache.lookup(r, commit, "sub/f.txt").state, hub::HfCache::State::Found);
    EXPECT_EQ(cache.lookup(r, commit, "generation_config.json").state, hub::HfCache::State::KnownMissing);
    EXPECT_EQ(cache.snapshot_files(r, commit), (std::vector<std::string>{"config.json", "sub/f.txt"}));
    try {
        hub::resolve_cached_file(cache, r, "model.safetensors", "HF_HUB_OFFLINE=1");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("HF_HUB_OFFLINE=1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(hub::resolve_cached_file(cache, r, "../../etc/passwd", "offline"), Error);
    // a 40-hex revision needs no ref; a dataset repo has its own folder
    const auto pinned = hub::parse_repo_ref("Qwen/Qwen3-0.6B@" + commit, hub::RepoType::Model, "--model");
    EXPECT_EQ(cache.cached_commit(pinned), commit);
    EXPECT_EQ(hub::HfCache::repo_folder_name(hub::RepoType::Dataset, "NeelNanda/pile-10k"), "datasets--NeelNanda--pile-10k");
    // writing: refs without newline, relative links one ../ deeper per folder
    const auto other = hub::parse_repo_ref("org/x@dev", hub::RepoType::Model, "--model");
    cache.write_ref(other, commit);
    std::ifstream f(cache.repo_dir(other) / "refs" / "dev");
    std::string content((std::istreambuf_iterator<char>(f)), {});
    EXPECT_EQ(content, commit);
    fs::create_directories(cache.repo_dir(other) / "blobs");
    std::ofstream(cache.blob_path(other, "e9")) << "z";
    cache.link_snapshot(other, commit, "a/b/c.txt", "e9", false);
    EXPECT_EQ(fs::read_symlink(cache.snapshot_path(other, commit, "a/b/c.txt")).string(), "../../../../blobs/e9");
    fs::remove_all(root);
}
