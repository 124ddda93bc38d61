// cli/cmd_push.cpp — `autoround push`: upload a folder (e.g. a quantized model) to the Hugging Face
// Hub as one commit: create the repo if needed, preupload, LFS upload of the weights (multipart for
// large files), NDJSON commit — hub/hub_upload.h has the protocol.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "hub/hub_settings.h"
#include "hub/hub_upload.h"

namespace autoround::cli {

void add_push_command(CLI::App& root) {
    struct Args {
        std::string repo, folder, revision = "main", message, description, token, type = "model";
        bool private_repo = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = root.add_subcommand("push", "Upload a folder to the Hugging Face Hub (one commit)");
    c->add_option("--repo", a->repo, "Target repo, user/name (created if missing)")->required();
    c->add_option("--folder", a->folder, "Folder to upload (every file below it; hidden files skipped)")
        ->required()
        ->check(CLI::ExistingDirectory);
    c->add_flag("--private", a->private_repo, "Create the repo as private (an existing repo keeps its visibility)");
    c->add_option("--revision", a->revision, "Branch to commit to")->capture_default_str();
    c->add_option("--commit_message", a->message, "Commit title (default: Upload <folder> with autoround.cpp)");
    c->add_option("--commit_description", a->description, "Commit description");
    c->add_option("--repo_type", a->type, "model or dataset")->check(CLI::IsMember({"model", "dataset"}))
        ->capture_default_str();
    c->add_option("--token", a->token, "Hugging Face token with write access (default: HF_TOKEN or the token file)");
    c->callback([a] {
        hub::PushOptions o;
        o.repo = a->repo;
        o.folder = a->folder;
        o.type = a->type == "dataset" ? hub::RepoType::Dataset : hub::RepoType::Model;
        o.private_repo = a->private_repo;
        o.revision = a->revision;
        o.commit_message = a->message;
        o.commit_description = a->description;
        const hub::PushResult r = hub::push_folder(o, hub::hub_settings_from_env(a->token));
        std::printf("pushed %zu files (%zu via LFS, %zu uploaded) to %s%s\n%s\n", r.files, r.lfs_files, r.lfs_uploaded,
                    a->repo.c_str(), r.created ? " (new repo)" : "", r.commit_url.c_str());
    });
}

}  // namespace autoround::cli
