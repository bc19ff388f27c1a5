// A fake engine host for addon tests on Docker nodes: loads an addon plugin through the C ABI
// and serves its runtime operations as the engine's runtime broker does (workload names
// prefixed with "addon-<addon>-", components recorded per node), by calling the real `docker`
// runtime plugin against the nodes of the Docker lab. Nodes given without a runtime_config run
// on the process runtime plugin, so a test can mix both. Every component it started is
// stopped and removed when it is destroyed.
#pragma once

#include "support/docker_lab.hpp"
#include "support/plugin_harness.hpp"
#include "support/skip.hpp"

#include <flotilla/plugin.h>
#include <flotilla/support/command.hpp>
#include <flotilla/support/docker_client.hpp>
#include <flotilla/support/files.hpp>
#include <flotilla/support/http.hpp>

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

/// Declares `lab`, the process's DockerLab, or ends the test as skipped, saying why, when the
/// lab cannot run here (not root, or a tool it needs is missing).
#define FLOTILLA_LAB_OR_SKIP(lab)                                                          \
  if (::geteuid() != 0) FLOTILLA_SKIP(::flotilla::test::DockerLab::unavailable_reason()); \
  auto* lab = ::flotilla::test::DockerLab::get();                                          \
  if (!(lab)) FLOTILLA_SKIP(::flotilla::test::DockerLab::unavailable_reason())

namespace flotilla::test {

/// Puts images of scripts/build-images.sh (tag `flotilla`; flotilla-hello from the built
/// flotilla-hello) into the dockerd of each of the first `nodes` lab nodes, once per process;
/// returns "" or why it could not. With the lab's
/// registry, the script pushes what the registry lacks through the first node (once for the
/// whole suite: the registry's storage is shared by every test process's lab, under a lock), and
/// each node pulls REGISTRY/NAME:flotilla and tags it NAME:flotilla. Without one, the script
/// builds into each node.
inline std::string build_lab_images(const DockerLab& lab, const std::vector<std::string>& names, size_t nodes = DockerLab::kNodes) {
  static std::mutex mu;
  static std::set<std::pair<std::string, std::string>> built;
  std::lock_guard lock(mu);
  const std::string script = std::string(FLOTILLA_SOURCE_DIR) + "/scripts/build-images.sh";
  const std::string hello = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla-hello";  // for the image flotilla-hello
  if (!lab.registry().empty()) {
    std::vector<std::string> argv = {"bash", script, "--host", lab.nodes()[0].host, "--registry", lab.registry(), "--hello", hello};
    const size_t fixed = argv.size();
    for (const auto& n : names)
      if (!built.contains({lab.registry(), n})) argv.push_back(n);
    if (argv.size() > fixed) {
      const flotilla::support::FileLock cache(DockerLab::registry_cache() / ".flotilla-push.lock");
      const auto r = flotilla::support::run_command(argv, std::chrono::seconds(300));
      if (!r.ok()) return "scripts/build-images.sh --registry " + lab.registry() + " failed:\n" + r.out + r.err;
      for (size_t k = fixed; k < argv.size(); ++k) built.insert({lab.registry(), argv[k]});
    }
    for (size_t i = 0; i < nodes && i < lab.nodes().size(); ++i) {
      for (const auto& n : names) {
        if (built.contains({lab.nodes()[i].host, n})) continue;
        const std::string ref = lab.registry() + "/" + n + ":flotilla";
        try {
          flotilla::support::DockerClient docker({.node = lab.nodes()[i].name, .host = lab.nodes()[i].host});
          docker.ensure_image(ref);
          const auto tagged = docker.call("POST", "/images/" + ref + "/tag?repo=" + n + "&tag=flotilla");
          if (tagged.status != 201) return "cannot tag " + ref + " on " + lab.nodes()[i].name + ": " + tagged.body;
        } catch (const std::exception& e) {
          return "cannot pull " + ref + " on " + lab.nodes()[i].name + ": " + e.what();
        }
        built.insert({lab.nodes()[i].host, n});
      }
    }
    return {};
  }
  for (size_t i = 0; i < nodes && i < lab.nodes().size(); ++i) {
    std::vector<std::string> argv = {"bash", script, "--host", lab.nodes()[i].host, "--hello", hello};
    const size_t fixed = argv.size();
    for (const auto& n : names)
      if (!built.contains({lab.nodes()[i].host, n})) argv.push_back(n);
    if (argv.size() == fixed) continue;
    const auto r = flotilla::support::run_command(argv, std::chrono::seconds(300));
    if (!r.ok()) return "scripts/build-images.sh failed on " + lab.nodes()[i].name + ":\n" + r.out + r.err;
    for (size_t k = fixed; k < argv.size(); ++k) built.insert({lab.nodes()[i].host, argv[k]});
  }
  return {};
}

/// An image that plays the part of one a test cannot pull: `reference` is tagged on the lab's
/// busybox with `/bin/sh -c script stand-in` as its entrypoint (so the container's command
/// comes to the script as $1...), exposing `port` when not 0 and declaring `volumes` as the
/// image it stands in for does.
struct StandIn {
  std::string reference;
  std::string script;
  int port = 0;
  std::vector<std::string> volumes;
};

/// Tags each stand-in under its reference in every lab node's dockerd; removes them again when
/// destroyed, failed tests included.
class StandInImages {
 public:
  StandInImages(const DockerLab& lab, const std::vector<StandIn>& images) {
    using nlohmann::json;
    for (const auto& node : lab.nodes()) {
      flotilla::support::DockerClient docker({.node = node.name, .host = node.host});
      for (const auto& st : images) {
        const std::string name = "flotilla-stand-in-build";
        docker.remove_container(name);
        const std::string id = docker.create_container(name, {{"Image", DockerLab::kImage}, {"Cmd", {"/bin/sh"}}});
        const auto colon = st.reference.rfind(':');
        json config = {{"Entrypoint", {"/bin/sh", "-c", st.script, "stand-in"}}, {"Cmd", nullptr}};
        if (st.port != 0) config["ExposedPorts"] = {{std::to_string(st.port) + "/tcp", json::object()}};
        for (const auto& v : st.volumes) config["Volumes"][v] = json::object();
        const auto r = docker.call("POST",
                                   "/commit?container=" + id + "&repo=" + st.reference.substr(0, colon) + "&tag=" + st.reference.substr(colon + 1),
                                   config.dump(), {"Content-Type: application/json"});
        docker.remove_container(id);
        if (r.status != 201) throw std::runtime_error("cannot tag stand-in " + st.reference + " on " + node.name + ": " + r.body);
        tagged_.push_back({node, st.reference});
      }
    }
  }
  ~StandInImages() {
    for (const auto& [node, ref] : tagged_) {
      try {
        flotilla::support::DockerClient docker({.node = node.name, .host = node.host});
        (void)docker.call("DELETE", "/images/" + ref + "?force=true");
      } catch (...) {
      }
    }
  }
  StandInImages(const StandInImages&) = delete;
  StandInImages& operator=(const StandInImages&) = delete;

