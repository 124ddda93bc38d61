// cli/common.cpp — see common.h.
#include "cli/common.h"

#include <omp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

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
    check(std::filesystem::is_directory(p), "--model ", arg,
          ": not a directory; pass a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
    check(std::filesystem::exists(p / "config.json"), "--model ", arg, ": no config.json in this folder");
    return p;
}

void set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

}  // namespace autoround::cli
