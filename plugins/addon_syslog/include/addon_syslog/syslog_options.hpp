// The syslog addon's options as the topology gives them ([addons.options]), checked.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace flotilla::syslog_addon {

/// The addon's options as written, with their defaults; declared once in the config map.
struct RawOptions {
  std::int64_t port = 2514;
  std::string max_file_size = "100M";
  std::int64_t retention_days = 7;
  std::vector<std::string> roles;
  std::string queue_max_disk_space = "1G";  // no longer used; still accepted (see options_map)
};

/// The addon's options, checked. Problems are collected as {message, key} for validate.
struct Options {
  int port = 0;
  std::uint64_t max_file_size = 0;
  int retention_days = 0;
  std::vector<std::string> roles;
  nlohmann::json errors = nlohmann::json::array();

  /// Reads the options from the addon's `config`; every problem lands in `errors`.
  static Options from(const nlohmann::json& config);
};

/// The manifest text, with the schema written from the options' declarations.
const char* options_manifest(const char* manifest_without_schema);

}  // namespace flotilla::syslog_addon