 private:
  std::vector<std::pair<LabNode, std::string>> tagged_;
};

class DockerAddonHost {
 public:
  /// `nodes`: the node views the addon sees (name, address, roles, runtime, runtime_config).
  DockerAddonHost(const std::string& addon_stem, std::string addon_name, nlohmann::json nodes)
      : addon_name_(std::move(addon_name)), nodes_(std::move(nodes)), docker_("runtime_docker"), process_("runtime_process") {
    const std::string path = std::string(FLOTILLA_PLUGIN_DIR) + "/" + addon_stem + ".so";
    lib_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) throw std::runtime_error("cannot load " + path + ": " + dlerror());
    auto entry = reinterpret_cast<flt_entry_fn>(dlsym(lib_, FLT_ENTRY_SYMBOL));
    if (entry == nullptr) throw std::runtime_error(path + " exports no " FLT_ENTRY_SYMBOL);
    addon_ = static_cast<const flt_addon_v1*>(entry()->get_interface(FLT_INTERFACE_ADDON));
    if (addon_ == nullptr) throw std::runtime_error(path + " is not an addon");
    api_ = flt_host_api{FLT_ABI_VERSION, sizeof(flt_host_api), &log_cb, &progress_cb, &cancelled_cb, &set_result_cb,
                        &set_error_cb,   &runtime_cb,          &state_get_cb, &state_set_cb};
  }
  ~DockerAddonHost() {
    for (const auto& [key, record] : components_) {
      try {
        (void)runtime_of(key.first).call("stop", {{"node", node(key.first)}, {"record", record}, {"timeout_s", 2}, {"purge", true}});
      } catch (...) {
      }
    }
  }
  DockerAddonHost(const DockerAddonHost&) = delete;
  DockerAddonHost& operator=(const DockerAddonHost&) = delete;

