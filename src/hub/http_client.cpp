// hub/http_client.cpp — see http_client.h.
#include "hub/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>

namespace autoround::hub {

namespace {

constexpr size_t kMaxMemoryBody = size_t(64) << 20;  // responses kept in memory (JSON listings)
constexpr size_t kMaxErrorBody = size_t(64) << 10;

std::string lower(std::string_view s) {
    std::string o(s);
    for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

// A URL as it may appear in a message: without its query (pre-signed CDN URLs carry signatures).
std::string url_for_message(const std::string& url) { return url.substr(0, url.find('?')); }

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
    const HttpRequest* req = nullptr;
    HttpResponse* resp = nullptr;
    CURL* curl = nullptr;
    bool status_seen = false;
    bool streaming = false;
    bool aborted_by_sink = false;
    bool body_too_large = false;
    std::FILE* body_fp = nullptr;
    uint64_t body_left = 0;
    const char* mem_body = nullptr;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * n;
    std::string_view line(data, len);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (redirect hop or 100-continue): start over
        t->resp->headers.clear();
        t->status_seen = false;
        return len;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    t->resp->headers.emplace_back(lower(line.substr(0, colon)), std::string(value));
    return len;
}

void see_status(Transfer* t) {
    if (t->status_seen) return;
    t->status_seen = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->resp->status = code;
    t->streaming = t->req->on_data && code >= 200 && code < 300;
    if (t->req->on_status) t->req->on_status(code);
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * n;
    see_status(t);
    if (t->streaming) {
        if (!t->req->on_data(data, len)) {
            t->aborted_by_sink = true;
            return 0;  // makes curl fail with CURLE_WRITE_ERROR
        }
        return len;
    }
    const bool ok_status = t->resp->status >= 200 && t->resp->status < 300;
    const size_t cap = ok_status ? kMaxMemoryBody : kMaxErrorBody;
    if (t->resp->body.size() + len > cap) {
        if (ok_status) {
            t->body_too_large = true;
            return 0;
        }
        t->resp->body.append(data, cap - t->resp->body.size());
        return len;
    }
    t->resp->body.append(data, len);
    return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t want = std::min<uint64_t>(size * n, t->body_left);
    if (want == 0) return 0;
    size_t got = 0;
    if (t->body_fp) {
        got = std::fread(buf, 1, want, t->body_fp);
        if (got == 0) return CURL_READFUNC_ABORT;
    } else {
        std::copy(t->mem_body, t->mem_body + want, buf);
        t->mem_body += want;
        got = want;
    }
    t->body_left -= got;
    return got;
}

struct CurlHandle {
    CURL* h = nullptr;
    CurlHandle() : h(curl_easy_init()) {}
    ~CurlHandle() {
        if (h) curl_easy_cleanup(h);
    }
};

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    const std::string key = lower(name);
    for (const auto& [k, v] : headers)
        if (k == key) return v;
    return std::nullopt;
}

std::string url_origin(const std::string& url) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return {};
    const size_t end = url.find_first_of("/?#", scheme + 3);
    std::string o = lower(url.substr(0, end));
    const size_t at = o.find('@', scheme + 3);  // userinfo is not part of the origin
    if (at != std::string::npos) o = o.substr(0, scheme + 3) + o.substr(at + 1);
    return o;
}

