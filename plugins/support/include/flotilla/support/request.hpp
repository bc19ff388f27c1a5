// Small helpers that several plugins (and their side programs) need in the same form: reading
// fields of a request, reading a file, errno text.
#pragma once

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>

namespace flotilla::support {

using json = nlohmann::json;

/// An IPv4 network "A.B.C.D/N" in host byte order.
struct Ipv4Cidr {
  std::uint32_t network = 0;
  int prefix = 0;
};

/// Parses "A.B.C.D/N" with N from 0 to 32; nullopt if it is not of that form. Range and
/// alignment checks are the caller's, since each driver words them for its own users.
inline std::optional<Ipv4Cidr> parse_ipv4_cidr(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 2 || !std::all_of(bits.begin(), bits.end(), ::isdigit)) return std::nullopt;
  const int prefix = std::stoi(bits);
  in_addr a{};
  if (prefix > 32 || ::inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) return std::nullopt;
  return Ipv4Cidr{ntohl(a.s_addr), prefix};
}

/// The string at `key`, or `fallback` when `obj` is not an object or the value is missing or not a string.
inline std::string str_or(const json& obj, const char* key, const std::string& fallback = {}) {
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

/// The entry of the request's `nodes` array whose `name` is `name`, or nullptr.
inline const json* find_node(const json& request, const std::string& name) {
  if (!request.is_object()) return nullptr;
  const auto nodes = request.find("nodes");
  if (nodes == request.end() || !nodes->is_array()) return nullptr;
  for (const json& n : *nodes) {
    if (str_or(n, "name") == name) return &n;
  }
  return nullptr;
}

/// The whole file, or "" if it cannot be read.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// The message for an errno value ("No such file or directory").
inline std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

/// pidfd_open(2). Debian 12's glibc declares the pidfd functions without C linkage for C++, so
/// this calls the system call directly.
inline int pidfd_open(pid_t pid, unsigned int flags) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags)); }

}  // namespace flotilla::support
