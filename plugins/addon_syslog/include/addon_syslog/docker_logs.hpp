// The syslog addon's shipper for Docker-runtime nodes: the Docker daemon already keeps every
// container's output (json-file logs, kept with a stopped container), so nothing runs on the
// node. The addon reads the new lines of each of the cluster's containers through the Engine
// API (GET /containers/{id}/logs with timestamps, from where the last read stopped) and stores
// them with the collector's own code (LogStore: dedupe, per service and day) in a store of
// their own beside the collector's, at every apply and before every answer to `logs`.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::syslog_addon {

/// Where and how the Docker lines are stored.
struct DockerPullOptions {
  std::filesystem::path dir;      ///< <addon dir>/docker: store/ and cursors.json, locked while read
  std::string cluster;            ///< only containers labelled io.flotilla.cluster=<cluster>
  std::uint64_t max_file_size = 100ull << 20;
  int retention_days = 7;
  std::vector<std::string> addons;  ///< addon names as workload names hold them
};

/// What one pull did.
struct DockerPullReport {
  std::uint64_t stored = 0;           ///< new lines stored
  std::vector<std::string> problems;  ///< one per node that could not be read ("node swarm-1: ...")
};

/// A Docker log timestamp ("2026-11-30T16:10:40.1234Z", RFC 3339 with up to nine fractional
/// digits, as the daemon trims them) with exactly nine, so two compare as strings.
[[nodiscard]] std::string padded_docker_ts(std::string_view ts);

/// Pulls the new lines of every Flotilla container of the cluster on the Docker-runtime nodes
/// among `nodes` (node views with runtime_config) into `o.dir`/store. A node whose daemon
/// cannot be read is reported, not thrown; throws std::runtime_error when the store cannot be
/// written.
DockerPullReport pull_docker_logs(const nlohmann::json& nodes, const DockerPullOptions& o);

}  // namespace flotilla::syslog_addon
