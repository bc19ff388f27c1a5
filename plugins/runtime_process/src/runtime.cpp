#include "runtime_process/runtime.hpp"

#include "runtime_process/process_group.hpp"
#include "runtime_process/spawn.hpp"
#include "runtime_process/workload_files.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/process.hpp"
#include "flotilla/support/request.hpp"
#include "flotilla/support/wait.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

extern char** environ;

namespace flotilla::process_runtime {
namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::NotFound;
using flotilla::sdk::NotSupported;
using flotilla::sdk::Retryable;
using flotilla::support::errno_text;
using flotilla::support::str_or;
using namespace std::chrono_literals;

constexpr auto kStartupGrace = 150ms;  // a workload that dies this fast failed to start
constexpr double kDefaultStopTimeout = 10.0;
constexpr int kStderrTailLines = 20;

/// The workload as spec.json keeps it, without the values of its environment: the runtime
/// cannot tell a secret an addon hands its workload (a token) from an ordinary value, and the
/// file sits in the state directory. The spec hash still covers the values.
json stored_workload(json workload) {
  if (const auto env = workload.find("env"); env != workload.end() && env->is_object())
    for (auto& entry : env->items()) entry.value() = "(not stored)";
  return workload;
}

double timeout_of(const json& req) {
  const auto it = req.find("timeout_s");
  return it != req.end() && it->is_number() ? it->get<double>() : kDefaultStopTimeout;
}

}  // namespace

json ProcessRuntime::validate(Context&, const json& req) {
  json errors = json::array();
  const json workload = req.value("workload", json::object());
  for (const auto& msg : validate_workload(workload))
    errors.push_back({{"message", msg}, {"key", msg.find(" stop_mode ") != std::string::npos ? "stop_mode" : "command"}});
  const std::string name = str_or(workload, "name");
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    errors.push_back({{"message", "workload name `" + name + "` is not usable as a file name"}, {"key", "name"}});
  return json{{"errors", errors}};
}

json ProcessRuntime::start(Context& ctx, const json& req) {
  const NodeInfo node = node_of(req);
  const json workload = req.value("workload", json::object());
  const std::string name = check_workload_name(str_or(workload, "name"), node);
  if (const auto errors = validate_workload(workload); !errors.empty()) {
    if (!workload.contains("command") && workload.contains("image")) throw NotSupported(errors.front());
    throw Invalid(errors.front());
  }
  const fs::path dir = workload_dir(node, name);
  std::lock_guard lock(workload_mutex(dir));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(FLT_ERROR, "cannot create " + dir.string() + " for workload " + name + " on node " + node.name + ": " + ec.message());

  const std::string hash = spec_hash(workload, node);
  if (const auto old = read_pid_file(dir)) {
    if (still_runs(*old)) {
      const auto spec = support::read_file_if_exists(dir / "spec.json");
      const json old_spec = spec ? json::parse(*spec, nullptr, false) : json();
      if (old_spec.is_object() && old_spec.value("spec_hash", "") == hash) {
        // A file written before it was made 0600 (see below) is closed on the next run.
        fs::permissions(dir / "spec.json", fs::perms::owner_read | fs::perms::owner_write, ec);
        return json{{"record", make_record(name, dir, *old, hash)}, {"changed", false}};
      }
      ctx.info("spec of " + name + " on node " + node.name + " changed; replacing pid " + std::to_string(old->pid));
    }
    // Also reaps what a crashed leader left behind in its group.
    if (!terminate_groups({*old}, kDefaultStopTimeout, stored_stop_mode(dir)))
      throw Retryable("cannot replace " + name + " on node " + node.name + ": pid " + std::to_string(old->pid) +
                      " survived SIGKILL");
    fs::remove(dir / "pid", ec);
  }
  ctx.check_cancelled();

  SpawnSpec spec;
  spec.workload = name;
  spec.node = node.name;
  spec.dir = dir;
  spec.stdout_path = dir / "stdout.log";
  spec.stderr_path = dir / "stderr.log";
  spec.command = workload.at("command").get<std::vector<std::string>>();
  for (char** e = environ; e && *e; ++e) {
    const std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) spec.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (const auto env = workload.value("env", json::object()); env.is_object())
    for (const auto& [k, v] : env.items()) spec.env[k] = v.is_string() ? v.get<std::string>() : v.dump();
  spec.env["FLOTILLA_NODE"] = node.name;
  spec.env["FLOTILLA_NODE_ADDRESS"] = node.address;
  spec.env["FLOTILLA_WORKLOAD"] = name;

  // 0600: the hash covers the environment's values, so it must not be readable by others.
  support::write_file_atomic(dir / "spec.json", json{{"workload", stored_workload(workload)}, {"spec_hash", hash}}.dump(2) + "\n", 0600);
  const std::uintmax_t stderr_from = fs::exists(spec.stderr_path, ec) ? fs::file_size(spec.stderr_path, ec) : 0;

  ctx.progress("starting " + name);
  Target t;
  try {
    t = spawn(spec, [&](const Target& child) { support::write_pid_file(dir / "pid", child); });
  } catch (...) {
    fs::remove(dir / "pid", ec);  // nothing runs under that pid
    throw;
  }

  // Watch it for the startup grace: one that exits by then failed to start.
  (void)support::wait_until(kStartupGrace, kPollInterval, [&] { return !still_runs(t); });
  if (!still_runs(t)) {
    terminate_groups({t}, 0);  // children it may have left
    fs::remove(dir / "pid", ec);
    std::string tail = tail_lines(spec.stderr_path, stderr_from, kStderrTailLines);
    throw Error(FLT_ERROR, "workload " + name + " on node " + node.name + " exited right after it started (command `" +
                               spec.command.front() + "`); last lines of " + spec.stderr_path.string() + ":\n" +
                               (tail.empty() ? std::string("(empty)") : tail));
  }
  ctx.info("started " + name + " on node " + node.name + " (pid " + std::to_string(t.pid) + ")");
  return json{{"record", make_record(name, dir, t, hash)}, {"changed", true}};
}

