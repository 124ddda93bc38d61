// hub/hub_download.cpp — see hub_download.h.
#include "hub/hub_download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress_bar.h"
#include "hub/http_client.h"
#include "hub/sha256.h"

namespace autoround::hub {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int64_t kMaxDownloadSize = int64_t(50) * 1000 * 1000 * 1000;  // MAX_HTTP_DOWNLOAD_SIZE
const char* kUserAgent = "autoround.cpp/0.1.0; hf_hub/compatible";

std::string normalize_etag(std::string e) {
    if (e.rfind("W/", 0) == 0) e = e.substr(2);
    e.erase(std::remove(e.begin(), e.end(), '"'), e.end());
    return e;
}

bool retryable_status(long s) { return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string what_of(const RepoRef& r) { return std::string(repo_type_name(r.type)) + " " + r.id + "@" + r.revision; }

std::optional<int64_t> parse_i64(const std::optional<std::string>& s) {
    if (!s || s->empty()) return std::nullopt;
    char* end = nullptr;
    const long long v = std::strtoll(s->c_str(), &end, 10);
    if (!end || *end != '\0' || v < 0) return std::nullopt;
    return static_cast<int64_t>(v);
}

// An exclusive advisory lock on a file (released by the destructor).
class FileLock {
public:
    explicit FileLock(const fs::path& p) {
        std::error_code ec;
        fs::create_directories(p.parent_path(), ec);
        fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        check(fd_ >= 0, "cannot create the lock file ", p.string(), " (is the cache folder writable?)");
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno != EINTR) break;
        }
    }
    ~FileLock() {
        if (fd_ >= 0) {
            ::flock(fd_, LOCK_UN);
            ::close(fd_);
        }
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    int fd_ = -1;
};

int64_t file_size_or(const fs::path& p, int64_t dflt) {
    std::error_code ec;
    const auto n = fs::file_size(p, ec);
    return ec ? dflt : static_cast<int64_t>(n);
}

}  // namespace

// Bytes done across all files of one snapshot download, drawn by one bar.
struct HubClient::Progress {
    std::mutex mu;
    std::unique_ptr<ProgressBar> bar;
    std::atomic<int64_t> done{0};
    int64_t total = 0;
    void add(int64_t n) {
        const int64_t now = done.fetch_add(n) + n;
        if (!bar || now >= total) return;  // the last draw is finish()'s
        std::unique_lock lock(mu, std::try_to_lock);
        if (lock.owns_lock()) bar->update(now);
    }
};

HubClient::HubClient(HubSettings settings) : s_(std::move(settings)), cache_(s_.cache_dir) {}

Headers HubClient::hub_headers() const {
    Headers h{{"user-agent", kUserAgent}};
    if (!s_.token.empty()) h.emplace_back("authorization", "Bearer " + s_.token);
    return h;
}

std::string HubClient::resolve_url(const RepoRef& r, const std::string& file) const {
    return s_.endpoint + "/" + std::string(repo_type_url_prefix(r.type)) + r.id + "/resolve/" +
           url_quote(r.revision, "") + "/" + url_quote(file);
}

HttpResponse HubClient::send_with_retries(HttpRequest req, const std::string& what) const {
    for (int attempt = 0;; ++attempt) {
        try {
            HttpResponse resp = http_request(req);
            if (!retryable_status(resp.status) || attempt >= s_.max_retries) return resp;
        } catch (const TransportError& e) {
            if (attempt >= s_.max_retries || !e.retryable()) throw;
        }
        sleep_s(s_.retry_base_delay_s * double(1 << std::min(attempt, 6)));
    }
}

