// hub/hf_cache.cpp — see hf_cache.h.
#include "hub/hf_cache.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace autoround::hub {
namespace fs = std::filesystem;

namespace {

std::string read_small_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) return {};
    std::string s(256, '\0');
    f.read(s.data(), static_cast<std::streamsize>(s.size()));
    s.resize(static_cast<size_t>(f.gcount()));
    return s;
}

void make_dirs(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    check(!ec, "cannot create cache folder ", dir.string(), ": ", ec.message(),
          " (set HF_HUB_CACHE or HF_HOME to a writable folder)");
}

}  // namespace

std::string HfCache::repo_folder_name(RepoType type, std::string_view id) {
    std::string out(repo_type_plural(type));
    out += "--";
    for (char c : id) {
        if (c == '/') out += "--";
        else out.push_back(c);
    }
    return out;
}

fs::path HfCache::repo_dir(const RepoRef& r) const { return root_ / repo_folder_name(r.type, r.id); }

fs::path HfCache::blob_path(const RepoRef& r, std::string_view etag) const {
    check(!etag.empty() && etag.find('/') == std::string_view::npos && etag.find("..") == std::string_view::npos &&
              etag.find('\\') == std::string_view::npos,
          "the Hub sent an unusable ETag for ", r.id, " (refused as a cache file name)");
    return repo_dir(r) / "blobs" / std::string(etag);
}

fs::path HfCache::incomplete_path(const RepoRef& r, std::string_view etag) const {
    fs::path p = blob_path(r, etag);
    p += ".incomplete";
    return p;
}

fs::path HfCache::lock_path(const RepoRef& r, std::string_view etag) const {
    (void)blob_path(r, etag);  // validates the etag
    return root_ / ".locks" / repo_folder_name(r.type, r.id) / (std::string(etag) + ".lock");
}

fs::path HfCache::snapshot_dir(const RepoRef& r, std::string_view commit) const {
    check(is_commit_hash(commit), "not a commit hash: '", commit, "' for ", r.id);
    return repo_dir(r) / "snapshots" / std::string(commit);
}

fs::path HfCache::snapshot_path(const RepoRef& r, std::string_view commit, std::string_view file) const {
    check_repo_path(file, "file '" + std::string(file) + "' of " + r.id);
    return snapshot_dir(r, commit) / std::string(file);
}

std::optional<std::string> HfCache::cached_commit(const RepoRef& r) const {
    if (is_commit_hash(r.revision)) return r.revision;
    check_revision(r.revision, r.id);
    std::string c = read_small_file(repo_dir(r) / "refs" / r.revision);
    while (!c.empty() && std::isspace(static_cast<unsigned char>(c.back()))) c.pop_back();
    if (is_commit_hash(c)) return c;
    return std::nullopt;
}

HfCache::Lookup HfCache::lookup(const RepoRef& r, std::string_view commit, std::string_view file) const {
    Lookup out;
    const fs::path p = snapshot_path(r, commit, file);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {  // follows the symlink: a dangling link is a miss
        out.state = State::Found;
        out.path = p;
        return out;
    }
    if (fs::exists(repo_dir(r) / ".no_exist" / std::string(commit) / std::string(file), ec))
        out.state = State::KnownMissing;
    return out;
}

std::vector<std::string> HfCache::snapshot_files(const RepoRef& r, std::string_view commit) const {
    std::vector<std::string> out;
    const fs::path dir = snapshot_dir(r, commit);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (fs::is_regular_file(it->path(), ec)) out.push_back(it->path().lexically_relative(dir).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void write_file_atomic(const fs::path& path, std::string_view data) {
    make_dirs(path.parent_path());
    fs::path tmp = path;
    tmp += ".tmp" + std::to_string(::getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        check(static_cast<bool>(f), "cannot write ", tmp.string(), " (is the cache folder writable?)");
        f.write(data.data(), static_cast<std::streamsize>(data.size()));
        check(static_cast<bool>(f), "error writing ", tmp.string(), " (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        fail("cannot rename a temporary file to ", path.string());
    }
}

void HfCache::write_ref(const RepoRef& r, std::string_view commit) const {
    if (is_commit_hash(r.revision)) return;
    check(is_commit_hash(commit), "the Hub sent an invalid commit hash for ", r.id, "@", r.revision);
    check_revision(r.revision, r.id);
    write_file_atomic(repo_dir(r) / "refs" / r.revision, commit);
}

void HfCache::link_snapshot(const RepoRef& r, std::string_view commit, std::string_view file, std::string_view etag,
                            bool copy_instead) const {
    const fs::path dst = snapshot_path(r, commit, file);
    const fs::path blob = blob_path(r, etag);
    make_dirs(dst.parent_path());
    std::error_code ec;
    fs::remove(dst, ec);
    if (!copy_instead) {
        // ../../blobs/<etag> for a top-level file, one more ../ per subfolder
        std::string rel = "../../";
        for (char c : file)
            if (c == '/') rel += "../";
        rel += "blobs/" + std::string(etag);
        fs::create_symlink(rel, dst, ec);
        if (!ec) return;
    }
    fs::copy_file(blob, dst, fs::copy_options::overwrite_existing, ec);
    check(!ec, "cannot place ", dst.string(), " in the cache: ", ec.message());
}

void HfCache::mark_missing(const RepoRef& r, std::string_view commit, std::string_view file) const {
    check_repo_path(file, r.id);
    check(is_commit_hash(commit), "the Hub sent an invalid commit hash for ", r.id);
    const fs::path p = repo_dir(r) / ".no_exist" / std::string(commit) / std::string(file);
    make_dirs(p.parent_path());
    std::ofstream f(p, std::ios::binary | std::ios::app);
}

void HfCache::ensure_root() const {
    make_dirs(root_);
    const fs::path tag = root_ / "CACHEDIR.TAG";
    std::error_code ec;
    if (!fs::exists(tag, ec)) {
        std::ofstream f(tag, std::ios::binary);
        f << "Signature: 8a477f597d28d172789f06886806bc55\n"
             "# This file is a cache directory tag created by huggingface_hub (written by autoround.cpp).\n"
             "# For information about cache directory tags, see: https://bford.info/cachedir/\n";
    }
}

fs::path resolve_cached_file(const HfCache& cache, const RepoRef& r, std::string_view file, std::string_view why) {
    check_repo_path(file, "file '" + std::string(file) + "' of " + r.id);
    const std::string what = std::string(repo_type_name(r.type)) + " " + r.id + "@" + r.revision;
    const std::optional<std::string> commit = cache.cached_commit(r);
    check(commit.has_value(), why, ": ", file, " of ", what, " is not in the cache (", cache.repo_dir(r).string(),
          " has no refs/", r.revision,
          "); run once with network access to download it, or pass a local folder instead");
    const HfCache::Lookup l = cache.lookup(r, *commit, file);
    if (l.state == HfCache::State::Found) return l.path;
    fail(why, ": ", file, " of ", what, " is not in the cache (",
         l.state == HfCache::State::KnownMissing ? "the repo has no such file" : "missing",
         ": ", cache.snapshot_dir(r, *commit).string(), "/", file,
         "); run once with network access to download it, or pass a local folder instead");
}

}  // namespace autoround::hub
