#include "addon_syslog/syslog_options.hpp"

#include "addon_syslog/rsyslog_config.hpp"

namespace flotilla::syslog_addon {

using json = nlohmann::json;

Options Options::from(const json& config) {
  Options o;
  auto problem = [&](const std::string& key, const std::string& msg) { o.errors.push_back({{"message", msg}, {"key", key}}); };
  if (config.contains("port")) {
    if (!config["port"].is_number_integer() || config["port"].get<long long>() < 1 || config["port"].get<long long>() > 65535)
      problem("port", "syslog option `port` must be an integer from 1 to 65535 (the collector's RELP port, default 2514)");
    else o.port = config["port"].get<int>();
  }
  if (config.contains("max_file_size")) {
    const auto text = config["max_file_size"].is_string() ? config["max_file_size"].get<std::string>() : std::string();
    const auto size = parse_size(text);
    if (!size || *size < 4096)
      problem("max_file_size", "syslog option `max_file_size` = `" + text +
                                   "` is not a size of at least 4K; write bytes or a number with K, M or G, e.g. \"100M\"");
    else o.max_file_size = *size;
  }
  if (config.contains("retention_days")) {
    if (!config["retention_days"].is_number_integer() || config["retention_days"].get<long long>() < 0 ||
        config["retention_days"].get<long long>() > 36500)
      problem("retention_days", "syslog option `retention_days` must be a whole number of days, 0 to keep everything");
    else o.retention_days = config["retention_days"].get<int>();
  }
  if (config.contains("roles")) {
    if (!config["roles"].is_array()) problem("roles", "syslog option `roles` must be an array of node roles, e.g. [\"swarm\"]");
    else
      for (const auto& r : config["roles"]) {
        if (r.is_string()) o.roles.push_back(r.get<std::string>());
        else problem("roles", "syslog option `roles` must hold role names (strings)");
      }
  }
  if (config.contains("queue_max_disk_space")) {
    const auto text = config["queue_max_disk_space"].is_string() ? config["queue_max_disk_space"].get<std::string>() : std::string();
    const auto size = parse_size(text);
    if (!size || *size < (1u << 20))
      problem("queue_max_disk_space", "syslog option `queue_max_disk_space` = `" + text +
                                          "` is not a size of at least 1M; e.g. \"1G\" (disk a shipper may use while the collector is down)");
    else o.queue_max_disk_space = std::to_string(*size);
  }
  return o;
}

}  // namespace flotilla::syslog_addon