FileMetadata HubClient::file_metadata(const RepoRef& r, const std::string& file) {
    check_repo_path(file, "file '" + file + "' of " + r.id);
    const std::string what = "file " + file + " of " + what_of(r);
    std::string url = resolve_url(r, file);
    const std::string hub_origin = url_origin(url);
    for (int hop = 0; hop < 10; ++hop) {
        HttpRequest req;
        req.method = "HEAD";
        req.url = url;
        req.headers = hub_headers();
        req.headers.emplace_back("accept-encoding", "identity");
        req.connect_timeout_s = req.stall_timeout_s = s_.etag_timeout_s;
        const HttpResponse resp = send_with_retries(req, what);
        const bool redirect = resp.status >= 300 && resp.status < 400;
        if (redirect) {
            const std::string loc = resp.header("location").value_or("");
            check(!loc.empty(), what, ": the Hub answered HTTP ", resp.status, " without a Location header");
            if (loc.front() == '/' && (loc.size() < 2 || loc[1] != '/')) {  // no host: a renamed repo
                url = hub_origin + loc;
                continue;
            }
            if (!resp.header("x-repo-commit")) {  // a redirect that is not the Hub's answer: follow it
                check(loc.rfind("http://", 0) == 0 || loc.rfind("https://", 0) == 0, what,
                      ": redirect to an unsupported location");
                url = loc;
                continue;
            }
        } else if (resp.status < 200 || resp.status >= 300) {
            if (resp.status == 404 && resp.header("x-error-code").value_or("") == "EntryNotFound") {
                const std::string c = resp.header("x-repo-commit").value_or("");
                if (is_commit_hash(c)) {
                    cache_.write_ref(r, c);
                    cache_.mark_missing(r, c, file);
                }
            }
            hub_raise_for_status(resp, url, what);
        }
        FileMetadata m;
        m.commit = resp.header("x-repo-commit").value_or("");
        check(!m.commit.empty(), what, ": the server at ", s_.endpoint,
              " sent no X-Repo-Commit header, so it is not a Hugging Face Hub (check HF_ENDPOINT)");
        check(is_commit_hash(m.commit), what, ": the Hub sent an invalid X-Repo-Commit");
        m.etag = normalize_etag(resp.header("x-linked-etag").value_or(resp.header("etag").value_or("")));
        check(!m.etag.empty(), what, ": the Hub sent no ETag, so the file cannot be cached");
        (void)cache_.blob_path(r, m.etag);  // validates the etag as a file name
        std::optional<int64_t> size = parse_i64(resp.header("x-linked-size"));
        if (!size && !redirect) size = parse_i64(resp.header("content-length"));
        check(size.has_value(), what, ": the Hub sent no file size (X-Linked-Size / Content-Length)");
        m.size = *size;
        check(m.size <= kMaxDownloadSize, what, " is ", m.size, " bytes, above the 50 GB download limit");
        m.download_url = redirect ? resp.header("location").value_or(url) : url;
        return m;
    }
    fail(what, ": too many redirects from the Hub");
}