json ProcessRuntime::inspect(Context&, const json& req) {
  const NodeInfo node = node_of(req);
  const std::string name = name_of(req);
  std::vector<Target> targets;
  fs::path dir;
  if (!name.empty()) dir = workload_dir(node, check_workload_name(name, node));
  if (auto t = target_of_record(req.value("record", json::object()))) targets.push_back(*t);
  else if (!dir.empty()) {
    if (auto p = read_pid_file(dir)) targets.push_back(*p);
  }
  for (const Target& t : targets)
    if (still_runs(t)) return json{{"state", "running"}, {"pid", t.pid}, {"start_time", t.start_time}};
  std::error_code ec;
  const bool known = !dir.empty() && (fs::exists(dir / "pid", ec) || fs::exists(dir / "spec.json", ec));
  return json{{"state", known ? "exited" : "missing"}};
}

json ProcessRuntime::stop(Context& ctx, const json& req) {
  const NodeInfo node = node_of(req);
  const std::string name = name_of(req);
  if (name.empty()) {
    // Without a name there is no directory; a bare record can still be stopped.
    if (auto t = target_of_record(req.value("record", json::object())); t && !terminate_groups({*t}, timeout_of(req)))
      throw Retryable("pid " + std::to_string(t->pid) + " on node " + node.name + " survived SIGKILL");
    return json::object();
  }
  const fs::path dir = workload_dir(node, check_workload_name(name, node));
  std::lock_guard lock(workload_mutex(dir));
  const auto targets = targets_of(req, dir);
  if (!targets.empty()) ctx.progress("stopping " + name);
  if (!terminate_groups(targets, timeout_of(req), stored_stop_mode(dir)))
    throw Retryable("cannot stop " + name + " on node " + node.name + ": its processes survived SIGKILL");
  std::error_code ec;
  if (req.value("purge", false)) {
    fs::remove_all(dir, ec);
  } else {
    // The logs stay for `flotilla logs`; what says "this runs" goes.
    fs::remove(dir / "pid", ec);
    fs::remove(dir / "spec.json", ec);
  }
  if (ec) throw Error(FLT_ERROR, "stopped " + name + " on node " + node.name + " but cannot clean " + dir.string() + ": " + ec.message());
  return json::object();
}

