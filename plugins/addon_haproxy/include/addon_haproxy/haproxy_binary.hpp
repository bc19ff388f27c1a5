// Finding the haproxy binary and asking it whether a config file is valid (`haproxy -c`).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::haproxy {

/// The first executable `haproxy` on PATH, then in /usr/sbin, /usr/local/sbin and /sbin (Debian
/// installs it in /usr/sbin, which is not on every user's PATH).
std::optional<std::filesystem::path> find_haproxy();

/// What `haproxy -c` said about a config file.
struct ConfigCheck {
  bool valid = false;
  std::string output;  // HAProxy's messages (stdout and stderr)
};

/// Runs `haproxy -c -f FILE` and waits for it, at most `timeout` (then kills it and reports
/// the file invalid). Never throws for a bad config; throws support::SpawnError if the binary
/// cannot be started.
ConfigCheck check_config(const std::filesystem::path& binary, const std::filesystem::path& file,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace flotilla::haproxy
