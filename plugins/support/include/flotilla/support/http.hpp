// The one HTTP client, on libcurl: TCP or a unix socket, TLS with a CA file and a client
// certificate, connect and total timeouts, cancellation by the host, and response bodies
// either collected or streamed chunk by chunk. One client keeps its connection open between
// requests (keep-alive).
#pragma once

#include "flotilla/support/wait.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::support {

/// Timeouts of one request. total 0 means none (for streams that stay open).
struct HttpTimeouts {
  std::chrono::milliseconds connect{2000};
  std::chrono::milliseconds total{5000};
};

/// TLS settings for https:// URLs. Empty paths mean libcurl's defaults (the system CAs, no
/// client certificate).
struct TlsOptions {
  std::filesystem::path ca_file;    ///< PEM bundle the server's certificate must chain to
  std::filesystem::path cert_file;  ///< PEM client certificate
  std::filesystem::path key_file;   ///< PEM key of the client certificate
  bool verify = true;               ///< check the server's certificate and name
  /// The name the server's certificate must carry when it is not the URL's host: requests go
  /// to the URL's host and port, but TLS (SNI and the name check) uses this name, as curl's
  /// --connect-to does. For servers whose certificate is issued before their address is known
  /// (EC2 instances). Empty: the URL's host.
  std::string server_name;
};

/// What every request of one client shares.
struct HttpClientOptions {
  std::filesystem::path unix_socket;  ///< when set, requests go through this socket; the URL's host is only the Host header
  TlsOptions tls;
  HttpTimeouts timeouts;
  CancelledFn cancelled;              ///< polled during transfers (about every second, and per chunk); true aborts
  std::vector<std::string> headers;   ///< "Name: value" lines sent with every request
  bool use_proxy = false;             ///< false: ignore http_proxy & co. (cluster traffic is local)
};

/// One HTTP response. Header names are lower-cased; a repeated header keeps its last value.
struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  /// The header's value, or "" (`name` in lower case).
  [[nodiscard]] std::string header(const std::string& name) const;
};

/// Receives the body of a 2xx/1xx response as it arrives; returning false ends the transfer
/// early (not an error). Bodies of other statuses are collected in HttpResponse::body instead.
using ChunkFn = std::function<bool(std::string_view chunk)>;

/// One request.
struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::string content_type = "application/json";  ///< sent when there is a body or the method is PUT/POST
  std::vector<std::string> headers;                ///< "Name: value", after the client's own
  std::optional<HttpTimeouts> timeouts;            ///< overrides the client's
  ChunkFn on_chunk;                                ///< streams the body instead of collecting it
};

/// A failed request. what() names the method, the URL (and unix socket) and the cause.
class HttpError : public std::runtime_error {
 public:
  HttpError(const std::string& message, std::string url = {}, long status = 0, std::string body = {})
      : std::runtime_error(message), url_(std::move(url)), status_(status), body_(std::move(body)) {}
  /// The URL asked for.
  [[nodiscard]] const std::string& url() const { return url_; }
  /// The HTTP status of the answer; 0 when no answer came.
  [[nodiscard]] long status() const { return status_; }
  /// The body of the answer, if any.
  [[nodiscard]] const std::string& body() const { return body_; }

 private:
  std::string url_;
  long status_;
  std::string body_;
};

/// No answer: the connection, name lookup or TLS failed, the time ran out, or the request was cancelled.
class Unreachable : public HttpError {
 public:
  enum class Cause { transport, timeout, cancelled };
  Unreachable(const std::string& message, std::string url = {}, Cause cause = Cause::transport)
      : HttpError(message, std::move(url)), cause_(cause) {}
  [[nodiscard]] Cause cause() const { return cause_; }

 private:
  Cause cause_;
};

/// An answer that cannot be used: an error status, or a body that is not what was asked for.
class Refused : public HttpError {
 public:
  using HttpError::HttpError;
};

/// An HTTP client with one reusable connection. Thread-compatible: use one client per thread.
class HttpClient {
 public:
  /// Throws Unreachable (no URL) when libcurl cannot be initialised.
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&& other) noexcept;
  HttpClient& operator=(HttpClient&& other) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  [[nodiscard]] const HttpClientOptions& options() const { return options_; }

  /// Sends `request` and returns the answer, whatever its status. Throws Unreachable when no
  /// answer came (or the host cancelled).
  HttpResponse send(const HttpRequest& request);

  /// send(), and throws Refused (with status and body) unless the status is 2xx.
  HttpResponse send_ok(const HttpRequest& request);

  /// GET `url`; throws like send_ok.
  HttpResponse get(const std::string& url);
  /// POST `body` to `url`; throws like send_ok.
  HttpResponse post(const std::string& url, std::string body, std::string content_type = "application/json");
  /// PUT `body` to `url`; throws like send_ok.
  HttpResponse put(const std::string& url, std::string body, std::string content_type = "application/json");
  /// DELETE `url`; throws like send_ok.
  HttpResponse del(const std::string& url);

 private:
  HttpClientOptions options_;
  void* curl_ = nullptr;  // CURL*, kept across requests for keep-alive
};

/// Percent-encodes `text` for a URL path segment or query value (RFC 3986 unreserved kept).
[[nodiscard]] std::string url_encode(std::string_view text);

}  // namespace flotilla::support