fs::path HubClient::fetch_blob(const RepoRef& r, const std::string& file, const FileMetadata& m, Progress* progress) {
    const std::string what = "file " + file + " of " + what_of(r);
    const fs::path blob = cache_.blob_path(r, m.etag);
    if (file_size_or(blob, -1) == m.size) return blob;

    FileLock lock(cache_.lock_path(r, m.etag));
    std::error_code ec;
    if (file_size_or(blob, -1) == m.size) return blob;  // another process finished it meanwhile
    fs::remove(blob, ec);                                 // wrong size: a damaged blob, fetch again
    const fs::path inc = cache_.incomplete_path(r, m.etag);
    fs::create_directories(inc.parent_path(), ec);
    check(!ec, "cannot create cache folder ", inc.parent_path().string(), ": ", ec.message());

    const bool same_host = url_origin(m.download_url) == url_origin(s_.endpoint);
    const bool lfs = is_sha256_hex(m.etag);
    int transport_failures = 0, sha_failures = 0, status_retries = 0;
    int64_t reported = 0;  // bytes of this file already counted in the progress bar
    for (;;) {
        int64_t have = file_size_or(inc, 0);
        if (have > m.size) {
            fs::resize_file(inc, 0, ec);
            have = 0;
        }
        if (progress && have != reported) {
            progress->add(have - reported);
            reported = have;
        }
        HttpResponse resp;
        bool transport_error = false;
        if (have < m.size || m.size == 0) {
            std::FILE* out = std::fopen(inc.c_str(), have > 0 ? "ab" : "wb");
            check(out != nullptr, "cannot write ", inc.string(), " (is the cache folder writable? disk full?)");
            HttpRequest req;
            req.url = m.download_url;
            req.follow_redirects = true;
            req.connect_timeout_s = req.stall_timeout_s = s_.download_timeout_s;
            req.headers = {{"user-agent", kUserAgent}, {"accept-encoding", "identity"}};
            if (same_host && !s_.token.empty()) req.headers.emplace_back("authorization", "Bearer " + s_.token);
            if (have > 0) req.headers.emplace_back("range", "bytes=" + std::to_string(have) + "-");
            bool write_failed = false;
            req.on_status = [&](long status) {
                if (status == 200 && have > 0) {  // the server ignored Range: start over
                    out = std::freopen(inc.c_str(), "wb", out);
                    if (progress) progress->add(-reported);
                    reported = 0;
                    have = 0;
                }
            };
            req.on_data = [&](const char* d, size_t n) {
                if (!out || std::fwrite(d, 1, n, out) != n) {
                    write_failed = true;
                    return false;
                }
                if (progress) progress->add(static_cast<int64_t>(n));
                reported += static_cast<int64_t>(n);
                return true;
            };
            try {
                resp = http_request(req);
            } catch (const TransportError& e) {
                transport_error = true;
                if (out) std::fclose(out);
                out = nullptr;
                if (++transport_failures > std::max(s_.max_retries, 5) || !e.retryable()) throw;
            } catch (...) {
                if (out) std::fclose(out);
                if (write_failed) fail("cannot write ", inc.string(), " (disk full?)");
                throw;
            }
            if (out && std::fclose(out) != 0) write_failed = true;
            check(!write_failed, "cannot write ", inc.string(), " (disk full?)");
            if (transport_error) {
                sleep_s(s_.retry_base_delay_s);
                continue;  // resume from what arrived
            }
            if (resp.status == 416) {  // range not satisfiable: start over
                fs::resize_file(inc, 0, ec);
                if (++status_retries > s_.max_retries) hub_raise_for_status(resp, m.download_url, what);
                continue;
            }
            if (resp.status < 200 || resp.status >= 300) {
                if (retryable_status(resp.status) && ++status_retries <= s_.max_retries) {
                    sleep_s(s_.retry_base_delay_s * double(1 << std::min(status_retries, 6)));
                    continue;
                }
                hub_raise_for_status(resp, m.download_url, what);
            }
        }
        const int64_t got = file_size_or(inc, 0);
        if (got < m.size) {  // the connection closed early: resume
            if (++transport_failures > std::max(s_.max_retries, 5))
                fail(what, ": the download stopped at ", got, " of ", m.size, " bytes; run again to resume");
            continue;
        }
        if (got > m.size) {
            fs::remove(inc, ec);
            fail(what, ": the server sent ", got, " bytes, but the Hub announced ", m.size,
                 " (the partial file was deleted; run again)");
        }
        if (lfs) {
            const std::string actual = sha256_file(inc);
            if (actual != m.etag) {
                fs::remove(inc, ec);
                if (progress) progress->add(-reported);
                reported = 0;
                if (++sha_failures <= 1) continue;  // fetch it once more from scratch
                fail(what, ": SHA-256 mismatch — expected ", m.etag, ", the downloaded bytes hash to ", actual,
                     "; the corrupt download was deleted (retry; if it persists the server or a proxy alters the file)");
            }
        }
        fs::rename(inc, blob, ec);
        check(!ec, "cannot move ", inc.string(), " to ", blob.string(), ": ", ec.message());
        return blob;
    }
}

