// hub/hf_cache.h — the Hugging Face Hub cache on disk, laid out exactly as Python's huggingface_hub
// lays it out (../shared/docs/hf-hub-protocol.md §3), so that files downloaded by either tool are
// reused by the other:
//
//   <cache>/CACHEDIR.TAG
//   <cache>/models--org--name/blobs/<etag>                file content (etag = git sha1 or LFS sha256)
//   <cache>/models--org--name/blobs/<etag>.incomplete     a download in progress (resumed with Range)
//   <cache>/models--org--name/refs/<revision>             the 40-hex commit, no newline
//   <cache>/models--org--name/snapshots/<commit>/<path>   relative symlink ../../blobs/<etag>
//   <cache>/models--org--name/.no_exist/<commit>/<path>   empty marker: the file is known not to exist
//   <cache>/.locks/models--org--name/<etag>.lock          one downloader per blob across processes
// (datasets--org--name/ for dataset repos). Offline resolution: a 40-hex revision is its own commit,
// otherwise refs/<revision> gives it; then snapshots/<commit>/<path>, then .no_exist; else a miss.
// Every file name is checked by check_repo_path() before it becomes a path.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/repo_id.h"

namespace autoround::hub {

class HfCache {
public:
    explicit HfCache(std::filesystem::path root) : root_(std::move(root)) {}

    const std::filesystem::path& root() const { return root_; }
    // "models--org--name" / "datasets--org--name"
    static std::string repo_folder_name(RepoType type, std::string_view id);
    std::filesystem::path repo_dir(const RepoRef& r) const;
    std::filesystem::path blob_path(const RepoRef& r, std::string_view etag) const;
    std::filesystem::path incomplete_path(const RepoRef& r, std::string_view etag) const;
    std::filesystem::path lock_path(const RepoRef& r, std::string_view etag) const;
    std::filesystem::path snapshot_dir(const RepoRef& r, std::string_view commit) const;
    std::filesystem::path snapshot_path(const RepoRef& r, std::string_view commit, std::string_view file) const;

    // The commit a revision points to without network: the revision itself when it is 40-hex,
    // else the content of refs/<revision> (if that file exists and holds a commit hash).
    std::optional<std::string> cached_commit(const RepoRef& r) const;

    enum class State { Found, KnownMissing, Miss };
    struct Lookup {
        State state = State::Miss;
        std::filesystem::path path;   // the snapshot file when Found
    };
    Lookup lookup(const RepoRef& r, std::string_view commit, std::string_view file) const;

    // Files present in snapshots/<commit>/ (relative names, sorted; links and copies both count).
    std::vector<std::string> snapshot_files(const RepoRef& r, std::string_view commit) const;

    // Writes refs/<revision> = commit atomically, without newline; nothing when revision is a commit.
    void write_ref(const RepoRef& r, std::string_view commit) const;
    // Points snapshots/<commit>/<file> at blobs/<etag> (relative symlink, or a copy when symlinks
    // are disabled or fail); replaces whatever was there.
    void link_snapshot(const RepoRef& r, std::string_view commit, std::string_view file, std::string_view etag,
                       bool copy_instead) const;
    void mark_missing(const RepoRef& r, std::string_view commit, std::string_view file) const;
    // Creates the root with a CACHEDIR.TAG (as huggingface_hub does); errors name the folder.
    void ensure_root() const;

private:
    std::filesystem::path root_;
};

// Resolves `file` of `r` from the cache alone; throws Error naming the file, the repo, the cache
// folder and what to do (used for HF_HUB_OFFLINE=1 and as the fallback when the Hub is unreachable).
std::filesystem::path resolve_cached_file(const HfCache& cache, const RepoRef& r, std::string_view file,
                                          std::string_view why_offline);

// Writes `data` to `path` through a temp file + rename (readers never see a partial file).
void write_file_atomic(const std::filesystem::path& path, std::string_view data);

}  // namespace autoround::hub
