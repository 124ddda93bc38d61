// hub/repo_id.h — Hugging Face repo ids, revisions and repo-relative file names.
//
// Why this file exists: every Hub request and every cache path is built from three user- or
// server-supplied strings (repo id, revision, file name). They are parsed and validated here, once,
// so that nothing downstream can be steered outside the cache folder or to an unintended URL
// (spec: ../shared/docs/hf-hub-protocol.md §1, §2.1, §3).
//   * repo id   "org/name" (or a bare "name" for legacy canonical repos), each part of
//               [A-Za-z0-9._-], no "--", no leading/trailing '.' or '-', at most 96 chars;
//   * revision  a branch, tag, "refs/pr/N" or a full 40-hex commit (default "main");
//   * file name a relative POSIX path: no "..", no ".", no empty part, no leading '/', no '\\',
//               no NUL or control characters — anything else is refused (a hostile server could
//               otherwise write outside the cache through a crafted listing).
#pragma once

#include <string>
#include <string_view>

namespace autoround::hub {

enum class RepoType { Model, Dataset, Space };

std::string_view repo_type_name(RepoType t);     // "model", "dataset", "space"
std::string_view repo_type_plural(RepoType t);   // "models", "datasets", "spaces" (API paths, cache)
std::string_view repo_type_url_prefix(RepoType t);  // "", "datasets/", "spaces/" (resolve URLs)

struct RepoRef {
    RepoType type = RepoType::Model;
    std::string id;               // "org/name"
    std::string revision = "main";
    bool revision_given = false;  // true when the user wrote "@rev"
};

// Parses "org/name[@revision]". `what` names the flag in errors ("--model", "--dataset").
RepoRef parse_repo_ref(std::string_view text, RepoType type, std::string_view what);
// True if `text` has the shape of a repo id (used to tell ids from mistyped local paths).
bool looks_like_repo_id(std::string_view text);

bool is_commit_hash(std::string_view s);   // ^[0-9a-f]{40}$
bool is_sha256_hex(std::string_view s);    // ^[0-9a-f]{64}$

// Throws Error unless `rev` is a usable revision (no "..", no control chars, not empty).
void check_revision(std::string_view rev, std::string_view what);
// Throws Error unless `path` is a safe relative file name inside a repo; `source` says where it
// came from ("the server's file listing", "--folder") for the message.
void check_repo_path(std::string_view path, std::string_view source);

// Python's urllib.parse.quote: `safe` characters and [A-Za-z0-9_.~-] stay, the rest is %XX.
std::string url_quote(std::string_view s, std::string_view safe = "/");

}  // namespace autoround::hub