fs::path HubClient::download_file(const RepoRef& r, const std::string& file) {
    check_repo_path(file, "file '" + file + "' of " + r.id);
    if (s_.offline) return resolve_cached_file(cache_, r, file, "HF_HUB_OFFLINE=1");
    if (is_commit_hash(r.revision)) {
        const HfCache::Lookup l = cache_.lookup(r, r.revision, file);
        if (l.state == HfCache::State::Found) return l.path;
    }
    FileMetadata m;
    try {
        m = file_metadata(r, file);
    } catch (const TransportError& e) {
        // The Hub is unreachable: a cached copy of the same revision is good enough (as Python does).
        const std::optional<std::string> c = cache_.cached_commit(r);
        if (c && cache_.lookup(r, *c, file).state == HfCache::State::Found) {
            std::fprintf(stderr, "warning: %s; using the cached %s of %s\n", e.what(), file.c_str(), what_of(r).c_str());
            return cache_.lookup(r, *c, file).path;
        }
        throw;
    }
    cache_.ensure_root();
    cache_.write_ref(r, m.commit);
    const HfCache::Lookup l = cache_.lookup(r, m.commit, file);
    if (l.state == HfCache::State::Found) return l.path;
    fetch_blob(r, file, m, nullptr);
    cache_.link_snapshot(r, m.commit, file, m.etag, s_.disable_symlinks);
    return cache_.snapshot_path(r, m.commit, file);
}

RepoListing HubClient::list_files(const RepoRef& r) {
    check(!s_.offline, "HF_HUB_OFFLINE=1: cannot list the files of ", what_of(r));
    const std::string url = s_.endpoint + "/api/" + std::string(repo_type_plural(r.type)) + "/" + r.id + "/revision/" +
                            url_quote(r.revision, "") + "?blobs=true";
    HttpRequest req;
    req.url = url;
    req.headers = hub_headers();
    req.follow_redirects = true;  // an API redirect (renamed repo) stays on the Hub
    req.connect_timeout_s = req.stall_timeout_s = std::max(s_.etag_timeout_s, s_.download_timeout_s);
    const std::string what = "file listing of " + what_of(r);
    const HttpResponse resp = send_with_retries(req, what);
    if (resp.status < 200 || resp.status >= 300) hub_raise_for_status(resp, url, what);
    json j;
    try {
        j = json::parse(resp.body);
    } catch (const json::exception& e) {
        fail(what, ": the Hub sent invalid JSON (", e.what(), ")");
    }
    check(j.is_object() && j.contains("sha") && j["sha"].is_string(), what, ": the Hub's answer has no commit 'sha'");
    RepoListing out;
    out.commit = j["sha"].get<std::string>();
    check(is_commit_hash(out.commit), what, ": the Hub sent an invalid commit hash");
    const auto sib = j.find("siblings");
    check(sib != j.end() && sib->is_array(), what, ": the Hub's answer has no 'siblings' list");
    for (const auto& s : *sib) {
        check(s.is_object() && s.contains("rfilename") && s["rfilename"].is_string(), what,
              ": a 'siblings' entry without 'rfilename'");
        RepoFile f;
        f.path = s["rfilename"].get<std::string>();
        check_repo_path(f.path, "the file listing of " + what_of(r));
        if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
        if (s.contains("lfs") && s["lfs"].is_object()) {
            const auto& l = s["lfs"];
            if (l.contains("sha256") && l["sha256"].is_string()) f.lfs_sha256 = l["sha256"].get<std::string>();
            if (l.contains("size") && l["size"].is_number_integer()) f.size = l["size"].get<int64_t>();
        }
        out.files.push_back(std::move(f));
    }
    return out;
}

