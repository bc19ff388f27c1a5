#include "addon_syslog/docker_logs.hpp"

#include "addon_syslog/log_store.hpp"
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/request.hpp"

#include <unistd.h>

#include <ctime>
#include <fstream>
#include <stdexcept>

namespace flotilla::syslog_addon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using support::str_or;

json load_cursors(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return json::object();
  json j = json::parse(in, nullptr, false);
  return j.is_object() ? j : json::object();
}

/// Stores the lines of one stream ("TS MSG\n" each) newer than its cursor; moves the cursor.
std::uint64_t store_stream(LogStore& store, const std::string& node, const std::string& name, const std::string& stream,
                           std::string_view text, json& cursor) {
  std::string last = cursor.value("ts", "");
  std::uint64_t offset = cursor.value("offset", std::uint64_t{0});
  std::uint64_t stored = 0;
  // The file is where the process runtime would keep the workload's log, so the store derives
  // service and instance from it the same way.
  const std::string file = "docker/workloads/" + name + "/" + stream + ".log";
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string ts = padded_docker_ts(line.substr(0, space));
    if (ts <= last) continue;  // read before: `since` has a whole second's grain
    const std::string_view msg = line.substr(space + 1);
    const json wire = {{"node", node}, {"file", file}, {"offset", std::to_string(offset)}, {"ts", std::string(line.substr(0, space))},
                       {"msg", std::string(msg)}};
    if (store.ingest(wire.dump(-1, ' ', false, json::error_handler_t::replace)) == LogStore::Outcome::stored) ++stored;
    offset += msg.size() + 1;
    last = ts;
  }
  cursor = {{"ts", last}, {"offset", offset}};
  return stored;
}

/// The whole second of the newest line read from the container, for `since` ("0": from the
/// start). Everything written before the last read was read then, so the older stream's
/// lines before that second are not needed; those within it are skipped by their cursor.
std::string since_of(const json& cursors) {
  std::string newest;
  for (const char* stream : {"stdout", "stderr"})
    if (const std::string ts = cursors.value(stream, json::object()).value("ts", ""); ts > newest) newest = ts;
  struct tm tm {};
  if (newest.empty() || ::strptime(newest.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return "0";
  return std::to_string(::timegm(&tm));
}

}  // namespace

std::string padded_docker_ts(std::string_view ts) {
  std::string out(ts);
  if (!out.empty() && out.back() == 'Z') out.pop_back();
  const std::size_t dot = out.find('.');
  std::string fraction = dot == std::string::npos ? std::string() : out.substr(dot + 1);
  if (dot != std::string::npos) out.erase(dot);
  fraction.resize(9, '0');
  return out + "." + fraction + "Z";
}

DockerPullReport pull_docker_logs(const json& nodes, const DockerPullOptions& o) {
  DockerPullReport report;
  fs::create_directories(o.dir);
  // An `up` and a `flotilla logs` may pull at the same time; the store has one writer at a time.
  const support::FileLock lock(o.dir / ".lock");
  LogStore store({.dir = o.dir / "store", .max_file_size = o.max_file_size, .retention_days = o.retention_days, .addons = o.addons});
  store.open();
  const fs::path cursor_file = o.dir / "cursors.json";
  const json previous = load_cursors(cursor_file);
  json cursors = json::object();  // only containers that still exist keep one
  for (const auto& node : nodes) {
    if (str_or(node, "runtime") != "docker") continue;
    const std::string name = str_or(node, "name");
    try {
      support::DockerClient docker(support::docker_endpoint_of(node));
      for (const auto& c : docker.list_containers({"io.flotilla.managed=true", "io.flotilla.cluster=" + o.cluster})) {
        json& cursor = cursors[c.id];
        cursor = previous.contains(c.id) && previous[c.id].is_object() ? previous[c.id] : json::object();
        const auto r = docker.call("GET", "/containers/" + c.id + "/logs?stdout=1&stderr=1&timestamps=1&since=" + since_of(cursor));
        if (r.status != 200) docker.fail("read the logs of container " + c.name, r);
        const auto logs = support::demux_log_stream(r.body);
        for (const auto& [stream, text] : {std::pair<const char*, const std::string&>{"stdout", logs.out}, {"stderr", logs.err}}) {
          json& sc = cursor[stream];
          if (!sc.is_object()) sc = json::object();
          report.stored += store_stream(store, name, c.name, stream, text, sc);
        }
      }
    } catch (const std::exception& e) {
      report.problems.push_back("node " + name + ": " + e.what());
      for (const auto& [id, cursor] : previous.items())
        if (!cursors.contains(id)) cursors[id] = cursor;  // its containers may still be there
    }
  }
  store.close();
  support::write_file_atomic(cursor_file, cursors.dump() + "\n", 0600);
  return report;
}

}  // namespace flotilla::syslog_addon
