// A workload's directory on its node and what the requests say about it: names, records,
// the pid file and the spec hash, and the files written there.
#pragma once

#include "runtime_process/process_group.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace flotilla::process_runtime {

using json = nlohmann::json;

/// The last `lines` lines of `path`, starting no earlier than byte `from`.
std::string tail_lines(const std::filesystem::path& path, std::uintmax_t from, int lines);

struct NodeInfo {
  std::string name;
  std::string address;
  std::filesystem::path workdir;
};

NodeInfo node_of(const json& req);

/// A workload name becomes a directory name, so it must be one plain path component.
std::string check_workload_name(const std::string& name, const NodeInfo& node);

inline std::filesystem::path workload_dir(const NodeInfo& node, const std::string& name) { return node.workdir / "workloads" / name; }

std::uint64_t to_u64(const json& v);

/// The process a record names, if it names one completely.
std::optional<Target> target_of_record(const json& record);

/// The pid file holds "PID START_TIME"; nullopt when it is missing, malformed or has no start time.
std::optional<Target> read_pid_file(const std::filesystem::path& dir);

std::string spec_hash(const json& workload, const NodeInfo& node);

/// Serialises operations on one workload within this engine process.
std::mutex& workload_mutex(const std::filesystem::path& dir);

int signal_number(std::string name);

json make_record(const std::string& name, const std::filesystem::path& dir, const Target& t, const std::string& hash);

/// The workload name a request is about: its record's, or a bare `name`.
std::string name_of(const json& req);

/// Every process a request may refer to: the record's, and whatever the pid file names now
/// (a record from an older start may be stale, and both belong to this workload).
std::vector<Target> targets_of(const json& req, const std::filesystem::path& dir);

std::vector<std::string> validate_workload(const json& workload);

/// The workload's `stop_mode` ("group", the default, or "leader"; see StopMode).
StopMode stop_mode_of(const json& workload);

/// The stop mode of the workload whose spec.json is in `dir` (group when there is none).
StopMode stored_stop_mode(const std::filesystem::path& dir);

}  // namespace flotilla::process_runtime
