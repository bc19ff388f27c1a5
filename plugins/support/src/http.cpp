#include "flotilla/support/http.hpp"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <utility>

namespace flotilla::support {
namespace {

void curl_global_once() {
  // curl_global_init is not thread-safe before 7.84; a function-local static runs it once.
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)done;
}

/// What the callbacks of one transfer share.
struct Transfer {
  CURL* curl = nullptr;
  HttpResponse* response = nullptr;
  const ChunkFn* on_chunk = nullptr;
  const CancelledFn* cancelled = nullptr;
  bool stopped_by_reader = false;  // on_chunk returned false
  bool cancelled_now = false;
};

/// `url` with its host replaced by `name`, and the host it named (an IPv6 address in brackets,
/// as CONNECT_TO wants it). Throws Unreachable when curl cannot parse the URL.
std::pair<std::string, std::string> named_url(const std::string& url, const std::string& name) {
  const std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  const auto part = [&](CURLUPart which) {
    char* text = nullptr;
    if (curl_url_get(u.get(), which, &text, 0) != CURLUE_OK) throw Unreachable("cannot read the URL " + url, url);
    std::string out(text);
    curl_free(text);
    return out;
  };
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    throw Unreachable("cannot parse the URL " + url, url);
  const std::string host = part(CURLUPART_HOST);
  if (curl_url_set(u.get(), CURLUPART_HOST, name.c_str(), 0) != CURLUE_OK)
    throw Unreachable("the TLS server name " + name + " is not a host name", url);
  return {part(CURLUPART_URL), host};
}

bool is_cancelled(Transfer& t) {
  if (!t.cancelled_now && t.cancelled && *t.cancelled && (*t.cancelled)()) t.cancelled_now = true;
  return t.cancelled_now;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (is_cancelled(t)) return 0;
  long status = 0;
  curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &status);
  // Only a successful answer is streamed: an error's body is kept for the error message.
  if (t.on_chunk && *t.on_chunk && status < 300) {
    if (!(*t.on_chunk)(std::string_view(data, len))) {
      t.stopped_by_reader = true;
      return 0;
    }
    return len;
  }
  t.response->body.append(data, len);
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  // A new status line (after 100 Continue or a redirect) starts a new set of headers.
  if (line.starts_with("HTTP/")) t.response->headers.clear();
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
    t.response->headers[name] = std::string(value);
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return is_cancelled(*static_cast<Transfer*>(user)) ? 1 : 0;
}

/// "GET http://x/y" or "GET http://x/y through unix socket /run/x.sock".
std::string describe(const HttpRequest& r, const HttpClientOptions& o) {
  std::string out = r.method + " " + r.url;
  if (!o.unix_socket.empty()) out += " through unix socket " + o.unix_socket.string();
  return out;
}

void set_tls(CURL* h, const TlsOptions& tls) {
  if (!tls.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, tls.ca_file.c_str());
  if (!tls.cert_file.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, tls.cert_file.c_str());
  if (!tls.key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls.key_file.c_str());
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  curl_global_once();
  curl_ = curl_easy_init();
  if (!curl_) throw Unreachable("cannot initialise libcurl", "");
}

HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpClient::HttpClient(HttpClient&& other) noexcept
    : options_(std::move(other.options_)), curl_(std::exchange(other.curl_, nullptr)) {}

HttpClient& HttpClient::operator=(HttpClient&& other) noexcept {
  if (this != &other) {
    if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
    options_ = std::move(other.options_);
    curl_ = std::exchange(other.curl_, nullptr);
  }
  return *this;
}

HttpResponse HttpClient::send(const HttpRequest& request) {
  const std::string what = describe(request, options_);
  if (!curl_) throw Unreachable(what + ": this client was moved from", request.url);
  if (options_.cancelled && options_.cancelled())
    throw Unreachable(what + ": cancelled", request.url, Unreachable::Cause::cancelled);
  CURL* h = static_cast<CURL*>(curl_);
  // Reset drops the previous request's options but keeps the open connection.
  curl_easy_reset(h);

  const bool has_body = !request.body.empty() || request.method == "PUT" || request.method == "POST";
  curl_slist* headers = nullptr;
  for (const auto& line : options_.headers) headers = curl_slist_append(headers, line.c_str());
  for (const auto& line : request.headers) headers = curl_slist_append(headers, line.c_str());
  if (has_body) headers = curl_slist_append(headers, ("Content-Type: " + request.content_type).c_str());
  // Expect: 100-continue would add a round trip (and a 1 s stall on servers that ignore it).
  headers = curl_slist_append(headers, "Expect:");
  const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, &curl_slist_free_all);

  HttpResponse response;
  Transfer t{h, &response, &request.on_chunk, &options_.cancelled};
  char error[CURL_ERROR_SIZE] = {0};
  const HttpTimeouts timeouts = request.timeouts.value_or(options_.timeouts);
  // With a TLS server name, the URL names the server by it and CONNECT_TO sends the
  // connection to the URL's real host, so the handshake checks the name, not the address.
  std::string url = request.url;
  curl_slist* connect_to = nullptr;
  if (!options_.tls.server_name.empty() && url.starts_with("https://")) {
    const auto [named, host] = named_url(url, options_.tls.server_name);
    url = named;
    connect_to = curl_slist_append(connect_to, (options_.tls.server_name + "::" + host + ":").c_str());
  }
  const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> connect_guard(connect_to, &curl_slist_free_all);
  if (connect_to) curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "HEAD") curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (has_body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  if (!options_.unix_socket.empty()) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, options_.unix_socket.c_str());
  set_tls(h, options_.tls);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts.connect.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeouts.total.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  if (!options_.use_proxy) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");

  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.stopped_by_reader)) return response;
  if (t.cancelled_now) throw Unreachable(what + ": cancelled", request.url, Unreachable::Cause::cancelled);
  const std::string why = error[0] ? std::string(error) : std::string(curl_easy_strerror(rc));
  if (rc == CURLE_OPERATION_TIMEDOUT) throw Unreachable(what + ": " + why, request.url, Unreachable::Cause::timeout);
  throw Unreachable(what + ": " + why, request.url);
}

HttpResponse HttpClient::send_ok(const HttpRequest& request) {
  HttpResponse r = send(request);
  if (r.status >= 200 && r.status < 300) return r;
  std::string body = r.body.substr(0, 300);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.pop_back();
  throw Refused(describe(request, options_) + " answered HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body),
                request.url, r.status, std::move(r.body));
}

HttpResponse HttpClient::get(const std::string& url) { return send_ok({.method = "GET", .url = url}); }

HttpResponse HttpClient::post(const std::string& url, std::string body, std::string content_type) {
  return send_ok({.method = "POST", .url = url, .body = std::move(body), .content_type = std::move(content_type)});
}

HttpResponse HttpClient::put(const std::string& url, std::string body, std::string content_type) {
  return send_ok({.method = "PUT", .url = url, .body = std::move(body), .content_type = std::move(content_type)});
}

HttpResponse HttpClient::del(const std::string& url) { return send_ok({.method = "DELETE", .url = url}); }

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace flotilla::support
