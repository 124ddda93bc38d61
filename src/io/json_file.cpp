// io/json_file.cpp — read_json_file: one place that turns a JSON file on disk into nlohmann::json.
//
// Why: every config reader needs the same failure messages (missing file, unreadable file,
// invalid JSON with line and column), each naming the file so the user knows what to fix.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"

namespace autoround {

nlohmann::json read_json_file(const std::filesystem::path& path) {
    std::error_code ec;
    check(std::filesystem::exists(path, ec), "file not found: ", path.string());
    check(!std::filesystem::is_directory(path, ec), path.string(), " is a folder, expected a JSON file");
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        fail("cannot open ", path.string(), ": ", std::strerror(err), " (check the file permissions)");
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    check(!in.bad(), "cannot read ", path.string(), " (I/O error)");
    const std::string text = ss.str();
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        // Translate the byte offset into line:column for the message.
        const size_t pos = e.byte == 0 ? 0 : std::min<size_t>(e.byte - 1, text.size());
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos; ++i) {
            if (text[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        fail(path.string(), ": invalid JSON at line ", line, ", column ", col, " (", e.what(),
             "); fix or re-download the file");
    }
}

}  // namespace autoround
