// The engine's own addon host for plugin tests: a cluster of local-driver nodes brought up by
// the real engine, and an addon whose runtime operations go through the engine's runtime broker
// as in `up` (per-addon file paths, workload renaming, the node-ready check, PATH lookup,
// components recorded in the cluster's state, the real process runtime), called with requests
// the test writes, so that a test can also send what the engine never would (hostile names,
// instances of its own). The addon's own state (state_get/state_set) is kept here in memory;
// how the engine records it is covered by tests/engine/engine_test.cpp. It records the runtime
// operations and log lines the addon produced. When destroyed it stops, through the broker,
// whatever the addon left running, and reports a stop that failed or a process left running.
#pragma once

#include "engine.hpp"
#include "runtime_broker.hpp"

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::test {

class LineSink;

class EngineAddonHost {
 public:
  /// One runtime operation as the addon asked for it.
  struct Op {
    std::string op;
    std::string node;
    std::string name;  // workload name or file path, as the addon gave it
  };

  /// Brings up, under `root` (the topology and state directory), the nodes "infra" and
  /// "swarm-1".."swarm-<swarm>" with the local driver in `cidr` (infra is .1, swarm-N is
  /// .N+1), for the addon plugin `plugin` (also the addon's name). Fails the test case when
  /// the engine cannot open the cluster or bring the nodes up.
  EngineAddonHost(std::string plugin, std::filesystem::path root, const std::string& cidr, int swarm);
  virtual ~EngineAddonHost();
  EngineAddonHost(const EngineAddonHost&) = delete;
  EngineAddonHost& operator=(const EngineAddonHost&) = delete;

  /// The addon's plugin as the engine loaded it.
  [[nodiscard]] const Plugin& plugin() const { return *plugin_; }
  /// The request the engine builds for this addon with `config`, placed on `placed`, with
  /// `services` and `addons` as given, and only the nodes in `nodes` (all when empty).
  [[nodiscard]] nlohmann::json request(const nlohmann::json& config, const std::vector<std::string>& placed,
                                       const nlohmann::json& services = nlohmann::json::array(),
                                       const nlohmann::json& addons = nlohmann::json::object(),
                                       const std::vector<std::string>& nodes = {});
  /// Calls an addon operation ("validate", "apply", "destroy") as the engine does; returns
  /// (status, result or error text).
  std::pair<flt_status, std::string> call(const std::string& op, const nlohmann::json& request);

  /// Pid of the addon's component `name` on `node` while it runs, else -1.
  [[nodiscard]] pid_t pid_of(const std::string& node, const std::string& name);
  /// The addon's own state as it last saved it ({} when none).
  [[nodiscard]] nlohmann::json addon_state();
  /// The node's address, as the driver gave it.
  [[nodiscard]] std::string address(const std::string& node);
  /// The directory the engine gives the addon (the request's addon.dir).
  [[nodiscard]] std::filesystem::path addon_dir() const;
  /// Where the process runtime places the addon's files on `node` (put_file paths are relative to it).
  [[nodiscard]] std::filesystem::path files_dir(const std::string& node) const;
  [[nodiscard]] const std::vector<Op>& ops() const { return ops_; }
  void clear_ops() { ops_.clear(); }
  /// Every line logged since the host was made (the plugin's carry its kind:name:instance prefix).
  [[nodiscard]] std::vector<std::string> logs() const;

 protected:
  /// Called with the workload of every start before it reaches the runtime broker. The real
  /// engine changes nothing here; only a fake host (sighup_only_host.hpp) does.
  virtual void before_start(nlohmann::json& /*workload*/) {}

 private:
  flt_status runtime(const nlohmann::json& req, nlohmann::json& out);

  std::string name_;
  std::filesystem::path root_;
  std::unique_ptr<Engine> engine_;
  const Plugin* plugin_ = nullptr;
  Plan plan_;
  // The state right after the nodes came up: requests are built from it. (Reloading the state
  // through the engine would drop the record of an addon its topology does not name.)
  nlohmann::json nodes_state_ = nlohmann::json::object();
  // The components the addon started and has not stopped: (node, name) -> pid.
  std::map<std::pair<std::string, std::string>, pid_t> pids_;
  std::unique_ptr<RuntimeBroker> broker_;
  nlohmann::json state_ = nlohmann::json::object();
  std::shared_ptr<LineSink> sink_;
  std::vector<Op> ops_;
  std::mutex mu_;  // ops_ and pids_: the operations of a batch arrive from several threads
};

}  // namespace flotilla::test
