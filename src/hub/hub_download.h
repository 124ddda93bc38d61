// hub/hub_download.h — downloading from the Hugging Face Hub into the shared cache
// (../shared/docs/hf-hub-protocol.md §2 and §3), as Python's hf_hub_download / snapshot_download do.
//
// One file (download_file):
//   1. HF_HUB_OFFLINE=1: the cache only (hf_cache.h), an error naming the missing file otherwise;
//      a 40-hex revision whose snapshot file exists is also served without any request;
//   2. metadata HEAD on {endpoint}/{prefix}{repo}/resolve/{rev}/{file} with Accept-Encoding:
//      identity, redirects not followed: a relative Location (renamed repo) is re-requested, an
//      absolute one is the download URL; X-Repo-Commit (required), X-Linked-Etag or ETag (W/ and
//      quotes stripped), X-Linked-Size or Content-Length; 404 EntryNotFound -> .no_exist marker;
//   3. refs/<revision> <- commit; a blob already present (right size) is only linked;
//   4. GET into blobs/<etag>.incomplete (resumed with Range: bytes=N-; a 200 instead of 206 restarts
//      from zero), the Authorization header dropped when the download host differs from the Hub's,
//      retries with backoff on connection errors, 408, 429 and 5xx; the size is checked, and the
//      SHA-256 when the etag is one (LFS files) — a mismatch deletes the bytes and fetches once more,
//      then fails; rename to blobs/<etag>, relative symlink snapshots/<commit>/<file>.
//   A per-blob file lock (.locks/...) keeps two processes from writing the same blob.
//   When the Hub cannot be reached at all, a file already in the cache is used (with a warning).
// A snapshot (download_snapshot): GET /api/{type}s/{repo}/revision/{rev} lists the files and the
// commit; the chosen files are fetched in parallel (HubSettings::max_workers threads) with one
// progress bar, each by commit hash, so a second run costs one listing request and no download.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/hf_cache.h"
#include "hub/hub_settings.h"
#include "hub/http_client.h"
#include "hub/repo_id.h"

namespace autoround::hub {

struct RepoFile {
    std::string path;                      // relative name in the repo (checked by check_repo_path)
    int64_t size = -1;                     // -1 when the listing has no size
    std::optional<std::string> lfs_sha256; // LFS files
};

struct RepoListing {
    std::string commit;                    // 40-hex
    std::vector<RepoFile> files;
};

struct FileMetadata {
    std::string commit, etag, download_url;
    int64_t size = -1;
};

class HubClient {
public:
    explicit HubClient(HubSettings settings);
    const HubSettings& settings() const { return s_; }
    const HfCache& cache() const { return cache_; }

    // The local path of `file` of `r` (a snapshot path in the cache), downloading it if needed.
    std::filesystem::path download_file(const RepoRef& r, const std::string& file);
    // The file list and commit of a revision (network; throws in offline mode).
    RepoListing list_files(const RepoRef& r);
    // HEAD metadata of one file (network).
    FileMetadata file_metadata(const RepoRef& r, const std::string& file);
    // Downloads the files `want` selects; returns the snapshot folder and fills `chosen` (sorted).
    // Offline: the cached snapshot of the revision, filtered the same way (error if absent).
    std::filesystem::path download_snapshot(const RepoRef& r, const std::function<bool(const std::string&)>& want,
                                            std::vector<std::string>* chosen = nullptr);

    // Headers of every Hub request: user-agent, and authorization when a token is set.
    Headers hub_headers() const;
    // GET/POST against the Hub API with retries on 408/429/5xx and connection errors; the final
    // response is returned whatever its status (callers use hub_raise_for_status).
    HttpResponse send_with_retries(HttpRequest req, const std::string& what) const;

private:
    struct Progress;
    std::filesystem::path fetch_blob(const RepoRef& r, const std::string& file, const FileMetadata& m,
                                     Progress* progress);
    std::string resolve_url(const RepoRef& r, const std::string& file) const;

    HubSettings s_;
    HfCache cache_;
};

// Files a model folder needs: config, weights (*.safetensors + index), tokenizer, generation,
// processor/chat-template and quantization configs, and the model card (README.md: license, base
// model) and LICENSE* files — top-level files only.
bool is_model_file(const std::string& path);
// The subset a tokenizer needs (`autoround tokenize`): config.json and the tokenizer / chat-template
// files, no weights.
bool is_tokenizer_file(const std::string& path);

// Resolves `org/name[@rev]` to a model folder in the cache, downloading the files `want` selects that
// are missing; the repo must have a top-level config.json. `flag` names the option in errors.
std::filesystem::path resolve_model_repo(const std::string& id_and_rev, const HubSettings& s,
                                         const std::function<bool(const std::string&)>& want = is_model_file,
                                         std::string_view flag = "--model");

// The data files of a dataset repo for the given splits (default "train"), in the order HF
// datasets reads them: split by split, names sorted; one format (the most common of .parquet,
// .jsonl, .json, .txt). Downloads them (or reads the cache when offline) and returns local paths.
std::vector<std::filesystem::path> resolve_dataset_files(const std::string& id_and_rev,
                                                         const std::vector<std::string>& splits,
                                                         const HubSettings& s);
// The selection rule alone (for tests): which of `files` belong to the splits, in read order.
std::vector<std::string> select_dataset_files(const std::vector<std::string>& files,
                                              const std::vector<std::string>& splits);

}  // namespace autoround::hub
