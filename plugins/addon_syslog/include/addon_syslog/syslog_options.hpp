// The syslog addon's options as the topology gives them ([addons.options]), checked.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace flotilla::syslog_addon {

/// The addon's options, checked. Problems are collected as {message, key} for validate.
struct Options {
  int port = 2514;
  std::uint64_t max_file_size = 100ull << 20;
  int retention_days = 7;
  std::vector<std::string> roles;
  std::string queue_max_disk_space = "1g";
  nlohmann::json errors = nlohmann::json::array();

  /// Reads the options from the addon's `config`; every problem lands in `errors`.
  static Options from(const nlohmann::json& config);
};

}  // namespace flotilla::syslog_addon
