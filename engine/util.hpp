// Small helpers shared by the engine's units.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla {

/// Stable 64-bit FNV-1a hash as 16 hex digits (stable across builds, unlike std::hash).
[[nodiscard]] std::string stable_hash(std::string_view data);

/// The hash state format 1 recorded: FNV-1a's loop with a wrong offset basis
/// (1469598103934665603). Only for recognising hashes in old state files.
[[nodiscard]] std::string legacy_stable_hash(std::string_view data);

/// Replaces {key} in `text` by vars[key]; unknown {names} are left as they are.
[[nodiscard]] std::string substitute(std::string text, const std::map<std::string, std::string>& vars);

/// Finds an executable: absolute or containing '/' -> itself if executable; else the first
/// match in `extra_dirs`, then PATH, then /usr/sbin and /sbin.
[[nodiscard]] std::optional<std::filesystem::path> find_executable(const std::string& name,
                                                                 const std::vector<std::filesystem::path>& extra_dirs = {});

/// The directory of the running executable (build/bin or PREFIX/bin).
[[nodiscard]] std::filesystem::path executable_dir();

/// Joins strings with a separator.
/// fn(0) .. fn(n - 1) on up to `threads` threads, this one among them; returns when all have
/// returned. `fn` must not throw.
void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& fn);

[[nodiscard]] std::string join(const std::vector<std::string>& parts, std::string_view sep);

/// A blocking HTTP GET to a loopback or cluster address with a timeout; returns the status
/// code (0 when the connection failed) and fills `body` when given.
int http_get(const std::string& url, std::chrono::milliseconds timeout, std::string* body = nullptr);

/// The same for a POST of a JSON `payload`.
int http_post(const std::string& url, const std::string& payload, std::chrono::milliseconds timeout, std::string* body = nullptr);

}  // namespace flotilla
