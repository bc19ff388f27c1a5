// A fake engine host for addon tests: loads an addon plugin through the C ABI and serves its
// runtime operations itself, with real processes and real files under a temporary directory.
// It stands in for the engine's host and process runtime only; the programs it starts are the
// real ones. Every process it started is stopped, by pid, when it is destroyed.
#pragma once

#include "support/prometheus_fixture.hpp"

#include <flotilla/plugin.h>

#include <dlfcn.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace flotilla::test {

class FakeProcessHost {
 public:
  /// One runtime operation as the addon asked for it.
  struct Op {
    std::string op;
    std::string node;
    std::string name;  // workload name or file path
  };

  FakeProcessHost(const std::string& plugin_path, std::filesystem::path root) : root_(std::move(root)) {
    lib_ = dlopen(plugin_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) throw std::runtime_error("cannot load " + plugin_path + ": " + dlerror());
    auto entry = reinterpret_cast<flt_entry_fn>(dlsym(lib_, FLT_ENTRY_SYMBOL));
    if (entry == nullptr) throw std::runtime_error(plugin_path + " exports no " FLT_ENTRY_SYMBOL);
    descriptor_ = entry();
    addon_ = static_cast<const flt_addon_v1*>(descriptor_->get_interface(FLT_INTERFACE_ADDON));
    if (addon_ == nullptr) throw std::runtime_error(plugin_path + " is not an addon");
    api_ = flt_host_api{FLT_ABI_VERSION, sizeof(flt_host_api), &log_cb, &progress_cb, &cancelled_cb, &set_result_cb,
                        &set_error_cb,   &runtime_cb,          &state_get_cb, &state_set_cb};
  }
  ~FakeProcessHost() {
    for (auto& [key, w] : workloads_) w.child.reset();
    // The plugin stays loaded: nothing made from it is left, but unloading buys nothing here.
  }
  FakeProcessHost(const FakeProcessHost&) = delete;
  FakeProcessHost& operator=(const FakeProcessHost&) = delete;

  [[nodiscard]] const flt_plugin_descriptor& descriptor() const { return *descriptor_; }

  /// Calls an addon operation; returns (status, result or error text).
  std::pair<flt_status, std::string> call(const char* op, const nlohmann::json& request) {
    Call c{{&api_}, this, {}, {}};
    const std::string text = request.dump();
    flt_operation fn = std::string(op) == "apply" ? addon_->apply : std::string(op) == "destroy" ? addon_->destroy : addon_->validate;
    const flt_status st = fn(&c.base, text.data(), text.size());
    return {st, st == FLT_OK ? c.result : c.error};
  }

  /// Pid of a running workload, or -1.
  [[nodiscard]] pid_t pid_of(const std::string& node, const std::string& name) {
    auto it = workloads_.find({node, name});
    if (it == workloads_.end() || !it->second.child || !it->second.child->running()) return -1;
    return it->second.child->pid();
  }
  [[nodiscard]] const std::vector<Op>& ops() const { return ops_; }
  void clear_ops() { ops_.clear(); }
  [[nodiscard]] const std::vector<std::string>& logs() const { return logs_; }
  [[nodiscard]] nlohmann::json& state() { return state_; }
  [[nodiscard]] std::filesystem::path files_dir(const std::string& node) const { return root_ / "nodes" / node / "files"; }
  /// Changes every workload before it starts (e.g. to drop a flag and test a fallback).
  void rewrite_workloads(std::function<void(nlohmann::json&)> fn) { rewrite_ = std::move(fn); }

 private:
  struct Call {
    flt_call base;
    FakeProcessHost* host;
    std::string result;
    std::string error;
  };
  struct Workload {
    std::string spec;
    std::unique_ptr<prom::Child> child;
  };

  static Call& self(flt_call* c) { return *reinterpret_cast<Call*>(c); }
  static void log_cb(flt_call* c, flt_log_level, const char* msg, size_t len) { self(c).host->logs_.emplace_back(msg, len); }
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

  flt_status runtime(const nlohmann::json& r, nlohmann::json& out) {
    const std::string op = r.value("op", "");
    const std::string node = r.value("node", "");
    ops_.push_back({op, node, r.contains("workload") ? r["workload"].value("name", "") : r.value("name", r.value("path", ""))});
    if (op == "start") {
      nlohmann::json w = r["workload"];
      if (rewrite_) rewrite_(w);
      if (!w.contains("command")) {
        out = {{"error", "the fake process host runs commands only"}};
        return FLT_NOT_SUPPORTED;
      }
      auto& slot = workloads_[{node, w["name"].get<std::string>()}];
      const std::string spec = w.dump();
      if (slot.child && slot.child->running() && slot.spec == spec) {
        out = {{"record", {{"pid", slot.child->pid()}}}, {"changed", false}};
        return FLT_OK;
      }
      slot.child.reset();
      const auto dir = root_ / "nodes" / node / "logs";
      std::filesystem::create_directories(dir);
      slot.child = std::make_unique<prom::Child>(w["command"].get<std::vector<std::string>>(), dir / (w["name"].get<std::string>() + ".log"));
      slot.spec = spec;
      out = {{"record", {{"pid", slot.child->pid()}, {"stderr", (dir / (w["name"].get<std::string>() + ".log")).string()}}}, {"changed", true}};
      return FLT_OK;
    }
    if (op == "stop") {
      auto it = workloads_.find({node, r.value("name", "")});
      if (it != workloads_.end()) workloads_.erase(it);  // the Child destructor stops the process
      out = nlohmann::json::object();
      return FLT_OK;
    }
    if (op == "inspect") {
      const pid_t pid = pid_of(node, r.value("name", ""));
      out = {{"state", pid > 0 ? "running" : "missing"}};
      return FLT_OK;
    }
    if (op == "signal") {
      const pid_t pid = pid_of(node, r.value("name", ""));
      if (pid <= 0) return FLT_NOT_FOUND;
      kill(pid, r.value("signal", "") == "HUP" ? SIGHUP : SIGTERM);
      out = nlohmann::json::object();
      return FLT_OK;
    }
    if (op == "put_file") {
      const auto path = files_dir(node) / r.value("path", "");
      std::string old;
      if (std::ifstream in(path, std::ios::binary); in) old.assign(std::istreambuf_iterator<char>(in), {});
      const std::string content = r.value("content", "");
      const bool changed = !std::filesystem::exists(path) || old != content;
      if (changed) prom::write_atomically(path, content);
      out = {{"path", path.string()}, {"changed", changed}};
      return FLT_OK;
    }
    if (op == "remove_file") {
      std::filesystem::remove(files_dir(node) / r.value("path", ""));
      out = nlohmann::json::object();
      return FLT_OK;
    }
    if (op == "list") {
      nlohmann::json list = nlohmann::json::array();
      for (auto& [key, w] : workloads_) list.push_back({{"node", key.first}, {"name", key.second}, {"record", {{"pid", w.child ? w.child->pid() : -1}}}});
      out = {{"components", list}};
      return FLT_OK;
    }
    out = {{"error", "unknown runtime op " + op}};
    return FLT_INVALID;
  }

  std::filesystem::path root_;
  void* lib_ = nullptr;
  const flt_plugin_descriptor* descriptor_ = nullptr;
  const flt_addon_v1* addon_ = nullptr;
  flt_host_api api_{};
  std::map<std::pair<std::string, std::string>, Workload> workloads_;
  std::vector<Op> ops_;
  std::vector<std::string> logs_;
  nlohmann::json state_ = nlohmann::json::object();
  std::function<void(nlohmann::json&)> rewrite_;
};

}  // namespace flotilla::test
