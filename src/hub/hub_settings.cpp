// hub/hub_settings.cpp — see hub_settings.h.
#include "hub/hub_settings.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace autoround::hub {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

bool env_true(const char* name) {
    std::string v = env(name);
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v == "1" || v == "true" || v == "yes" || v == "on";
}

double env_seconds(const char* name, double dflt) {
    const std::string v = env(name);
    if (v.empty()) return dflt;
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    check(end && *end == '\0' && d > 0 && d < 1e6, name, "=", v, " is not a positive number of seconds");
    return d;
}

std::string strip(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t b = 0;
    while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    return s.substr(b);
}

fs::path hf_home() {
    const std::string h = env("HF_HOME");
    if (!h.empty()) return h;
    const std::string xdg = env("XDG_CACHE_HOME");
    if (!xdg.empty()) return fs::path(xdg) / "huggingface";
    const std::string home = env("HOME");
    return fs::path(home.empty() ? "/tmp" : home) / ".cache" / "huggingface";
}

std::string& token_override() {
    static std::string t;
    return t;
}

}  // namespace

void set_token_override(const std::string& token) { token_override() = token; }

HubSettings hub_settings_from_env(const std::string& token_flag) {
    HubSettings s;
    std::string ep = env("HF_ENDPOINT");
    if (!ep.empty()) s.endpoint = ep;
    while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
    check(s.endpoint.rfind("http://", 0) == 0 || s.endpoint.rfind("https://", 0) == 0, "HF_ENDPOINT=", ep,
          " is not an http(s) URL");

    if (!token_flag.empty()) {
        s.token = strip(token_flag);
    } else if (!token_override().empty()) {
        s.token = strip(token_override());
    } else if (!env("HF_TOKEN").empty()) {
        s.token = strip(env("HF_TOKEN"));
    } else {
        const std::string tp = env("HF_TOKEN_PATH");
        const fs::path token_path = tp.empty() ? hf_home() / "token" : fs::path(tp);
        std::ifstream f(token_path);
        if (f) {
            std::ostringstream ss;
            ss << f.rdbuf();
            s.token = strip(ss.str());
        }
    }
    for (char c : s.token)
        check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f,
              "the Hugging Face token (--token, HF_TOKEN or the token file) contains whitespace or a control "
              "character; paste it again");

    if (!env("HF_HUB_CACHE").empty()) s.cache_dir = env("HF_HUB_CACHE");
    else if (!env("HUGGINGFACE_HUB_CACHE").empty()) s.cache_dir = env("HUGGINGFACE_HUB_CACHE");
    else s.cache_dir = hf_home() / "hub";

    s.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
    s.etag_timeout_s = env_seconds("HF_HUB_ETAG_TIMEOUT", 10);
    s.download_timeout_s = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
    s.disable_symlinks = env_true("HF_HUB_DISABLE_SYMLINKS");
    if (env_true("HF_HUB_DISABLE_PROGRESS_BARS")) s.progress = false;
    return s;
}

}  // namespace autoround::hub
