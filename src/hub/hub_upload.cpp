// hub/hub_upload.cpp — see hub_upload.h.
#include "hub/hub_upload.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress_bar.h"
#include "hub/hub_download.h"
#include "hub/http_client.h"
#include "hub/sha256.h"

namespace autoround::hub {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string base64_encode(std::string_view in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
        out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
    }
    if (i + 1 == in.size()) {
        const uint32_t v = uint32_t(uint8_t(in[i])) << 16;
        out += {tbl[v >> 18], tbl[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
        out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
    }
    return out;
}

namespace {

struct LocalFile {
    std::string path;      // in the repo
    fs::path local;
    uint64_t size = 0;
    bool lfs = false, ignore = false;
    std::string oid;       // sha256 (LFS files)
};

std::string read_range(const fs::path& p, uint64_t offset, uint64_t n) {
    std::ifstream f(p, std::ios::binary);
    check(static_cast<bool>(f), "cannot open ", p.string(), " to upload it");
    f.seekg(static_cast<std::streamoff>(offset));
    std::string s(n, '\0');
    f.read(s.data(), static_cast<std::streamsize>(n));
    check(static_cast<uint64_t>(f.gcount()) == n, "cannot read ", p.string(), " (did it change during the upload?)");
    return s;
}

std::vector<LocalFile> collect(const fs::path& folder) {
    std::error_code ec;
    check(fs::is_directory(folder, ec), "--folder ", folder.string(), ": not a directory");
    std::vector<LocalFile> out;
    for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {  // .git, .cache, .DS_Store ...
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (!fs::is_regular_file(it->path(), ec)) continue;
        LocalFile f;
        f.local = it->path();
        f.path = fs::relative(it->path(), folder, ec).generic_string();
        check_repo_path(f.path, "--folder " + folder.string());
        f.size = fs::file_size(it->path(), ec);
        out.push_back(std::move(f));
    }
    check(!ec, "cannot list --folder ", folder.string(), ": ", ec.message());
    check(!out.empty(), "--folder ", folder.string(), " holds no file to upload");
    std::sort(out.begin(), out.end(), [](const LocalFile& a, const LocalFile& b) { return a.path < b.path; });
    return out;
}

json parse_json(const HttpResponse& r, const std::string& what) {
    try {
        return json::parse(r.body);
    } catch (const json::exception& e) {
        fail(what, ": the Hub sent invalid JSON (", e.what(), ")");
    }
}

bool ok(const HttpResponse& r) { return r.status >= 200 && r.status < 300; }

}  // namespace

PushResult push_folder(const PushOptions& opt, const HubSettings& s) {
    check(!s.offline, "HF_HUB_OFFLINE=1 is set: pushing needs the network");
    check(!s.token.empty(), "pushing to the Hub needs a token with write access: set HF_TOKEN or pass --token");
    const RepoRef repo = parse_repo_ref(opt.repo, opt.type, "--repo");
    check(repo.id.find('/') != std::string::npos, "--repo ", opt.repo, ": give user/name (or org/name)");
    check(!repo.revision_given, "--repo ", opt.repo, ": give the branch with --revision, not '@'");
    check_revision(opt.revision, "--revision");
    std::vector<LocalFile> files = collect(opt.folder);

    HubClient client(s);
    PushResult result;
    const std::string api = s.endpoint + "/api/" + std::string(repo_type_plural(opt.type)) + "/" + repo.id;
    auto post_json = [&](const std::string& url, const json& body, const std::string& what, Headers extra = {}) {
        HttpRequest req;
        req.method = "POST";
        req.url = url;
        req.headers = client.hub_headers();
        req.headers.emplace_back("content-type", "application/json");
        for (auto& h : extra) req.headers.push_back(h);
        req.body = body.dump();
        req.connect_timeout_s = req.stall_timeout_s = std::max(30.0, s.download_timeout_s);
        return client.send_with_retries(req, what);
    };

    // 1. create the repo (409: it exists)
    {
        const size_t slash = repo.id.find('/');
        json body = {{"name", repo.id.substr(slash + 1)},
                     {"organization", repo.id.substr(0, slash)},
                     {"visibility", opt.private_repo ? "private" : "public"}};
        if (opt.type != RepoType::Model) body["type"] = std::string(repo_type_name(opt.type));
        const std::string what = "creating " + std::string(repo_type_name(opt.type)) + " repo " + repo.id;
        for (int attempt = 0;; ++attempt) {
            const HttpResponse r = post_json(s.endpoint + "/api/repos/create", body, what);
            if (ok(r)) {
                result.created = true;
                break;
            }
            if (r.status == 409) {
                if (r.body.find("conflicting operation in progress") != std::string::npos && attempt < s.max_retries)
                    continue;
                break;  // exists: fine
            }
            hub_raise_for_status(r, s.endpoint + "/api/repos/create", what);
        }
    }

    // 2. preupload: which files go through LFS
    for (size_t b = 0; b < files.size(); b += 256) {
        json list = json::array();
        for (size_t i = b; i < std::min(files.size(), b + 256); ++i)
            list.push_back({{"path", files[i].path},
                            {"sample", base64_encode(read_range(files[i].local, 0, std::min<uint64_t>(512, files[i].size)))},
                            {"size", files[i].size}});
        const std::string url = api + "/preupload/" + url_quote(opt.revision, "");
        const std::string what = "preupload of " + repo.id;
        const HttpResponse r = post_json(url, {{"files", list}}, what);
        if (!ok(r)) hub_raise_for_status(r, url, what);
        const json j = parse_json(r, what);
        check(j.contains("files") && j["files"].is_array(), what, ": the Hub's answer has no 'files'");
        for (const auto& f : j["files"]) {
            check(f.is_object() && f.contains("path") && f["path"].is_string(), what, ": malformed 'files' entry");
            const auto it = std::find_if(files.begin(), files.end(), [&](const LocalFile& x) { return x.path == f["path"]; });
            check(it != files.end(), what, ": the Hub answered for a file that was not sent: ", f["path"].get<std::string>());
            it->lfs = f.value("uploadMode", "regular") == "lfs" && it->size > 0;
            it->ignore = f.value("shouldIgnore", false);
        }
    }
    files.erase(std::remove_if(files.begin(), files.end(), [](const LocalFile& f) { return f.ignore; }), files.end());
    check(!files.empty(), "every file of --folder ", opt.folder.string(), " is ignored by the repo's .gitignore");

    // 3. LFS: hash, batch, upload
    std::vector<LocalFile*> lfs;
    uint64_t lfs_bytes = 0;
    for (auto& f : files)
        if (f.lfs) {
            f.oid = sha256_file(f.local);
            lfs.push_back(&f);
            lfs_bytes += f.size;
        }
    result.lfs_files = lfs.size();
    std::unique_ptr<ProgressBar> bar;
    if (s.progress && lfs_bytes > 0) bar = std::make_unique<ProgressBar>("upload", static_cast<int64_t>(lfs_bytes), "B");
    uint64_t sent = 0;
    const Headers lfs_headers = {{"accept", "application/vnd.git-lfs+json"},
                                 {"content-type", "application/vnd.git-lfs+json"}};
    for (size_t b = 0; b < lfs.size(); b += 256) {
        json objects = json::array();
        for (size_t i = b; i < std::min(lfs.size(), b + 256); ++i)
            objects.push_back({{"oid", lfs[i]->oid}, {"size", lfs[i]->size}});
        const json body = {{"operation", "upload"},
                           {"transfers", {"basic", "multipart"}},
                           {"objects", objects},
                           {"hash_algo", "sha256"},
                           {"ref", {{"name", opt.revision}}}};
        const std::string url =
            s.endpoint + "/" + std::string(repo_type_url_prefix(opt.type)) + repo.id + ".git/info/lfs/objects/batch";
        const std::string what = "LFS batch request for " + repo.id;
        HttpRequest req;
        req.method = "POST";
        req.url = url;
        req.headers = client.hub_headers();
        for (const auto& h : lfs_headers) req.headers.push_back(h);
        req.body = body.dump();
        req.connect_timeout_s = req.stall_timeout_s = std::max(30.0, s.download_timeout_s);
        const HttpResponse r = client.send_with_retries(req, what);
        if (!ok(r)) hub_raise_for_status(r, url, what);
        const json j = parse_json(r, what);
        check(j.contains("objects") && j["objects"].is_array(), what, ": the answer has no 'objects'");
        for (const auto& o : j["objects"]) {
            check(o.is_object() && o.contains("oid") && o["oid"].is_string(), what, ": malformed 'objects' entry");
            const std::string oid = o["oid"];
            const auto it = std::find_if(lfs.begin() + b, lfs.begin() + std::min(lfs.size(), b + 256),
                                         [&](LocalFile* f) { return f->oid == oid; });
            check(it != lfs.begin() + std::min(lfs.size(), b + 256), what, ": the answer names an object not asked for");
            LocalFile& f = **it;
            const std::string fwhat = "upload of " + f.path + " to " + repo.id;
            if (o.contains("error")) {
                const auto& e = o["error"];
                fail(fwhat, ": the Hub refused it (", e.value("code", 0), ": ", e.value("message", std::string("?")), ")");
            }
            if (!o.contains("actions") || !o["actions"].is_object() || !o["actions"].contains("upload")) {
                sent += f.size;  // already stored on the Hub
                if (bar) bar->update(static_cast<int64_t>(sent));
                continue;
            }
            const json& up = o["actions"]["upload"];
            check(up.contains("href") && up["href"].is_string(), fwhat, ": the upload action has no href");
            const std::string href = up["href"];
            const json header = up.value("header", json::object());
            if (header.is_object() && header.contains("chunk_size")) {  // multipart
                uint64_t chunk = 0;
                if (header["chunk_size"].is_string()) chunk = std::stoull(header["chunk_size"].get<std::string>());
                else if (header["chunk_size"].is_number_unsigned()) chunk = header["chunk_size"].get<uint64_t>();
                check(chunk > 0, fwhat, ": invalid multipart chunk_size");
                const uint64_t nparts = (f.size + chunk - 1) / chunk;
                size_t urls = 0;
                for (const auto& [k, v] : header.items())
                    if (k != "chunk_size") ++urls;
                check(urls == nparts, fwhat, ": the Hub sent ", urls, " part URLs for ", nparts, " parts of ", chunk,
                      " bytes");
                json parts = json::array();
                for (uint64_t p = 1; p <= nparts; ++p) {
                    const std::string key = std::to_string(p);
                    check(header.contains(key) && header[key].is_string(), fwhat, ": no URL for part ", p);
                    HttpRequest put;
                    put.method = "PUT";
                    put.url = header[key];
                    put.body_file = f.local;
                    put.body_offset = (p - 1) * chunk;
                    put.body_size = std::min<uint64_t>(chunk, f.size - put.body_offset);
                    put.connect_timeout_s = put.stall_timeout_s = std::max(60.0, s.download_timeout_s);
                    const HttpResponse pr = client.send_with_retries(put, fwhat);
                    if (!ok(pr)) hub_raise_for_status(pr, put.url, fwhat + " (part " + key + ")");
                    const std::string etag = pr.header("etag").value_or("");
                    check(!etag.empty(), fwhat, ": the storage sent no ETag for part ", p);
                    std::string e = etag;
                    e.erase(std::remove(e.begin(), e.end(), '"'), e.end());
                    parts.push_back({{"partNumber", p}, {"etag", e}});
                    sent += put.body_size;
                    if (bar) bar->update(static_cast<int64_t>(sent));
                }
                HttpRequest done;
                done.method = "POST";
                done.url = href;
                done.headers = lfs_headers;
                done.body = json{{"oid", f.oid}, {"parts", parts}}.dump();
                const HttpResponse dr = client.send_with_retries(done, fwhat);
                if (!ok(dr)) hub_raise_for_status(dr, href, fwhat + " (completing the multipart upload)");
            } else {  // basic
                HttpRequest put;
                put.method = "PUT";
                put.url = href;
                put.body_file = f.local;
                put.body_size = f.size;
                put.connect_timeout_s = put.stall_timeout_s = std::max(60.0, s.download_timeout_s);
                if (header.is_object())
                    for (const auto& [k, v] : header.items())
                        if (v.is_string()) put.headers.emplace_back(k, v.get<std::string>());
                const HttpResponse pr = client.send_with_retries(put, fwhat);
                if (!ok(pr)) hub_raise_for_status(pr, href, fwhat);
                sent += f.size;
                if (bar) bar->update(static_cast<int64_t>(sent));
            }
            ++result.lfs_uploaded;
            if (o["actions"].contains("verify")) {
                const json& v = o["actions"]["verify"];
                check(v.contains("href") && v["href"].is_string(), fwhat, ": the verify action has no href");
                HttpRequest vr;
                vr.method = "POST";
                vr.url = v["href"];
                vr.headers = client.hub_headers();
                for (const auto& h : lfs_headers) vr.headers.push_back(h);
                vr.body = json{{"oid", f.oid}, {"size", f.size}}.dump();
                const HttpResponse r2 = client.send_with_retries(vr, fwhat);
                if (!ok(r2)) hub_raise_for_status(r2, vr.url, fwhat + " (LFS verify)");
            }
        }
    }
    if (bar) bar->finish();

    // 4. the commit
    std::string ndjson;
    const std::string summary =
        opt.commit_message.empty() ? "Upload " + fs::absolute(opt.folder).lexically_normal().filename().string() +
                                         " with autoround.cpp"
                                   : opt.commit_message;
    ndjson += json{{"key", "header"}, {"value", {{"summary", summary}, {"description", opt.commit_description}}}}.dump() + "\n";
    for (const auto& f : files) {
        if (f.lfs)
            ndjson += json{{"key", "lfsFile"},
                           {"value", {{"path", f.path}, {"algo", "sha256"}, {"oid", f.oid}, {"size", f.size}}}}
                          .dump() +
                      "\n";
        else
            ndjson += json{{"key", "file"},
                           {"value", {{"content", base64_encode(read_range(f.local, 0, f.size))},
                                      {"path", f.path},
                                      {"encoding", "base64"}}}}
                          .dump() +
                      "\n";
    }
    const std::string url = api + "/commit/" + url_quote(opt.revision, "");
    const std::string what = "commit to " + repo.id + "@" + opt.revision;
    HttpRequest req;
    req.method = "POST";
    req.url = url;
    req.headers = client.hub_headers();
    req.headers.emplace_back("content-type", "application/x-ndjson");
    req.body = std::move(ndjson);
    req.connect_timeout_s = req.stall_timeout_s = std::max(60.0, s.download_timeout_s);
    const HttpResponse r = client.send_with_retries(req, what);
    if (!ok(r)) hub_raise_for_status(r, url, what);
    const json j = parse_json(r, what);
    result.commit_url = j.value("commitUrl", "");
    result.commit_oid = j.value("commitOid", "");
    result.files = files.size();
    return result;
}

}  // namespace autoround::hub
