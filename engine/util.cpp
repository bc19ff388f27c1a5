#include "util.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <mutex>
#include <sstream>

namespace flotilla {

namespace {

std::string fnv1a_hex(std::string_view data, std::uint64_t basis) {
  std::uint64_t h = basis;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = kHex[h & 0xf];
  return out;
}

}  // namespace

std::string stable_hash(std::string_view data) { return fnv1a_hex(data, 14695981039346656037ULL); }

std::string legacy_stable_hash(std::string_view data) { return fnv1a_hex(data, 1469598103934665603ULL); }

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
  auto executable = [](const std::filesystem::path& p) { return ::access(p.c_str(), X_OK) == 0 && !std::filesystem::is_directory(p); };
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (executable(name)) return std::filesystem::path(name);
    return std::nullopt;
  }
  std::vector<std::filesystem::path> dirs = extra_dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, ':'))
      if (!part.empty()) dirs.emplace_back(part);
  }
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/sbin");
  for (const auto& d : dirs)
    if (executable(d / name)) return d / name;
  return std::nullopt;
}

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : self.parent_path();
}

std::string iso_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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
size_t collect(char* data, size_t size, size_t n, void* user) {
  if (user) static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}
}  // namespace

namespace {
int http_request(const std::string& url, const std::string* payload, std::chrono::milliseconds timeout, std::string* body) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (!curl) return 0;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_slist* headers = nullptr;
  if (payload) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload->c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload->size()));
  }
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return static_cast<int>(code);
}
}  // namespace

int http_get(const std::string& url, std::chrono::milliseconds timeout, std::string* body) {
  return http_request(url, nullptr, timeout, body);
}

int http_post(const std::string& url, const std::string& payload, std::chrono::milliseconds timeout, std::string* body) {
  return http_request(url, &payload, timeout, body);
}

}  // namespace flotilla
