#include "util.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/process.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

namespace flotilla {

std::string stable_hash(std::string_view data) { return support::stable_hash(data); }

std::string legacy_stable_hash(std::string_view data) { return support::legacy_stable_hash(data); }

std::string substitute(std::string text, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '{') {
      auto close = text.find('}', i + 1);
      if (close != std::string::npos) {
        auto it = vars.find(text.substr(i + 1, close - i - 1));
        if (it != vars.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

std::optional<std::filesystem::path> find_executable(const std::string& name, const std::vector<std::filesystem::path>& extra_dirs) {
  return support::find_executable(name, {.first = extra_dirs});
}

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : self.parent_path();
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

namespace {
int http_request(const std::string& method, const std::string& url, const std::string& payload, std::chrono::milliseconds timeout,
                 std::string* body) {
  try {
    support::HttpClient client({.timeouts = {timeout, timeout}});
    auto r = client.send({.method = method, .url = url, .body = payload});
    if (body) *body = std::move(r.body);
    return static_cast<int>(r.status);
  } catch (const support::Unreachable&) {
    return 0;
  }
}
}  // namespace

int http_get(const std::string& url, std::chrono::milliseconds timeout, std::string* body) {
  return http_request("GET", url, {}, timeout, body);
}

int http_post(const std::string& url, const std::string& payload, std::chrono::milliseconds timeout, std::string* body) {
  return http_request("POST", url, payload, timeout, body);
}

void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < n;) fn(i);
  };
  std::vector<std::jthread> helpers;
  for (size_t k = 1; k < std::min(std::max<size_t>(threads, 1), n); ++k) helpers.emplace_back(work);
  work();
}

}  // namespace flotilla