fs::path HubClient::download_snapshot(const RepoRef& r, const std::function<bool(const std::string&)>& want,
                                      std::vector<std::string>* chosen_out) {
    std::vector<std::string> chosen;
    if (s_.offline) {
        const std::optional<std::string> c = cache_.cached_commit(r);
        check(c.has_value(), "HF_HUB_OFFLINE=1: ", what_of(r), " is not in the cache (", cache_.repo_dir(r).string(),
              " has no refs/", r.revision, "); run once with network access to download it, or pass a local folder");
        for (const std::string& f : cache_.snapshot_files(r, *c))
            if (want(f)) chosen.push_back(f);
        check(!chosen.empty(), "HF_HUB_OFFLINE=1: the cached snapshot ", cache_.snapshot_dir(r, *c).string(),
              " of ", what_of(r), " holds none of the files needed; run once with network access");
        if (chosen_out) *chosen_out = chosen;
        return cache_.snapshot_dir(r, *c);
    }

    RepoListing listing;
    try {
        listing = list_files(r);
    } catch (const TransportError& e) {
        const std::optional<std::string> c = cache_.cached_commit(r);
        if (!c || cache_.snapshot_files(r, *c).empty()) throw;
        std::fprintf(stderr, "warning: %s; using the cached snapshot of %s\n", e.what(), what_of(r).c_str());
        for (const std::string& f : cache_.snapshot_files(r, *c))
            if (want(f)) chosen.push_back(f);
        if (chosen_out) *chosen_out = chosen;
        return cache_.snapshot_dir(r, *c);
    }
    cache_.ensure_root();
    cache_.write_ref(r, listing.commit);
    RepoRef at = r;
    at.revision = listing.commit;

    std::vector<const RepoFile*> todo;
    int64_t todo_bytes = 0;
    for (const RepoFile& f : listing.files) {
        if (!want(f.path)) continue;
        chosen.push_back(f.path);
        if (cache_.lookup(at, listing.commit, f.path).state == HfCache::State::Found) continue;
        todo.push_back(&f);
        todo_bytes += std::max<int64_t>(f.size, 0);
    }
    std::sort(chosen.begin(), chosen.end());
    if (!todo.empty()) {
        Progress progress;
        if (s_.progress) {
            std::fprintf(stderr, "downloading %zu file%s (%.1f MB) of %s into %s\n", todo.size(),
                         todo.size() == 1 ? "" : "s", double(todo_bytes) / 1e6, what_of(r).c_str(),
                         cache_.repo_dir(r).string().c_str());
            progress.total = std::max<int64_t>(todo_bytes, 1);
            progress.bar = std::make_unique<ProgressBar>("download", progress.total, "B");
        }
        std::atomic<size_t> next{0};
        std::mutex err_mu;
        std::string first_error;
        auto worker = [&] {
            for (;;) {
                const size_t i = next.fetch_add(1);
                if (i >= todo.size()) return;
                {
                    std::lock_guard g(err_mu);
                    if (!first_error.empty()) return;
                }
                const RepoFile& f = *todo[i];
                try {
                    const FileMetadata m = file_metadata(at, f.path);
                    check(m.commit == listing.commit, "file ", f.path, " of ", what_of(r),
                          ": the revision moved to another commit during the download; run again");
                    if (f.lfs_sha256)
                        check(*f.lfs_sha256 == m.etag, "file ", f.path, " of ", what_of(r),
                              ": the listing's sha256 and the file's ETag differ; run again");
                    fetch_blob(at, f.path, m, &progress);
                    cache_.link_snapshot(at, listing.commit, f.path, m.etag, s_.disable_symlinks);
                } catch (const std::exception& e) {
                    std::lock_guard g(err_mu);
                    if (first_error.empty()) first_error = e.what();
                }
            }
        };
        const int n = std::max(1, std::min<int>(s_.max_workers, static_cast<int>(todo.size())));
        std::vector<std::thread> threads;
        for (int t = 0; t < n; ++t) threads.emplace_back(worker);
        for (auto& t : threads) t.join();
        if (progress.bar) {
            if (first_error.empty()) progress.bar->finish();
            else std::fputc('\n', stderr);
        }
        if (!first_error.empty()) throw Error(first_error);
    }
    if (chosen_out) *chosen_out = chosen;
    return cache_.snapshot_dir(r, listing.commit);
}

