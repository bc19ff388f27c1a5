#include "runtime_docker/files.hpp"
#include "runtime_docker/registries.hpp"

#include "runtime_docker/runtime.hpp"

#include <flotilla/support/http.hpp>
#include <flotilla/support/request.hpp>
#include <flotilla/support/tar.hpp>

#include <atomic>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace flotilla::docker_runtime {
namespace {

using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::support::DockerClient;
using flotilla::support::DockerError;
using flotilla::support::str_or;
using flotilla::support::url_encode;

/// A put_file path split into the owner directory (the volume) and the rest inside it.
struct FilePath {
  std::string owner_dir;
  std::string rest;
  [[nodiscard]] std::string in_container() const { return std::string(kFilesRoot) + "/" + owner_dir + "/" + rest; }
  [[nodiscard]] std::string mount_point() const { return std::string(kFilesRoot) + "/" + owner_dir; }
};

FilePath split_path(const std::string& path, const std::string& node) {
  const auto bad = [&](const std::string& why) { return Invalid("put_file path `" + path + "` on node " + node + " " + why); };
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string::npos) throw bad("must be relative to the node's files directory");
  std::vector<std::string> parts;
  for (std::size_t at = 0; at <= path.size();) {
    const std::size_t slash = path.find('/', at);
    std::string part = path.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
    if (part == "..") throw bad("must not contain `..`; name a file inside the node's files directory");
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  if (parts.size() < 2)
    throw bad("needs an owner directory and a file (e.g. haproxy/haproxy.cfg): on Docker nodes each owner directory is a volume");
  if (docker_safe(parts[0]) != parts[0]) throw bad("has an owner directory Docker cannot name a volume after; use letters, digits, '-', '_' or '.'");
  FilePath p{parts[0], {}};
  for (std::size_t i = 1; i < parts.size(); ++i) p.rest += (i > 1 ? "/" : "") + parts[i];
  return p;
}

mode_t mode_of(const json& req, const std::string& path) {
  const auto m = req.find("mode");
  if (m == req.end()) return 0644;
  long long mode = -1;
  if (m->is_number_integer()) mode = m->get<long long>();
  else if (m->is_string()) {
    try {
      mode = std::stoll(m->get<std::string>(), nullptr, 8);
    } catch (const std::exception&) {
    }
  }
  if (mode < 0 || mode > 07777) throw Invalid("put_file mode of `" + path + "` must be an integer (420 for 0644) or an octal string");
  return static_cast<mode_t>(mode);
}

/// One lock per daemon and volume: the carrier is made once, and uploads to it do not interleave.
std::mutex& volume_mutex(const std::string& key) {
  static std::mutex guard;
  static std::map<std::string, std::unique_ptr<std::mutex>> locks;
  std::lock_guard lock(guard);
  auto& m = locks[key];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

json ownership_labels(const json& node, const std::string& cluster, const std::string& owner_dir) {
  return {{kManagedLabel, "true"},
          {kClusterLabel, cluster},
          {kNodeLabel, str_or(node, "name")},
          {kComponentLabel, "files:" + owner_dir},
          {kFilesLabel, owner_dir}};
}

/// A container made from the files image with the volume mounted writable at the owner
/// directory; `cmd` runs when started (the carrier is never started).
json helper_config(const std::string& image, const json& labels, const std::string& volume, const FilePath& p, const json& cmd) {
  return {{"Image", image},
          {"Cmd", cmd},
          {"Labels", labels},
          {"NetworkDisabled", true},
          {"HostConfig", {{"Mounts", json::array({{{"Type", "volume"}, {"Source", volume}, {"Target", p.mount_point()}}})}}}};
}

/// The volume and its carrier, made when missing; returns the carrier's name.
std::string ensure_carrier(DockerClient& docker, const json& req, const std::string& cluster, const std::string& image, const FilePath& p) {
  const json node = req.value("node", json::object());
  const std::string volume = files_volume(cluster, p.owner_dir);
  const json labels = ownership_labels(node, cluster, p.owner_dir);
  if (const auto c = docker.inspect_container(volume)) {
    if (container_labels(*c).value(kFilesLabel, "") != p.owner_dir)
      throw Error(FLT_ERROR, "node " + docker.endpoint().node + " has a container named " + volume +
                                 " that Flotilla did not make for its files; remove or rename it (docker rm " + volume + ")");
    return volume;
  }
  const auto r = docker.call("POST", "/volumes/create", json{{"Name", volume}, {"Labels", labels}}.dump(), {"Content-Type: application/json"});
  if (r.status != 201 && r.status != 200) docker.fail("create volume " + volume, r);
  ensure_image(docker, req.value("config", json::object()), image, "the carrier of the files of " + p.owner_dir);
  (void)docker.create_container(volume, helper_config(image, labels, volume, p, json::array({"true"})));
  return volume;
}

/// The file at `path` in the container, or nullopt when there is none.
std::optional<support::TarEntry> read_file(DockerClient& docker, const std::string& container, const std::string& path) {
  const auto r = docker.call("GET", "/containers/" + url_encode(container) + "/archive?path=" + url_encode(path));
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) docker.fail("read " + path + " in container " + container, r);
  auto entries = support::read_tar(r.body);
  if (entries.empty()) return std::nullopt;
  return std::move(entries.front());
}

/// Runs `rm` in a short-lived container on the volume: the Engine API has no call that deletes a file.
void remove_in_volume(DockerClient& docker, const json& node, const std::string& cluster, const std::string& image, const FilePath& p) {
  static std::atomic<unsigned> counter{0};
  const std::string volume = files_volume(cluster, p.owner_dir);
  const std::string name = volume + "-rm-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  const std::string id = docker.create_container(
      name, helper_config(image, ownership_labels(node, cluster, p.owner_dir), volume, p, json::array({"rm", "-f", "--", p.in_container()})));
  try {
    docker.start_container(id);
    const auto waited = docker.call("POST", "/containers/" + id + "/wait", "", {},
                                    support::HttpTimeouts{docker.endpoint().timeouts.connect, std::chrono::seconds(30)});
    if (waited.status != 200) docker.fail("wait for the removal of " + p.in_container(), waited);
    const json result = json::parse(waited.body, nullptr, false);
    if (!result.is_object() || result.value("StatusCode", -1) != 0) {
      const auto logs = docker.logs(id, 5);
      throw Error(FLT_ERROR, "node " + docker.endpoint().node + ": removing " + p.in_container() + " failed: " + logs.out + logs.err);
    }
  } catch (...) {
    docker.remove_container(id);
    throw;
  }
  docker.remove_container(id);
}

}  // namespace