HttpResponse http_request(const HttpRequest& req) {
    global_init();
    thread_local CurlHandle handle;  // reused per thread: keeps connections alive between requests
    CURL* c = handle.h;
    if (!c) throw TransportError("cannot initialise libcurl", false);
    curl_easy_reset(c);

    HttpResponse resp;
    Transfer t;
    t.req = &req;
    t.resp = &resp;
    t.curl = c;

    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(std::ceil(req.stall_timeout_s))));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);

    std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(nullptr, std::fclose);
    const bool has_body = req.method == "POST" || req.method == "PUT";
    if (has_body) {
        if (!req.body_file.empty()) {
            fp.reset(std::fopen(req.body_file.c_str(), "rb"));
            check(fp != nullptr, "cannot open ", req.body_file.string(), " to upload it");
            check(std::fseek(fp.get(), static_cast<long>(req.body_offset), SEEK_SET) == 0, "cannot seek in ",
                  req.body_file.string());
            t.body_fp = fp.get();
            t.body_left = req.body_size;
        } else {
            t.mem_body = req.body.data();
            t.body_left = req.body.size();
        }
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &t);
        const auto size = static_cast<curl_off_t>(t.body_left);
        if (req.method == "PUT") {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
        } else {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, size);
        }
    } else if (req.method == "HEAD") {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        check(req.method == "GET", "unsupported HTTP method ", req.method);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }

    struct curl_slist* list = nullptr;
    for (const auto& [k, v] : req.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
    if (has_body) list = curl_slist_append(list, "Expect:");
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> list_guard(list, curl_slist_free_all);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);

    const CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    if (rc != CURLE_OK) {
        if (t.aborted_by_sink) throw Error("download of " + url_for_message(req.url) + " aborted");
        check(!t.body_too_large, "the response of ", url_for_message(req.url), " is larger than 64 MiB");
        const bool timeout = rc == CURLE_OPERATION_TIMEDOUT;
        throw TransportError(std::string(timeout ? "timed out talking to " : "cannot reach ") +
                                 url_for_message(req.url) + ": " + curl_easy_strerror(rc) +
                                 (timeout ? " (raise HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT on a slow network)"
                                          : " (check the network or HF_ENDPOINT; HF_HUB_OFFLINE=1 uses the cache only)"),
                             timeout, rc != CURLE_COULDNT_RESOLVE_HOST && rc != CURLE_COULDNT_RESOLVE_PROXY);
    }
    see_status(&t);
    char* eff = nullptr;
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
    resp.url = eff ? std::string(eff) : req.url;
    return resp;
}

void hub_raise_for_status(const HttpResponse& r, const std::string& url, const std::string& what) {
    const std::string code = r.header("x-error-code").value_or("");
    const std::string server_msg = r.header("x-error-message").value_or("");
    const std::string where = " (" + url_for_message(url) + ")";
    const std::string detail = server_msg.empty() ? "" : "; the Hub says: " + server_msg;
    if (server_msg == "Access to this resource is disabled.")
        fail(what, ": the repo is disabled on the Hub", where);
    switch (r.status) {
        case 401:
            fail(what, ": HTTP 401 Unauthorized", where,
                 " — the repo is private, gated or does not exist; check the id, and set HF_TOKEN (or --token) to a "
                 "token that can read it",
                 detail);
        case 403:
            if (code == "GatedRepo")
                fail(what, ": HTTP 403 Forbidden", where,
                     " — this is a gated repo: accept its license on the model page with the account of your token, "
                     "then retry",
                     detail);
            fail(what, ": HTTP 403 Forbidden", where,
                 " — your token may not access this repo (gated: accept the license on the model page; private or "
                 "uploads: use a token with the needed permission in HF_TOKEN or --token)",
                 detail);
        case 404:
            if (code == "RevisionNotFound")
                fail(what, ": HTTP 404, revision not found", where, " — check the branch, tag or commit after '@'", detail);
            if (code == "EntryNotFound")
                fail(what, ": HTTP 404, the repo has no such file", where, detail);
            fail(what, ": HTTP 404 Not Found", where,
                 " — check the repo id (org/name) and its type (model or dataset); private repos need HF_TOKEN", detail);
        case 408:
        case 429:
            fail(what, ": HTTP ", r.status, r.status == 429 ? " Too Many Requests" : " Request Timeout", where,
                 " — the Hub is rate limiting; wait a minute and retry", detail);
        default: break;
    }
    if (r.status >= 500)
        fail(what, ": HTTP ", r.status, " server error", where, " — the Hub failed; retry later", detail);
    fail(what, ": unexpected HTTP ", r.status, where, detail);
}

}  // namespace autoround::hub
