// rsyslog configurations of the syslog addon: the collector on the infra node and the shipper on
// every node. Pure functions from plain structs to config text, so tests render and check them
// with `rsyslogd -N1` without an engine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::syslog_addon {

/// The rsyslog daemon both components run (Debian `rsyslog`; RELP needs `rsyslog-relp`).
inline constexpr const char* kRsyslogd = "/usr/sbin/rsyslogd";
/// Longest line a shipper forwards in one piece; imfile splits longer lines.
inline constexpr const char* kShipperMaxMessageSize = "2m";
/// The collector must take a shipper's frame: a 2 MiB line escaped as JSON (up to 6 bytes per
/// control character) plus the metadata around it.
inline constexpr const char* kCollectorMaxMessageSize = "16m";

/// A file that is not a workload's stdout/stderr but should be shipped (`log_files` outputs).
struct ExtraFile {
  std::string path;
  std::string service;
  std::string instance;
  std::string stream;
};

/// Everything the shipper of one node needs.
struct ShipperConfig {
  std::string node;                    // node name stamped on every line
  std::filesystem::path node_workdir;  // lines come from <workdir>/workloads/*/std{out,err}.log
  std::filesystem::path work_dir;      // rsyslog workDirectory: imfile state
  std::string collector_address;
  int collector_port = 2514;
  std::string exclude_prefix;          // workload directories starting with this are not shipped
  std::vector<ExtraFile> extra_files;
};

/// Everything the collector needs.
struct CollectorConfig {
  std::string address;
  int port = 2514;
  std::filesystem::path work_dir;      // rsyslog workDirectory: the main queue's disk part
  std::filesystem::path logstore;      // the flotilla-logstore executable
  std::filesystem::path store_dir;     // <addon.dir>/store
  std::uint64_t max_file_size = 100ull << 20;
  int retention_days = 7;
  std::vector<std::string> addon_names;  // to split addon-<addon>-<component> workload names
};

/// A string literal for RainerScript: backslash and double quote escaped.
std::string rs_quote(const std::string& s);

/// Parses a size such as "100M", "64k", "1g" or "4096" (bytes; K/M/G are powers of 1024).
std::optional<std::uint64_t> parse_size(const std::string& text);

/// The wire template, shared by the shipper's inputs: one JSON object per line. The collector
/// stores it unparsed (its `rawmsg`), so rsyslog's syslog parsers never touch the payload.
std::string wire_template(const std::string& node);

/// The shipper's rsyslog.conf: imfile (inotify, wildcards, so new workloads need no restart)
/// -> omrelp through a memory queue; during a collector outage imfile stops reading, so the
/// log files themselves hold the lines.
std::string render_shipper(const ShipperConfig& c);

/// The command line flotilla-logstore runs with. omprog splits it at spaces, so no part may
/// contain whitespace.
std::string logstore_command(const CollectorConfig& c);

/// Why a collector config cannot be rendered (a path with whitespace), or nullopt.
std::optional<std::string> collector_config_problem(const CollectorConfig& c);

/// The collector's rsyslog.conf: imrelp on the node's address -> flotilla-logstore through omprog
/// with confirmations, so a line counts as delivered only once it is in the store.
std::string render_collector(const CollectorConfig& c);

/// The command that runs rsyslogd in the foreground on `conf`, unprivileged, without /dev/log.
std::vector<std::string> rsyslogd_command(const std::filesystem::path& conf, const std::filesystem::path& pid_file);

/// The shipper's command: rsyslogd as above, after forgetting imfile's saved offsets, so every
/// start reads the workloads' files from the beginning and the collector drops what it has.
/// Why: imfile saves the offset of lines it has *read*, and rsyslog drops the batch its
/// forwarding action holds when it is stopped while the collector is unreachable; without
/// the re-read those lines would be lost.
std::vector<std::string> shipper_command(const std::filesystem::path& work_dir, const std::filesystem::path& conf,
                                                const std::filesystem::path& pid_file);

}  // namespace flotilla::syslog_addon