json ProcessRuntime::signal(Context& ctx, const json& req) {
  const NodeInfo node = node_of(req);
  const std::string sig_name = str_or(req, "signal");
  const int sig = signal_number(sig_name);
  if (sig == 0)
    throw Invalid("unknown signal `" + sig_name + "`; use one of HUP, INT, QUIT, TERM, KILL, USR1, USR2");
  const std::string name = name_of(req);
  const fs::path dir = name.empty() ? fs::path() : workload_dir(node, check_workload_name(name, node));
  std::vector<Target> targets;
  if (auto t = target_of_record(req.value("record", json::object()))) targets.push_back(*t);
  else if (!dir.empty()) {
    if (auto p = read_pid_file(dir)) targets.push_back(*p);
  }
  for (const Target& t : targets) {
    if (!still_runs(t)) continue;
    signal_group(t, sig);
    ctx.debug("sent signal " + std::to_string(sig) + " to " + name + " (pid " + std::to_string(t.pid) + ")");
    return json::object();
  }
  throw NotFound("cannot signal " + (name.empty() ? std::string("workload") : name) + " on node " + node.name +
                 ": it is not running; start it first (flotilla up)");
}

json ProcessRuntime::put_file(Context&, const json& req) {
  const NodeInfo node = node_of(req);
  const std::string rel = str_or(req, "path");
  const fs::path p(rel);
  if (rel.empty() || p.is_absolute() || rel.find('\0') != std::string::npos)
    throw Invalid("put_file path `" + rel + "` on node " + node.name + " must be relative to the node's files directory");
  for (const auto& part : p)
    if (part == "..")
      throw Invalid("put_file path `" + rel + "` on node " + node.name + " must not contain `..`; name a file inside the node's files directory");
  const fs::path target = (node.workdir / "files" / p).lexically_normal();
  if (req.value("remove", false)) {
    // Removal rides on put_file so the frozen v1 table needs no new entry.
    std::lock_guard lock(workload_mutex(target));
    std::error_code ec;
    const bool removed = fs::remove(target, ec);
    if (ec) throw Error(FLT_ERROR, "cannot remove " + target.string() + " on node " + node.name + ": " + ec.message());
    return json{{"path", target.string()}, {"changed", removed}};
  }
  if (!req.contains("content") || !req["content"].is_string())
    throw Invalid("put_file of `" + rel + "` on node " + node.name + " needs `content` as a string");
  const std::string content = req["content"].get<std::string>();
  mode_t mode = 0644;
  if (const auto m = req.find("mode"); m != req.end()) {
    if (m->is_number_integer()) mode = static_cast<mode_t>(m->get<std::int64_t>());
    else if (m->is_string()) mode = static_cast<mode_t>(std::stoul(m->get<std::string>(), nullptr, 8));
    else throw Invalid("put_file mode of `" + rel + "` must be an integer (420 for 0644) or an octal string");
    if (mode > 07777) throw Invalid("put_file mode of `" + rel + "` is out of range; use e.g. 420 (0644)");
  }
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error(FLT_ERROR, "cannot create " + target.parent_path().string() + " on node " + node.name + ": " + ec.message());

  std::lock_guard lock(workload_mutex(target));
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw Invalid("put_file path `" + rel + "` on node " + node.name + " is a directory");
    if (support::read_file_if_exists(target) == content) {
      if ((st.st_mode & 07777) == mode) return json{{"path", target.string()}, {"changed", false}};
      if (::chmod(target.c_str(), mode) != 0) throw Error(FLT_ERROR, "cannot chmod " + target.string() + ": " + errno_text(errno));
      return json{{"path", target.string()}, {"changed", true}};
    }
  }
  support::write_file_atomic(target, content, mode);
  return json{{"path", target.string()}, {"changed", true}};
}

const char* manifest() { return R"json({"schema": {}})json"; }

}  // namespace flotilla::process_runtime