namespace {

// LICENSE, LICENSE.txt, LICENSE.md, LICENSE-MODEL, LICENCE, license.txt, ... (any case).
bool is_license_file(const std::string& name) {
    std::string up = name;
    for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (const std::string_view stem : {std::string_view("LICENSE"), std::string_view("LICENCE")}) {
        if (up.rfind(stem, 0) != 0) continue;
        if (up.size() == stem.size() || up[stem.size()] == '.' || up[stem.size()] == '-' || up[stem.size()] == '_')
            return true;
    }
    return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool is_model_file(const std::string& path) {
    if (path.find('/') != std::string::npos) return false;
    static const std::set<std::string> names = {
        "config.json",           "generation_config.json",    "model.safetensors.index.json",
        "tokenizer.json",        "tokenizer_config.json",     "special_tokens_map.json",
        "added_tokens.json",     "vocab.json",                "merges.txt",
        "tokenizer.model",       "chat_template.jinja",       "chat_template.json",
        "preprocessor_config.json", "processor_config.json",  "video_preprocessor_config.json",
        "quantization_config.json", "quantize_config.json",   "quant_config.json",
        "README.md",             // the model card: license and base model for the exported cards
    };
    return names.count(path) || is_license_file(path) || ends_with(path, ".safetensors");
}

bool is_tokenizer_file(const std::string& path) {
    if (path.find('/') != std::string::npos) return false;
    static const std::set<std::string> names = {
        "config.json",     "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.json",   "merges.txt",            "tokenizer.model",
        "chat_template.jinja", "chat_template.json",
    };
    return names.count(path) > 0;
}

fs::path resolve_model_repo(const std::string& id_and_rev, const HubSettings& s,
                            const std::function<bool(const std::string&)>& want, std::string_view flag) {
    const RepoRef r = parse_repo_ref(id_and_rev, RepoType::Model, flag);
    HubClient client(s);
    std::vector<std::string> files;
    const fs::path dir = client.download_snapshot(r, want, &files);
    check(std::find(files.begin(), files.end(), "config.json") != files.end(), flag, " ", id_and_rev,
          ": the repo has no config.json at the top level (", dir.string(), "); is it a model repo in the "
          "Hugging Face transformers layout?");
    return dir;
}

// ---- datasets ------------------------------------------------------------------------------------

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string ext_of(const std::string& path) {
    const std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    const size_t dot = name.rfind('.');
    return dot == std::string::npos ? "" : lower(name.substr(dot));
}

bool is_data_file(const std::string& path) {
    const std::string name = lower(path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1));
    if (name.empty() || name[0] == '.') return false;
    if (name == "dataset_infos.json" || name == "dataset_info.json" || name == "dataset_dict.json" ||
        name == "state.json" || name == "readme.md" || name == "license.txt" || name == "requirements.txt")
        return false;
    const std::string e = ext_of(path);
    return e == ".parquet" || e == ".jsonl" || e == ".json" || e == ".txt";
}

// HF datasets' split keywords (datasets/data_files.py: SPLIT_KEYWORDS).
const std::map<std::string, std::vector<std::string>>& split_keywords() {
    static const std::map<std::string, std::vector<std::string>> k = {
        {"train", {"train", "training"}},
        {"validation", {"validation", "valid", "dev", "val"}},
        {"test", {"test", "testing", "eval", "evaluation"}},
    };
    return k;
}

bool is_sep(char c) { return c == '-' || c == '_' || c == '.' || c == ' ' || c == '/' || (c >= '0' && c <= '9'); }

// True if `keyword` appears in `path` as a whole word: delimited by [-._ 0-9/] or the ends
// (the patterns "{kw}[-._ 0-9/]**", "**[-._ 0-9/]{kw}[-._ 0-9/]**", "{kw}/**", "**/{kw}/**").
bool path_has_keyword(const std::string& path, const std::string& keyword) {
    // the file name's extension does not count as a delimiter-delimited word at the end
    const std::string p = path.substr(0, path.size() - ext_of(path).size());
    for (size_t pos = p.find(keyword); pos != std::string::npos; pos = p.find(keyword, pos + 1)) {
        const bool left = pos == 0 || is_sep(p[pos - 1]);
        const size_t end = pos + keyword.size();
        const bool right = end == p.size() || is_sep(p[end]);
        if (left && right) return true;
    }
    return false;
}

std::vector<std::string> split_of_keywords(const std::string& split) {
    const auto& k = split_keywords();
    const auto it = k.find(split);
    return it != k.end() ? it->second : std::vector<std::string>{split};
}

}  // namespace

