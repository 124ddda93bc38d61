// hub/hub_settings.h — the Hub client's settings, read from the same environment variables as
// Python's huggingface_hub so that both tools share one cache, one token and one endpoint
// (../shared/docs/hf-hub-protocol.md §1 and §3):
//   HF_ENDPOINT (default https://huggingface.co, trailing '/' stripped)
//   HF_TOKEN, else the file $HF_TOKEN_PATH (default $HF_HOME/token); --token overrides both
//   HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
//   else ~/.cache/huggingface/hub
//   HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1: no HTTP at all, the cache only
//   HF_HUB_ETAG_TIMEOUT (metadata requests, default 10 s), HF_HUB_DOWNLOAD_TIMEOUT (GET, default 10 s;
//   a stall timeout, not a cap on the whole transfer)
//   HF_HUB_DISABLE_SYMLINKS=1: real copies in snapshots/ instead of links
// The token is held here and put into one request header; it never appears in a message.
#pragma once

#include <filesystem>
#include <string>

namespace autoround::hub {

struct HubSettings {
    std::string endpoint = "https://huggingface.co";
    std::string token;                 // empty = anonymous
    std::filesystem::path cache_dir;   // the hub cache root (holds models--org--name/ ...)
    bool offline = false;
    double etag_timeout_s = 10;
    double download_timeout_s = 10;
    bool disable_symlinks = false;
    int max_workers = 8;               // files downloaded in parallel
    int max_retries = 4;               // on 408/429/5xx and connection errors
    double retry_base_delay_s = 1.0;   // doubled per retry (tests set it small)
    bool progress = true;              // progress bar on stderr
};

// Settings from the environment; a non-empty `token_flag` (--token) replaces HF_TOKEN, and so does
// a process-wide token set with set_token_override() (the CLI's --token, for calls deep in the library).
HubSettings hub_settings_from_env(const std::string& token_flag = "");
void set_token_override(const std::string& token);

}  // namespace autoround::hub
