// hub/repo_id.cpp — see repo_id.h.
#include "hub/repo_id.h"

#include <cctype>

#include "core/error.h"

namespace autoround::hub {

std::string_view repo_type_name(RepoType t) {
    switch (t) {
        case RepoType::Dataset: return "dataset";
        case RepoType::Space: return "space";
        default: return "model";
    }
}

std::string_view repo_type_plural(RepoType t) {
    switch (t) {
        case RepoType::Dataset: return "datasets";
        case RepoType::Space: return "spaces";
        default: return "models";
    }
}

std::string_view repo_type_url_prefix(RepoType t) {
    switch (t) {
        case RepoType::Dataset: return "datasets/";
        case RepoType::Space: return "spaces/";
        default: return "";
    }
}

namespace {

bool id_part_ok(std::string_view p) {
    if (p.empty() || p.size() > 96) return false;
    for (char c : p)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    if (p.front() == '.' || p.front() == '-' || p.back() == '.' || p.back() == '-') return false;
    if (p.find("--") != std::string_view::npos || p.find("..") != std::string_view::npos) return false;
    return true;
}

bool all_hex_lower(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

bool is_commit_hash(std::string_view s) { return s.size() == 40 && all_hex_lower(s); }
bool is_sha256_hex(std::string_view s) { return s.size() == 64 && all_hex_lower(s); }

bool looks_like_repo_id(std::string_view text) {
    const size_t at = text.find('@');
    const std::string_view id = text.substr(0, at);
    const size_t slash = id.find('/');
    if (slash == std::string_view::npos) return false;
    return id_part_ok(id.substr(0, slash)) && id_part_ok(id.substr(slash + 1));
}

void check_revision(std::string_view rev, std::string_view what) {
    check(!rev.empty(), what, ": the revision after '@' is empty (give a branch, tag or 40-hex commit)");
    check(rev.size() <= 256, what, ": revision is longer than 256 characters");
    for (char c : rev)
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && c != '\\', what, ": revision '", rev,
              "' contains a control character or backslash");
    check(rev.find("..") == std::string_view::npos && rev.front() != '/' && rev.back() != '/', what, ": revision '", rev,
          "' is not a valid branch, tag or commit");
}

RepoRef parse_repo_ref(std::string_view text, RepoType type, std::string_view what) {
    RepoRef r;
    r.type = type;
    const size_t at = text.find('@');
    const std::string_view id = text.substr(0, at);
    if (at != std::string_view::npos) {
        r.revision = std::string(text.substr(at + 1));
        r.revision_given = true;
        check_revision(r.revision, what);
    }
    const size_t slash = id.find('/');
    const bool ok = slash == std::string_view::npos
                        ? id_part_ok(id)
                        : id.find('/', slash + 1) == std::string_view::npos && id_part_ok(id.substr(0, slash)) &&
                              id_part_ok(id.substr(slash + 1));
    check(ok, what, " '", text, "' is not a Hugging Face ", repo_type_name(type),
          " id: expected org/name[@revision] (letters, digits, '-', '_', '.'), or a local folder that exists");
    r.id = std::string(id);
    return r;
}

void check_repo_path(std::string_view path, std::string_view source) {
    check(!path.empty(), source, ": empty file name refused");
    check(path.size() <= 4096, source, ": file name longer than 4096 bytes refused");
    for (char c : path)
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, source, ": file name with a control character refused");
    check(path.front() != '/', source, ": absolute file name '", path, "' refused (repo files are relative paths)");
    check(path.find('\\') == std::string_view::npos, source, ": file name '", path, "' with a backslash refused");
    size_t start = 0;
    for (;;) {
        const size_t p = path.find('/', start);
        const std::string_view part = path.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start);
        check(!part.empty() && part != "." && part != "..", source, ": file name '", path,
              "' refused: it has an empty, '.' or '..' part (it could point outside the cache folder)");
        if (p == std::string_view::npos) break;
        start = p + 1;
    }
}

std::string url_quote(std::string_view s, std::string_view safe) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || safe.find(ch) != std::string_view::npos) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace autoround::hub
