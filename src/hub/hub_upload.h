// hub/hub_upload.h — uploading a folder to the Hugging Face Hub as one commit
// (../shared/docs/hf-hub-protocol.md §4), as huggingface_hub's upload_folder does without Xet:
//   1. POST /api/repos/create {"name","organization","visibility"[,"type"]}; 409 = exists (fine);
//   2. POST /api/{type}s/{repo}/preupload/{rev} {"files":[{"path","sample"(base64 of the first 512
//      bytes),"size"}]} in chunks of 256 -> uploadMode "lfs" | "regular" (shouldIgnore honoured);
//   3. LFS files: POST {endpoint}/{prefix}{repo}.git/info/lfs/objects/batch (git-lfs+json, operation
//      upload, transfers basic+multipart, sha256 oids, ref) -> per object: no actions = already
//      stored; basic = PUT the bytes to upload.href (no Hub auth); multipart = PUT each chunk_size
//      slice to header["1"], ["2"], ... collecting ETags, then POST {"oid","parts":[...]} to
//      upload.href; then POST verify.href {"oid","size"} with the auth header when given;
//   4. POST /api/{type}s/{repo}/commit/{rev} with NDJSON: a header line, `file` lines (base64 content)
//      for regular files, `lfsFile` lines (sha256 oid, size) for LFS files.
// A token with write access is required; it goes only into Hub request headers.
#pragma once

#include <filesystem>
#include <string>

#include "hub/hub_settings.h"
#include "hub/repo_id.h"

namespace autoround::hub {

struct PushOptions {
    std::string repo;                 // "user/name"
    std::filesystem::path folder;     // every file below it (hidden files and folders skipped)
    RepoType type = RepoType::Model;
    bool private_repo = false;
    std::string revision = "main";
    std::string commit_message;       // default: "Upload <folder name> with autoround.cpp"
    std::string commit_description;
};

struct PushResult {
    std::string commit_url, commit_oid;
    size_t files = 0, lfs_files = 0, lfs_uploaded = 0;  // uploaded = not already on the Hub
    bool created = false;                                // the repo was created by this push
};

PushResult push_folder(const PushOptions& opt, const HubSettings& s);

std::string base64_encode(std::string_view bytes);

}  // namespace autoround::hub
