// Small helpers that several plugins (and their side programs) need in the same form: reading
// fields of a request, reading a file, errno text. Each plugin is a separate MODULE library
// that exports only its entry symbol, so this is header-only and every function inline.
//
// This folder has no CMakeLists.txt on purpose: plugins/CMakeLists.txt treats every folder
// with one as a plugin. Include it by relative path ("../common/plugin_util.hpp").
#pragma once

#include <nlohmann/json.hpp>

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace flotilla::plugin_util {

using json = nlohmann::json;

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

}  // namespace flotilla::plugin_util