  /// The lab's nodes as Docker-runtime node views with the given roles (one per node, in order).
  static nlohmann::json lab_nodes(const DockerLab& lab, const std::vector<std::string>& roles, const std::string& cluster) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < roles.size() && i < lab.nodes().size(); ++i) {
      const LabNode& n = lab.nodes()[i];
      out.push_back({{"name", roles[i] == "infra" ? "infra" : "swarm-" + std::to_string(i)},
                     {"address", n.address},
                     {"roles", {roles[i]}},
                     {"runtime", "docker"},
                     {"runtime_config", {{"host", n.host}, {"cluster", cluster}}},
                     {"state", "running"}});
    }
    return out;
  }

  /// An addon request over this host's nodes with `config`, placed on `placed`.
  nlohmann::json request(const nlohmann::json& config, const std::vector<std::string>& placed, const std::string& dir) const {
    return {{"addon", {{"name", addon_name_}, {"plugin", addon_name_}, {"config", config}, {"nodes", placed}, {"dir", dir},
                       {"workload_prefix", prefix()}}},
            {"cluster", {{"name", "lab"}, {"state_dir", dir}}},
            {"nodes", nodes_},
            {"services", nlohmann::json::array()},
            {"addons", nlohmann::json::object()},
            {"components", nlohmann::json::array()}};
  }

  /// Calls an addon operation ("validate", "apply", "destroy"); returns (status, result or error).
  std::pair<flt_status, std::string> call(const std::string& op, const nlohmann::json& request) {
    Call c{{&api_}, this, {}, {}};
    const std::string text = request.dump();
    const flt_operation fn = op == "apply" ? addon_->apply : op == "destroy" ? addon_->destroy : addon_->validate;
    const flt_status st = fn(&c.base, text.data(), text.size());
    return {st, st == FLT_OK ? c.result : c.error};
  }

  /// The container name of component `name` (as the broker names it).
  [[nodiscard]] std::string workload_name(const std::string& name) const { return prefix() + name; }
  [[nodiscard]] std::string prefix() const { return "addon-" + addon_name_ + "-"; }
  [[nodiscard]] const std::vector<std::string>& logs() const { return logs_; }
  [[nodiscard]] nlohmann::json& state() { return state_; }
  [[nodiscard]] const nlohmann::json& nodes() const { return nodes_; }

 private:
  struct Call {
    flt_call base;
    DockerAddonHost* host;
    std::string result;
    std::string error;
  };

  static Call& self(flt_call* c) { return *reinterpret_cast<Call*>(c); }
  static void log_cb(flt_call* c, flt_log_level, const char* msg, size_t len) {
    std::lock_guard lock(self(c).host->mu_);
    self(c).host->logs_.emplace_back(msg, len);
  }
  static void progress_cb(flt_call*, const char*, size_t) {}
  static int cancelled_cb(flt_call*) { return 0; }
  static void set_result_cb(flt_call* c, const char* j, size_t len) { self(c).result.assign(j, len); }
  static void set_error_cb(flt_call* c, const char* m, size_t len) { self(c).error.assign(m, len); }
  static void state_get_cb(flt_call* c, flt_json_sink sink, void* user) {
    const std::string s = self(c).host->state_.dump();
    sink(user, s.data(), s.size());
  }
  static flt_status state_set_cb(flt_call* c, const char* j, size_t len) {
    self(c).host->state_ = nlohmann::json::parse(std::string(j, len));
    return FLT_OK;
  }
  static flt_status runtime_cb(flt_call* c, const char* req, size_t len, flt_json_sink sink, void* user) {
    nlohmann::json out;
    flt_status st = FLT_OK;
    try {
      st = self(c).host->runtime(nlohmann::json::parse(std::string(req, len)), out);
    } catch (const std::exception& e) {
      st = FLT_ERROR;
      out = {{"error", e.what()}};
    }
    const std::string s = out.dump();
    sink(user, s.data(), s.size());
    return st;
  }

  [[nodiscard]] nlohmann::json node(const std::string& name) const {
    for (const auto& n : nodes_)
      if (n.value("name", "") == name) return n;
    throw std::runtime_error("no node " + name);
  }
  [[nodiscard]] const PluginHarness& runtime_of(const std::string& node_name) const {
    return node(node_name).value("runtime", "process") == "docker" ? docker_ : process_;
  }

  flt_status forward(const std::string& node_name, const std::string& op, nlohmann::json req, nlohmann::json& out) {
    req["node"] = node(node_name);
    const PluginCallOutcome r = runtime_of(node_name).call(op, req);
    out = r.ok() ? r.result : nlohmann::json{{"error", r.error}};
    if (out.is_null()) out = nlohmann::json::object();
    return r.status;
  }

  flt_status runtime(const nlohmann::json& r, nlohmann::json& out) {
    const std::string op = r.value("op", "");
    const std::string node_name = r.value("node", "");
    if (op == "batch") {
      // This stand-in host runs a batch's operations one after another, each result in its
      // place; the engine's broker runs them at once (tests/engine/engine_test.cpp).
      out = {{"results", nlohmann::json::array()}};
      for (const auto& one : r.value("ops", nlohmann::json::array())) {
        nlohmann::json result = nlohmann::json::object();
        const flt_status st = runtime(one, result);
        out["results"].push_back(st == FLT_OK ? nlohmann::json{{"status", st}, {"result", result}}
                                              : nlohmann::json{{"status", st}, {"error", result.value("error", "")}});
      }
      return FLT_OK;
    }
    if (op == "list") {
      out = {{"components", nlohmann::json::array()}};
      for (const auto& [key, record] : components_)
        out["components"].push_back({{"node", key.first}, {"name", key.second}, {"record", record}});
      return FLT_OK;
    }
    if (op == "put_file" || op == "remove_file") {
      nlohmann::json req = {{"path", addon_name_ + "/" + r.value("path", "")}};
      if (op == "remove_file") req["remove"] = true;
      else req.update({{"content", r.value("content", "")}, {"mode", r.value("mode", 0644)}});
      return forward(node_name, "put_file", req, out);
    }
    const std::string name = r.contains("workload") ? r["workload"].value("name", "") : r.value("name", "");
    const std::pair<std::string, std::string> key{node_name, name};
    if (op == "start") {
      nlohmann::json w = r["workload"];
      w["name"] = workload_name(name);
      w["owner"] = "addon:" + addon_name_;
      const flt_status st = forward(node_name, "start", {{"workload", w}}, out);
      if (st == FLT_OK) components_[key] = out.value("record", out);
      return st;
    }
    const auto found = components_.find(key);
    if (found == components_.end()) {
      out = op == "inspect" ? nlohmann::json{{"state", "missing"}} : nlohmann::json::object();
      return op == "signal" ? FLT_NOT_FOUND : FLT_OK;
    }
    nlohmann::json req = {{"record", found->second}};
    if (op == "stop") {
      req.update({{"timeout_s", 5}, {"purge", true}});
      const flt_status st = forward(node_name, "stop", req, out);
      if (st == FLT_OK) components_.erase(found);
      return st;
    }
    if (op == "signal") req["signal"] = r.value("signal", "HUP");
    return forward(node_name, op, req, out);
  }

  std::string addon_name_;
  nlohmann::json nodes_;
  PluginHarness docker_;
  PluginHarness process_;
  void* lib_ = nullptr;
  const flt_addon_v1* addon_ = nullptr;
  flt_host_api api_{};
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, nlohmann::json> components_;
  std::vector<std::string> logs_;
  nlohmann::json state_ = nlohmann::json::object();
};