std::string docker_safe(std::string s) {
  for (auto& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s.front()))) s.insert(s.begin(), 'x');
  return s;
}

std::string files_volume(const std::string& cluster, const std::string& owner_dir) {
  return "flotilla-files-" + docker_safe(cluster.empty() ? std::string("cluster") : cluster) + "-" + docker_safe(owner_dir);
}

json owner_files_mount(const std::string& cluster, const std::string& owner) {
  if (!owner.starts_with("addon:") || owner.size() == 6) return nullptr;
  const std::string dir = docker_safe(owner.substr(6));
  return {{"Type", "volume"}, {"Source", files_volume(cluster, dir)}, {"Target", std::string(kFilesRoot) + "/" + dir}, {"ReadOnly", true}};
}

json place_file(Context& ctx, const json& req, const std::string& cluster) {
  const json node = req.value("node", json::object());
  const auto endpoint = endpoint_of(node);
  const std::string rel = str_or(req, "path");
  const FilePath p = split_path(rel, endpoint.node);
  const bool remove = req.value("remove", false);
  if (!remove && !(req.contains("content") && req["content"].is_string()))
    throw Invalid("put_file of `" + rel + "` on node " + endpoint.node + " needs `content` as a string");
  const mode_t mode = remove ? 0 : mode_of(req, rel);
  const std::string image = str_or(node.value("runtime_config", json::object()), "files_image", kDefaultFilesImage);
  const json placed = {{"path", p.in_container()}, {"changed", true}};
  try {
    DockerClient docker(endpoint);
    std::lock_guard lock(volume_mutex(endpoint.host + " " + files_volume(cluster, p.owner_dir)));
    const std::string carrier = ensure_carrier(docker, req, cluster, image, p);
    const auto current = read_file(docker, carrier, p.in_container());
    if (remove) {
      if (!current) return json{{"path", p.in_container()}, {"changed", false}};
      ctx.progress("removing " + p.in_container() + " on " + endpoint.node);
      remove_in_volume(docker, node, cluster, image, p);
      return placed;
    }
    const std::string content = req["content"].get<std::string>();
    if (current && !current->directory && current->link_target.empty() && current->content == content && current->mode == mode)
      return json{{"path", p.in_container()}, {"changed", false}};
    // Parent directories first, so a deep path extracts; the archive lands in the volume's root.
    std::vector<support::TarEntry> entries;
    for (std::size_t slash = p.rest.find('/'); slash != std::string::npos; slash = p.rest.find('/', slash + 1))
      entries.push_back({.path = p.rest.substr(0, slash), .mode = 0755, .directory = true});
    entries.push_back({.path = p.rest, .content = content, .mode = mode});
    docker.upload_archive(carrier, p.mount_point(), support::make_tar(entries));
    return placed;
  } catch (const DockerError& e) {
    const std::string message = std::string(e.what()) + " (placing " + rel + ")";
    if (e.unreachable()) throw sdk::Retryable(message);
    throw Error(FLT_ERROR, message);
  }
}

}  // namespace flotilla::docker_runtime
