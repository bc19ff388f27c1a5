#include "addon_syslog/syslog_options.hpp"

#include "addon_syslog/rsyslog_config.hpp"
#include "flotilla/support/config_map.hpp"

namespace flotilla::syslog_addon {

using json = nlohmann::json;

namespace {

// A size: bytes, or a number with K, M or G (an optional B after the unit).
constexpr const char* kSizePattern = "[0-9]+([kKmMgG][bB]?)?";

const support::ConfigMap<RawOptions>& options_map() {
  static const auto map =
      support::ConfigMap<RawOptions>()
          .integer("port", &RawOptions::port, "RELP port of the collector on its node's address")
          .range(1, 65535)
          .string("max_file_size", &RawOptions::max_file_size,
                  "Size at which a store file is rotated (bytes, or K/M/G; at least 4K)")
          .pattern(kSizePattern)
          .integer("retention_days", &RawOptions::retention_days, "Days of logs kept in the store (0 keeps everything)")
          .range(0, 36500)
          .strings("roles", &RawOptions::roles, "Roles of the nodes whose workloads are shipped (empty: every node)")
          // Kept so that topologies written for earlier releases still validate.
          .string("queue_max_disk_space", &RawOptions::queue_max_disk_space,
                  "No longer used: a shipper keeps no disk queue, its workloads' log files are its buffer (bytes, or K/M/G; at least 1M)")
          .pattern(kSizePattern);
  return map;
}

}  // namespace

const char* options_manifest(const char* manifest_without_schema) {
  static const std::string text = options_map().manifest(manifest_without_schema);
  return text.c_str();
}

Options Options::from(const json& config) {
  auto filled = options_map().fill(config);
  Options o;
  auto problem = [&](const std::string& key, const std::string& msg) { o.errors.push_back({{"message", msg}, {"key", key}}); };
  for (const auto& e : filled.errors) {
    const bool size = e.key == "max_file_size" || e.key == "queue_max_disk_space";
    problem(e.key, "syslog " + e.message + (size ? "; write bytes or a number with K, M or G, e.g. \"100M\"" : ""));
  }
  const RawOptions& raw = filled.config;
  o.port = static_cast<int>(raw.port);
  o.retention_days = static_cast<int>(raw.retention_days);
  o.roles = raw.roles;
  // The map checks the sizes' form; their smallest values depend on the unit, so they are checked here.
  const auto file_size = parse_size(raw.max_file_size);
  if (file_size && *file_size < 4096)
    problem("max_file_size", "syslog option `max_file_size` = `" + raw.max_file_size +
                                 "` is smaller than 4K; write bytes or a number with K, M or G, e.g. \"100M\"");
  o.max_file_size = file_size.value_or(0);
  const auto queue_size = parse_size(raw.queue_max_disk_space);
  if (queue_size && *queue_size < (1u << 20))
    problem("queue_max_disk_space", "syslog option `queue_max_disk_space` = `" + raw.queue_max_disk_space +
                                        "` is smaller than 1M; e.g. \"1G\" (disk a shipper may use while the collector is down)");
  return o;
}

}  // namespace flotilla::syslog_addon