std::vector<std::string> select_dataset_files(const std::vector<std::string>& files,
                                              const std::vector<std::string>& splits_in) {
    const std::vector<std::string> splits = splits_in.empty() ? std::vector<std::string>{"train"} : splits_in;
    std::vector<std::string> data;
    for (const auto& f : files)
        if (is_data_file(f)) data.push_back(f);
    // one format: the most common extension (HF datasets infers one builder per dataset)
    std::map<std::string, size_t> count;
    for (const auto& f : data) ++count[ext_of(f)];
    std::string best;
    for (const char* e : {".parquet", ".jsonl", ".json", ".txt"})
        if (count[e] > (best.empty() ? 0 : count[best])) best = e;
    std::vector<std::string> fmt;
    for (const auto& f : data)
        if (ext_of(f) == best) fmt.push_back(f);
    std::sort(fmt.begin(), fmt.end());

    bool any_split_named = false;
    for (const auto& f : fmt)
        for (const auto& [split, kws] : split_keywords())
            for (const auto& kw : kws)
                if (path_has_keyword(f, kw)) any_split_named = true;
    std::vector<std::string> out;
    for (const std::string& split : splits) {
        for (const auto& f : fmt) {
            bool in = false;
            if (!any_split_named) in = split == "train";  // no split in any name: everything is train
            else
                for (const auto& kw : split_of_keywords(split)) in = in || path_has_keyword(f, kw);
            if (in && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
        }
    }
    return out;
}

std::vector<fs::path> resolve_dataset_files(const std::string& id_and_rev, const std::vector<std::string>& splits,
                                            const HubSettings& s) {
    const RepoRef r = parse_repo_ref(id_and_rev, RepoType::Dataset, "--dataset");
    HubClient client(s);
    std::vector<std::string> chosen;
    std::vector<std::string> all_files;
    if (s.offline) {
        const std::optional<std::string> c = client.cache().cached_commit(r);
        check(c.has_value(), "HF_HUB_OFFLINE=1: dataset ", r.id, "@", r.revision, " is not in the cache (",
              client.cache().repo_dir(r).string(), " has no refs/", r.revision,
              "); run once with network access to download it, or pass a local file or folder");
        all_files = client.cache().snapshot_files(r, *c);
    } else {
        try {
            for (const auto& f : client.list_files(r).files) all_files.push_back(f.path);
        } catch (const TransportError&) {
            const std::optional<std::string> c = client.cache().cached_commit(r);
            if (!c) throw;
            all_files = client.cache().snapshot_files(r, *c);
        }
    }
    const std::vector<std::string> selected = select_dataset_files(all_files, splits);
    std::string split_names;
    for (const auto& sp : splits.empty() ? std::vector<std::string>{"train"} : splits)
        split_names += (split_names.empty() ? "" : "+") + sp;
    check(!selected.empty(), "--dataset ", id_and_rev, ": the dataset repo has no .parquet/.jsonl/.json/.txt data file ",
          "for split ", split_names, " (", all_files.size(), " files listed); pick another split with ':split=NAME'");
    const std::set<std::string> want(selected.begin(), selected.end());
    const fs::path dir = client.download_snapshot(r, [&](const std::string& f) { return want.count(f) > 0; }, &chosen);
    std::vector<fs::path> out;
    for (const auto& f : selected) {
        check(std::find(chosen.begin(), chosen.end(), f) != chosen.end(), "--dataset ", id_and_rev, ": ", f,
              " is missing from the cached snapshot ", dir.string(), "; run once with network access");
        out.push_back(dir / f);
    }
    return out;
}

}  // namespace autoround::hub
