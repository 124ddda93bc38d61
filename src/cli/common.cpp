// cli/common.cpp — see common.h.
#include "cli/common.h"

#include <omp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "hub/hub_download.h"
#include "hub/hub_settings.h"
#include "ops/cuda/device_info.h"

namespace autoround::cli {

std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    check(static_cast<bool>(f), "cannot open ", path.string(), ": ", std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    check(!f.bad(), "error reading ", path.string());
    return ss.str();
}

std::filesystem::path model_dir_arg(const std::string& arg) {
    std::filesystem::path p(arg);
    std::error_code ec;
    if (!std::filesystem::exists(p, ec) && hub::looks_like_repo_id(arg)) return resolve_model_arg(arg);
    check(std::filesystem::is_directory(p), "--model ", arg,
          ": not a directory; pass a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
    check(std::filesystem::exists(p / "config.json"), "--model ", arg, ": no config.json in this folder");
    return p;
}

std::filesystem::path resolve_model_arg(const std::string& arg) {
    std::error_code ec;
    if (std::filesystem::exists(arg, ec) || !hub::looks_like_repo_id(arg)) return model_dir_arg(arg);
    std::filesystem::path dir;
    try {
        dir = hub::resolve_model_repo(arg, hub::hub_settings_from_env());
    } catch (const Error& e) {
        fail("--model ", arg, " is not a local folder, so it was taken as a Hugging Face model id: ", e.what());
    }
    check(std::filesystem::exists(dir / "config.json"), "--model ", arg, ": no config.json in ", dir.string());
    return dir;
}

void set_hub_token(const std::string& token) { hub::set_token_override(token); }

std::string resolve_device(const std::string& flag) {
    std::string device = flag;
    if (device == "auto") device = cuda_available() ? "cuda" : "cpu";
    if (device == "0" || device == "cuda:0") device = "cuda";
    check(device == "cpu" || device == "cuda", "--device ", flag, ": expected cpu, cuda (cuda:0, 0) or auto; one GPU is used");
    if (device == "cuda")
        check(cuda_available(), "--device cuda: no usable CUDA device",
              cuda_list_devices().empty() ? " (none visible, or this autoround was built without -DAUTOROUND_CUDA=ON)" : "",
              "; use --device cpu");
    return device;
}

void set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

}  // namespace autoround::cli