/// Calls addon operation `op` and requires it to succeed, the plugin's error shown when it does
/// not; returns the result's text.
inline std::string call_ok(DockerAddonHost& host, const std::string& op, const nlohmann::json& request) {
  auto [st, out] = host.call(op, request);
  INFO(op << ": " << out);
  REQUIRE(st == FLT_OK);
  return out;
}

/// The names of the containers of addon `addon` on lab node `node` (by the docker runtime's
/// component label, io.flotilla.component=addon:ADDON), sorted.
inline std::vector<std::string> addon_containers(const LabNode& node, const std::string& addon) {
  flotilla::support::DockerClient docker({.node = node.name, .host = node.host});
  std::vector<std::string> out;
  for (const auto& c : docker.list_containers({"io.flotilla.component=addon:" + addon})) out.push_back(c.name);
  std::sort(out.begin(), out.end());
  return out;
}

/// The body of GET `url` when it answers 200, or "" when it answers otherwise or nothing answers.
inline std::string get_body(const std::string& url) {
  try {
    flotilla::support::HttpClient http({.timeouts = {std::chrono::milliseconds(2000), std::chrono::milliseconds(5000)}});
    const auto r = http.send({.url = url});
    return r.status == 200 ? r.body : std::string();
  } catch (const flotilla::support::HttpError&) {
    return {};
  }
}

}  // namespace flotilla::test
