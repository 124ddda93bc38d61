// hub/http_client.h — one HTTP(S) request through libcurl, and the Hub's error conventions.
//
// Why this file exists: the rest of the Hub layer speaks in requests and responses; libcurl's
// handle/option/callback API stays here. What it does and does not do:
//   * redirects are NOT followed unless the request asks (the Hub metadata request must see the
//     302/307 and its Location: protocol doc §2.2); when followed, curl drops the Authorization
//     header on a change of host (curl >= 7.58), and the downloader also omits it itself;
//   * timeouts: `connect_timeout_s` for the connection, `stall_timeout_s` as "no byte for this
//     long" (the Python client's read timeout), so multi-GB downloads are not capped;
//   * a transport failure (DNS, refused, reset, timeout) throws TransportError naming the URL;
//     an HTTP error status is returned as is — hub_raise_for_status() turns it into a message;
//   * no header value is ever printed: the token lives only in the request's header list.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace autoround::hub {

// A failure below HTTP (DNS, connection refused/reset, timeout). Retried by callers.
class TransportError : public Error {
public:
    TransportError(const std::string& message, bool timeout, bool retryable = true)
        : Error(message), timeout_(timeout), retryable_(retryable) {}
    bool timeout() const { return timeout_; }
    bool retryable() const { return retryable_; }  // false for an unknown host name: retrying cannot help

private:
    bool timeout_, retryable_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    std::string method = "GET";   // GET, HEAD, POST, PUT
    std::string url;
    Headers headers;              // sent as given (e.g. {"authorization", "Bearer ..."})
    std::string body;             // POST/PUT body from memory...
    std::filesystem::path body_file;  // ...or from this file (when set): bytes [body_offset, +body_size)
    uint64_t body_offset = 0, body_size = 0;
    bool follow_redirects = false;
    double connect_timeout_s = 10;
    double stall_timeout_s = 10;
    // Streaming sink for the body of a 2xx response (otherwise kept in HttpResponse::body, max 64 MiB).
    // Return false to abort the transfer. Error statuses always land in `body` (truncated to 64 KiB).
    std::function<bool(const char* data, size_t n)> on_data;
    // Called once per response (also on each followed redirect hop) before any body byte.
    std::function<void(long status)> on_status;
};

struct HttpResponse {
    long status = 0;
    std::string url;              // the final URL (after followed redirects)
    Headers headers;              // of the final response; names lower-cased
    std::string body;
    std::optional<std::string> header(std::string_view name) const;  // case-insensitive
};

// Performs the request; throws TransportError on failure below HTTP (naming the URL, never headers).
HttpResponse http_request(const HttpRequest& req);

// "https://host:port" of a URL (scheme + authority), lower-cased; "" if it cannot be parsed.
std::string url_origin(const std::string& url);

// Turns a non-2xx Hub response into an Error whose message says what to do:
// 401 (set HF_TOKEN / --token, or check the id: private and missing repos both answer 401),
// 403 (gated: accept the license on the model page; or the token lacks write access),
// 404 (RepoNotFound / RevisionNotFound / EntryNotFound from X-Error-Code), 5xx (retry later).
// `what` names the object ("file config.json of model org/name@main"). The URL is named, never the token.
[[noreturn]] void hub_raise_for_status(const HttpResponse& r, const std::string& url, const std::string& what);

}  // namespace autoround::hub
