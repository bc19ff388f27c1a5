#include "support/engine_addon_host.hpp"

#include "addon_request.hpp"
#include "plugin_views.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <fstream>
#include <iostream>
#include <mutex>

namespace flotilla::test {

using json = nlohmann::json;
namespace fs = std::filesystem;

/// Keeps every line the default logger writes, for tests that look for a warning.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override { lines_.emplace_back(msg.payload.data(), msg.payload.size()); }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

namespace {

std::string topology(const std::string& cidr, int swarm) {
  return "[cluster]\nname = \"addon-host\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" + cidr +
         "\"\n\n[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n[[nodes]]\nname = \"swarm\"\ncount = " +
         std::to_string(swarm) + "\nroles = [\"swarm\"]\n";
}

/// The failed steps of a report, one per line ("" when none failed).
std::string failures(const ApplyReport& r) {
  std::string out;
  for (const auto& s : r.results)
    if (s.outcome == StepOutcome::failed || s.outcome == StepOutcome::skipped) out += s.id + ": " + s.message + "\n";
  return out;
}

}  // namespace

EngineAddonHost::EngineAddonHost(std::string plugin, fs::path root, const std::string& cidr, int swarm)
    : name_(std::move(plugin)), root_(std::move(root)), sink_(std::make_shared<LineSink>()) {
  fs::create_directories(root_);
  std::ofstream(root_ / "cluster.toml") << topology(cidr, swarm);
  EngineOptions o;
  o.topology_file = root_ / "cluster.toml";
  o.plugin_path = FLOTILLA_PLUGIN_DIR;
  o.state_dir = root_ / "state";
  o.stop_timeout = std::chrono::seconds(5);
  auto e = Engine::open(o);
  if (!e) FAIL("the engine cannot open the test cluster: " << e.error().message);
  engine_ = std::move(*e);
  plugin_ = engine_->plugins().find("addon", name_);
  if (plugin_ == nullptr) FAIL("no addon plugin " << name_ << " in " << FLOTILLA_PLUGIN_DIR);
  auto p = engine_->plan();
  if (!p) FAIL("cannot plan the test cluster: " << p.error().message);
  CancelToken cancel;
  auto r = engine_->apply(*p, cancel, nullptr);
  if (!r) FAIL("cannot bring the test cluster's nodes up: " << r.error().message);
  if (const std::string f = failures(*r); !f.empty()) FAIL("cannot bring the test cluster's nodes up:\n" << f);
  auto st = engine_->load_state();
  if (!st) FAIL("cannot read the test cluster's state: " << st.error().message);
  nodes_state_ = *st;
  // As the step runner does before it applies an addon.
  fs::create_directories(addon_dir());
  broker_ = std::make_unique<RuntimeBroker>(*engine_);
  spdlog::default_logger()->sinks().push_back(sink_);
}

EngineAddonHost::~EngineAddonHost() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  if (!engine_) return;
  // What the addon left running is stopped through the broker, as destroy_addon does. The
  // local nodes hold nothing else (their directories go with the test's scratch directory); an
  // engine `down` would refuse this state, whose addon record only the broker ever wrote.
  // A failure is reported, never swallowed: it would leave processes behind for the next test.
  std::vector<pid_t> pids;
  std::string problem;
  try {
    for (const auto& [key, pid] : pids_) {
      pids.push_back(pid);
      if (auto ok = broker_->stop_component(name_, key.first + "/" + key.second); !ok) problem += ok.error().message + "\n";
    }
  } catch (const std::exception& e) {
    problem = std::string("stopping the addon's components threw: ") + e.what();
  }
  for (const pid_t pid : pids)
    if (proc::running(pid)) problem += "pid " + std::to_string(pid) + " of addon " + name_ + " still runs after its stop\n";
  if (problem.empty()) return;
  const std::string text = "the addon's components in " + root_.string() + " were not all stopped:\n" + problem;
  // While a failed REQUIRE unwinds, a second assertion would be lost: print it instead.
  if (std::uncaught_exceptions() > 0) std::cerr << text << '\n';
  else FAIL_CHECK(text);
}

json EngineAddonHost::request(const json& config, const std::vector<std::string>& placed, const json& services,
                              const json& addons, const std::vector<std::string>& nodes) {
  AddonPlan a;
  a.name = name_;
  a.plugin = name_;
  a.config = config;
  a.nodes = placed;
  json r = addon_request(engine_->topology(), engine_->state_dir(), a, config, nodes_state_, plan_);
  r["services"] = services;
  r["addons"] = addons;
  if (!nodes.empty()) {
    json kept = json::array();
    for (const auto& n : r["nodes"])
      if (std::find(nodes.begin(), nodes.end(), n.value("name", "")) != nodes.end()) kept.push_back(n);
    r["nodes"] = kept;
  }
  return r;
}

std::pair<flt_status, std::string> EngineAddonHost::call(const std::string& op, const json& request) {
  CallHooks hooks;
  hooks.instance = name_;
  hooks.progress = [](const std::string&) {};
  hooks.cancelled = [] { return false; };
  hooks.runtime = [this](const json& req, json& out) { return runtime(req, out); };
  hooks.state_get = [this] { return state_; };
  hooks.state_set = [this](const json& v) -> flt_status {
    state_ = v;
    return FLT_OK;
  };
  const flt_addon_v1& addon = *plugin_->addon;
  const flt_operation fn = op == "apply" ? addon.apply : op == "destroy" ? addon.destroy : addon.validate;
  const CallResult r = call_plugin(*plugin_, fn, op.c_str(), request, hooks);
  return {r.status, r.status == FLT_OK ? r.result.dump() : r.error};
}

pid_t EngineAddonHost::pid_of(const std::string& node, const std::string& name) {
  const std::lock_guard lock(mu_);
  const auto c = pids_.find({node, name});
  return c != pids_.end() && c->second > 0 && proc::running(c->second) ? c->second : -1;
}

flt_status EngineAddonHost::runtime(const json& req, json& out) {
  const std::string op = req.value("op", "");
  // A batch runs in the engine's broker, each of its operations back through here to be recorded.
  if (op == "batch") return broker_->batch(name_, req, out, [this](const json& one, json& result) { return runtime(one, result); });
  const std::string name = req.contains("workload") ? req["workload"].value("name", "") : req.value("name", req.value("path", ""));
  {
    const std::lock_guard lock(mu_);
    ops_.push_back({op, req.value("node", ""), name});
  }
  const std::pair<std::string, std::string> key{req.value("node", ""), name};
  if (op != "start" || !req.contains("workload")) {
    const flt_status st = broker_->handle(name_, req, out);
    const std::lock_guard lock(mu_);
    if (op == "stop" && st == FLT_OK) pids_.erase(key);
    return st;
  }
  json changed = req;
  before_start(changed["workload"]);
  const flt_status st = broker_->handle(name_, changed, out);
  const std::lock_guard lock(mu_);
  if (st == FLT_OK) pids_[key] = out.value("record", out).value("pid", 0);
  return st;
}

json EngineAddonHost::addon_state() { return state_.is_null() ? json::object() : state_; }

std::string EngineAddonHost::address(const std::string& node) {
  return nodes_state_.value("nodes", json::object()).value(node, json::object()).value("address", "");
}

fs::path EngineAddonHost::addon_dir() const { return engine_->state_dir() / "addons" / name_; }

fs::path EngineAddonHost::files_dir(const std::string& node) const {
  return engine_->state_dir() / "nodes" / node / "files" / safe_name(name_);
}

std::vector<std::string> EngineAddonHost::logs() const { return sink_->lines(); }

}  // namespace flotilla::test
