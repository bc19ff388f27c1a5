#include "cli.hpp"

#include "cli_docs.hpp"
#include "cli_state.hpp"
#include "clock.hpp"
#include "engine.hpp"
#include "input_limits.hpp"
#include "json_access.hpp"
#include "logs.hpp"
#include "topology_schema.hpp"
#include "util.hpp"

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

namespace flotilla {
namespace po = boost::program_options;
namespace {

// ---------------------------------------------------------------------------------------
// Interrupts: the first Ctrl-C stops scheduling, the second aborts running steps.

std::atomic<CancelToken*> g_cancel{nullptr};

extern "C" void on_interrupt(int) {
  CancelToken* t = g_cancel.load();
  if (!t) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  const bool first = !t->stop_scheduling();
  t->request();
  static const char kFirst[] = "\nflotilla: interrupt: no new steps will start; running steps finish. Press Ctrl-C again to abort them.\n";
  static const char kSecond[] = "\nflotilla: aborting running steps.\n";
  if (first) (void)!::write(2, kFirst, sizeof kFirst - 1);
  else (void)!::write(2, kSecond, sizeof kSecond - 1);
}

struct InterruptScope {
  explicit InterruptScope(CancelToken& t) {
    g_cancel.store(&t);
    std::signal(SIGINT, &on_interrupt);
    std::signal(SIGTERM, &on_interrupt);
  }
  ~InterruptScope() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    g_cancel.store(nullptr);
  }
};

/// Colour is wanted unless NO_COLOR is set to something (no-color.org: an empty value is no request).
bool colour_wanted() {
  const char* v = std::getenv("NO_COLOR");
  return v == nullptr || *v == '\0';
}

// ---------------------------------------------------------------------------------------
// Progress: a live line on a terminal, plain lines otherwise, and a JSON event log.

class Progress final : public ExecutionObserver {
 public:
  Progress(bool tty, bool quiet, std::filesystem::path events) : tty_(tty), quiet_(quiet) {
    std::error_code ec;
    std::filesystem::create_directories(events.parent_path(), ec);
    events_.open(events, std::ios::app);
  }
  ~Progress() override { clear_line(); }

  void on_start(const Step& s, std::size_t done, std::size_t total) override {
    std::lock_guard lock(mu_);
    running_.insert(s.label);
    event("start", s, nullptr);
    if (tty_ && !quiet_) draw(done, total);
  }

  void on_finish(const Step& s, const StepResult& r, std::size_t done, std::size_t total) override {
    std::lock_guard lock(mu_);
    running_.erase(s.label);
    event("finish", s, &r);
    if (quiet_ && r.outcome == StepOutcome::succeeded) return;
    clear_line();
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1fs", r.seconds);
    switch (r.outcome) {
      case StepOutcome::succeeded: std::cerr << "  " << mark("ok", "32") << "  " << s.label << " (" << secs << ")\n"; break;
      case StepOutcome::failed: std::cerr << "  " << mark("FAILED", "31") << "  " << s.label << ": " << r.message << "\n"; break;
      case StepOutcome::skipped: std::cerr << "  " << mark("skipped", "33") << "  " << s.label << ": " << r.message << "\n"; break;
      case StepOutcome::not_started: break;
    }
    if (tty_ && !quiet_) draw(done, total);
  }

  void on_retry(const Step& s, const Error& e, int attempt, std::chrono::milliseconds delay) override {
    std::lock_guard lock(mu_);
    clear_line();
    std::cerr << "  retry  " << s.label << " (attempt " << attempt + 1 << " in " << delay.count() << " ms): " << e.message << "\n";
  }

 private:
  std::string mark(const char* text, const char* color) const {
    if (!tty_ || !colour_wanted()) return text;
    return std::string("\033[") + color + "m" + text + "\033[0m";
  }
  void clear_line() {
    if (tty_ && drawn_) std::cerr << "\r\033[K" << std::flush;
    drawn_ = false;
  }
  void draw(std::size_t done, std::size_t total) {
    std::string now;
    for (const auto& l : running_) {
      if (now.size() > 60) {
        now += ", ...";
        break;
      }
      now += (now.empty() ? "" : ", ") + l;
    }
    std::cerr << "\r\033[K[" << done << "/" << total << "] " << now << std::flush;
    drawn_ = true;
  }
  void event(const char* kind, const Step& s, const StepResult* r) {
    if (!events_) return;
    json e = {{"time", iso_now()}, {"event", kind}, {"step", s.id}};
    if (r) {
      e["outcome"] = r->outcome == StepOutcome::succeeded ? "succeeded" : r->outcome == StepOutcome::failed ? "failed" : "skipped";
      e["seconds"] = r->seconds;
      if (!r->message.empty()) e["message"] = redact(r->message);
    }
    events_ << e.dump() << "\n" << std::flush;
  }

  std::mutex mu_;
  bool tty_;
  bool quiet_;
  bool drawn_ = false;
  std::set<std::string> running_;
  std::ofstream events_;
};

// ---------------------------------------------------------------------------------------
// The command table.

struct Context {
  po::variables_map vm;
  std::vector<std::string> args;  // positional arguments after the subcommand
  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;
};

struct Command {
  const char* name;
  const char* summary;
  const char* usage;  // after "flotilla NAME"
  const char* example;
  std::function<void(po::options_description&)> options;
  int min_args;
  int max_args;
  std::function<int(Context&)> run;
};

void add_common(po::options_description& d) {
  d.add_options()("plugin-path", po::value<std::string>()->default_value(""), "extra plugin directories (colon-separated)")(
      "state-dir", po::value<std::string>()->default_value(""), "state directory (default: .flotilla/<cluster> beside FILE)")(
      "log-level", po::value<std::string>()->default_value(""), "trace, debug, info, warn or error")(
      "verbose,v", po::bool_switch(), "more output (log level info)")("quiet,q", po::bool_switch(), "only errors and results")(
      "help,h", po::bool_switch(), "show this help");
}
void add_output(po::options_description& d) {
  d.add_options()("output,o", po::value<std::string>()->default_value("text"), "text or json");
}
void add_parallelism(po::options_description& d) {
  d.add_options()("parallelism,p", po::value<int>()->default_value(10), "steps run at once (1-256)");
}

bool json_output(const Context& c) { return c.vm.count("output") && c.vm["output"].as<std::string>() == "json"; }

Result<std::unique_ptr<Engine>> open_engine(const Context& c, const std::string& file) {
  EngineOptions o;
  o.topology_file = file;
  o.plugin_path = c.vm["plugin-path"].as<std::string>();
  o.state_dir = c.vm["state-dir"].as<std::string>();
  if (c.vm.count("parallelism")) o.parallelism = c.vm["parallelism"].as<int>();
  return Engine::open(o);
}

int report_error(const Context& c, const Error& e, int code) {
  c.err << "error: " << redact(e.message) << "\n";
  return code;
}

// A cluster opened for reading: its engine and recorded state.
struct Opened {
  std::unique_ptr<Engine> engine;
  json state;
};

// Opens the topology and reads its state; on failure reports it and sets `code`.
std::optional<Opened> open_cluster(const Context& c, int& code) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) {
    code = report_error(c, engine.error(), kExitInvalid);
    return std::nullopt;
  }
  auto state = (*engine)->load_state();
  if (!state) {
    code = report_error(c, state.error(), kExitFailed);
    return std::nullopt;
  }
  return Opened{std::move(*engine), std::move(*state)};
}

// Prints the endpoints and the addons' messages.
void print_endpoints(const Context& c, const json& status) {
  std::vector<std::string> messages;
  for (const auto& a : status["addons"])
    for (const auto& m : a.value("messages", json::array())) messages.push_back(m.get<std::string>());
  for (const auto& m : messages) c.out << redact(m) << "\n";
  if (!status["endpoints"].empty()) {
    c.out << "Endpoints:\n";
    for (const auto& [k, v] : status["endpoints"].items()) c.out << "  " << k << ": " << v.get<std::string>() << "\n";
  }
}

// Applies a plan under the lock, with progress and interrupts, then prints the outcome.
int run_plan(Context& c, Engine& engine, const Plan& plan, const char* verb, bool quiet = false) {
  CancelToken cancel;
  InterruptScope scope(cancel);
  quiet = quiet || c.vm["quiet"].as<bool>();
  const bool tty = ::isatty(2) && !quiet;
  Progress progress(tty, quiet, engine.state_dir() / "events.jsonl");
  auto report = engine.apply(plan, cancel, &progress);
  if (!report) return report_error(c, report.error(), kExitFailed);
  const int failed = report->failed();
  const int skipped = report->skipped();
  if (failed > 0 || skipped > 0 || report->interrupted) {
    const auto not_started = std::count_if(report->results.begin(), report->results.end(),
                                           [](const StepResult& r) { return r.outcome == StepOutcome::not_started; });
    c.err << "\n" << verb << (report->interrupted ? " was interrupted: " : " finished with problems: ") << report->succeeded()
          << " of " << report->results.size() << " steps done, " << failed << " failed, " << skipped << " skipped, " << not_started
          << " not started.\n";
    for (const auto& r : report->results)
      if (r.outcome == StepOutcome::failed) c.err << "  - " << r.id << ": " << redact(r.message) << "\n";
    c.err << (failed > 0 ? "Fix the cause and run" : "Run") << " the same command again to finish: finished steps are kept and not repeated.\n";
    return report->interrupted ? kExitInterrupted : kExitFailed;
  }
  return kExitOk;
}

/// Takes the cluster's lock for `command`; says so in one line when it took over the lock of
/// a run that died, which needs no step from the user.
Result<StateLock> lock_cluster(Context& c, Engine& engine, const std::string& command) {
  auto lock = StateLock::acquire(engine.state_dir(), command, "flotilla unlock " + engine.topology().file.string());
  if (lock && !lock->took_over().empty()) c.err << "note: " << lock->took_over() << "\n";
  if (lock) engine.remove_stale_temp_files();  // a killed run's half-written files; nobody else writes now
  if (!lock && !lock.error().locked)
    lock.error().message += "; the state directory must be writable: fix its permissions or give another with --state-dir DIR";
  return lock;
}

/// Exit code 4 only when another run holds the lock; any other failure to take it is 1.
int lock_exit_code(const Error& e) { return e.locked ? kExitLocked : kExitFailed; }

// ---------------------------------------------------------------------------------------
// Subcommands

int cmd_validate(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  const auto& t = (*engine)->topology();
  int instances = 0, swarm_replicas = 0;
  for (const auto& s : t.services) (s.swarm_mode ? swarm_replicas : instances) += s.replicas;
  c.out << c.args[0] << " is valid: cluster \"" << t.cluster_name << "\", driver " << t.driver << ", " << t.nodes.size() << " nodes, "
        << t.services.size() << " services (" << instances << " instances"
        << (swarm_replicas > 0 ? ", " + std::to_string(swarm_replicas) + " Swarm replicas" : std::string()) << "), " << t.addons.size()
        << " addons.\n";
  return kExitOk;
}

int cmd_plan(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  auto plan = (*engine)->plan(c.vm["destroy"].as<bool>());
  if (!plan) return report_error(c, plan.error(), kExitFailed);
  const json doc = plan_to_json(*plan, (*engine)->topology().cluster_name);
  if (auto out = c.vm["out"].as<std::string>(); !out.empty()) {
    json saved = doc;
    saved["topology"] = (*engine)->topology().file.string();
    saved["destroy"] = c.vm["destroy"].as<bool>();
    if (auto ok = write_file_atomic(out, saved.dump(2) + "\n"); !ok) return report_error(c, ok.error(), kExitFailed);
    c.err << "Plan saved to " << out << "; apply it with: flotilla up " << c.args[0] << " --plan " << out << "\n";
  }
  if (json_output(c)) c.out << doc.dump(2) << "\n";
  else c.out << plan_to_text(*plan, (*engine)->topology().cluster_name);
  return kExitOk;
}

/// `before` runs under the same lock as the apply (scale records its override there), so no
/// other run can slip in between.
int up_with(Context& c, Engine& engine, const char* verb, const std::string& detail = {},
            const std::function<Result<void>()>& before = {}) {
  std::optional<json> saved;
  if (c.vm.count("plan") && !c.vm["plan"].as<std::string>().empty()) {
    auto read = read_saved_plan(c.vm["plan"].as<std::string>());
    if (!read) return report_error(c, read.error(), kExitUsage);
    saved = std::move(*read);
  }
  auto lock = lock_cluster(c, engine, "flotilla " + std::string(verb) + " " + c.args[0] + detail);
  if (!lock) return report_error(c, lock.error(), lock_exit_code(lock.error()));
  if (before) {
    if (auto ok = before(); !ok) return report_error(c, ok.error(), kExitFailed);
  }
  auto plan = engine.plan(false);
  if (!plan) return report_error(c, plan.error(), kExitFailed);
  if (saved) {
    const std::string file = c.vm["plan"].as<std::string>();
    if ((*saved)["state_serial"].get<long long>() != plan->state_serial)
      return report_error(c, Error{"plan " + file + " was made against state serial " + std::to_string((*saved)["state_serial"].get<long long>()) +
                                   ", but the state is now at serial " + std::to_string(plan->state_serial) +
                                   ": the cluster changed since; run `flotilla plan " + c.args[0] + " --out " + file + "` again"},
                          kExitFailed);
    if ((*saved)["actions"] != plan_to_json(*plan, engine.topology().cluster_name)["actions"])
      return report_error(c, Error{"plan " + file + " no longer matches the topology or the cluster (the file or a workload changed); run `flotilla plan` again"}, kExitFailed);
  }
  if (plan->empty() || c.vm["quiet"].as<bool>())  // otherwise plan_to_text shows them
    for (const auto& n : plan->notes) c.err << "note: " << n << "\n";
  int code = kExitOk;
  if (plan->empty()) {
    // Only resyncs of reconciling addons, if anything: they run without ceremony.
    if (!plan->graph.steps.empty()) code = run_plan(c, engine, *plan, verb, true);
    if (code == kExitOk) c.out << "No changes. Cluster \"" << engine.topology().cluster_name << "\" matches " << c.args[0] << ".\n";
  } else {
    if (!c.vm["quiet"].as<bool>()) c.err << plan_to_text(*plan, engine.topology().cluster_name);
    code = run_plan(c, engine, *plan, verb);
    if (code == kExitOk)
      c.out << "Applied: " << plan->count(Change::create) << " added, " << plan->count(Change::update) + plan->count(Change::repair) << " changed, " << plan->count(Change::destroy)
            << " destroyed.\n";
  }
  auto state = engine.load_state();
  if (state && code == kExitOk) print_endpoints(c, engine.status(*state, json{{"instances", json::object()}, {"components", json::object()}}));
  return code;
}

int cmd_up(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  return up_with(c, **engine, "up");
}

int cmd_scale(Context& c) {
  const std::string& spec = c.args[1];
  auto eq = spec.rfind('=');
  int n = -1;
  if (eq != std::string::npos) {
    try {
      size_t used = 0;
      n = std::stoi(spec.substr(eq + 1), &used);
      if (used != spec.size() - eq - 1) n = -1;
    } catch (...) {
      n = -1;
    }
  }
  if (eq == std::string::npos || n < 0 || n > 1000)
    return report_error(c, Error{"expected SERVICE=N with N from 0 to 1000, got \"" + spec + "\"; example: flotilla scale " + c.args[0] + " hello/v1=8"}, kExitUsage);
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  Engine& e = **engine;
  return up_with(c, e, "scale", " " + spec, [&] { return e.set_replicas(spec.substr(0, eq), n); });
}

int cmd_promote(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  Engine& e = **engine;
  return up_with(c, e, "promote", " " + c.args[1], [&] { return e.promote(c.args[1]); });
}

int cmd_down(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  int code = kExitOk;
  {
    auto lock = lock_cluster(c, **engine, "flotilla down " + c.args[0]);
    if (!lock) return report_error(c, lock.error(), lock_exit_code(lock.error()));
    // A state that cannot be read is never taken for no state: nothing is stopped or removed.
    if (auto state = (*engine)->load_state(); !state) {
      report_error(c, state.error(), kExitFailed);
      c.err << unreadable_state_note((*engine)->state_dir(), restore_command(c.args[0], c.vm["state-dir"].as<std::string>()),
                                     "flotilla down " + c.args[0])
            << "\n";
      return kExitFailed;
    }
    auto plan = (*engine)->plan(true);
    if (!plan) return report_error(c, plan.error(), kExitFailed);
    if (plan->empty()) {
      c.out << "Nothing to destroy: cluster \"" << (*engine)->topology().cluster_name << "\" has no recorded resources.\n";
    } else {
      if (!c.vm["quiet"].as<bool>()) c.err << plan_to_text(*plan, (*engine)->topology().cluster_name);
      code = run_plan(c, **engine, *plan, "down");
      if (code == kExitOk) c.out << "Destroyed cluster \"" << (*engine)->topology().cluster_name << "\": " << plan->count(Change::destroy) << " resources removed.\n";
    }
    if (code == kExitOk) (*engine)->cleanup_after_down();
  }
  if (code == kExitOk) {
    std::error_code ec;
    std::filesystem::remove((*engine)->state_dir(), ec);  // only if empty
    // The default parent, .flotilla, only if empty; a --state-dir's parent is the user's.
    if (const auto parent = (*engine)->state_dir().parent_path(); parent.filename() == ".flotilla")
      std::filesystem::remove(parent, ec);
  }
  return code;
}

int cmd_status(Context& c) {
  int code = kExitOk;
  auto cl = open_cluster(c, code);
  if (!cl) return code;
  const json status = cl->engine->status(cl->state, cl->engine->refresh(cl->state));
  if (json_output(c)) {
    c.out << status.dump(2) << "\n";
    return kExitOk;
  }
  if (status["nodes"].empty()) {
    c.out << "Cluster \"" << status["cluster"].get<std::string>() << "\" is not up. Run: flotilla up " << c.args[0] << "\n";
    return kExitOk;
  }
  c.out << "Cluster \"" << status["cluster"].get<std::string>() << "\"\n\nNODE                 ADDRESS          STATE     ROLES\n";
  char line[256];
  for (const auto& n : status["nodes"]) {
    std::vector<std::string> roles = n["roles"];
    std::snprintf(line, sizeof line, "%-20s %-16s %-9s %s\n", n["name"].get<std::string>().c_str(), n["address"].get<std::string>().c_str(),
                  n["state"].get<std::string>().c_str(), join(roles, ",").c_str());
    c.out << line;
  }
  for (const auto& s : status["services"]) {
    int running = 0;
    for (const auto& i : s["instances"]) running += i["state"] == "running";
    c.out << "\nSERVICE " << s["name"].get<std::string>() << ": " << running << "/" << s["replicas"].get<int>() << " running"
          << (s.value("mode", "") == "swarm" ? " (Swarm tasks, as of the last up)" : "");
    if (const json r = s.value("rollout", json()); r.is_object())
      c.out << "; rollout unfinished: " << r.value("instances_on_older_spec", 0) << " instance(s) on an older spec ("
            << (r.value("waiting_for_promote", false) ? "a canary waits for `flotilla promote " + c.args[0] + " " + s["name"].get<std::string>() + "`"
                                                       : std::string("run `flotilla up`"))
            << ")";
    c.out << "\n";
    for (const auto& i : s["instances"]) {
      const std::string version = i.value("version", "");
      std::snprintf(line, sizeof line, "  %-18s %-14s %s:%d  %-9s %s\n", i["id"].get<std::string>().c_str(), i["node"].get<std::string>().c_str(),
                    i["address"].get<std::string>().c_str(), i["port"].get<int>(), i["state"].get<std::string>().c_str(),
                    (version.empty() ? std::string() : "version " + version).append(i.value("spec_current", true) ? "" : " (older spec)").c_str());
      c.out << line;
    }
  }
  for (const auto& a : status["addons"]) {
    c.out << "\nADDON " << a["name"].get<std::string>() << " (" << a["plugin"].get<std::string>() << "): " << a["state"].get<std::string>() << "\n";
    for (const auto& comp : a["components"]) c.out << "  " << comp["name"].get<std::string>() << " on " << comp["node"].get<std::string>() << ": " << comp["state"].get<std::string>() << "\n";
  }
  if (!status["endpoints"].empty()) {
    c.out << "\nENDPOINTS\n";
    for (const auto& [k, v] : status["endpoints"].items()) c.out << "  " << k << ": " << v.get<std::string>() << "\n";
  }
  return kExitOk;
}

int cmd_plugins(Context& c) {
  auto host = PluginHost::discover(PluginHost::search_path(c.vm["plugin-path"].as<std::string>()));
  if (json_output(c)) {
    json list = json::array();
    for (const auto& p : host.plugins())
      list.push_back({{"name", p.name}, {"kind", p.kind}, {"version", p.version}, {"description", p.description},
                      {"file", p.file.string()}, {"provides", p.provides()}, {"requires", p.requires_()},
                      {"optional", p.optional()}, {"placement", p.manifest.value("placement", json(nullptr))},
                      {"max_parallel", p.max_parallel() > 0 ? json(p.max_parallel()) : json(nullptr)},
                      {"answers", p.answers()}, {"stages", p.manifest.value("stages", json::array())},
                      {"schema", p.manifest.value("schema", json::object())}});
    json problems = json::array();
    for (const auto& e : host.problems()) problems.push_back(e.message);
    json path = json::array();
    for (const auto& d : host.path()) path.push_back(d.string());
    c.out << json{{"plugins", list}, {"problems", problems}, {"search_path", path}}.dump(2) << "\n";
    return kExitOk;
  }
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %-22s %-8s %s\n", "KIND", "NAME", "VERSION", "DESCRIPTION");
  c.out << line;
  for (const auto& p : host.plugins()) {
    std::snprintf(line, sizeof line, "%-8s %-22s %-8s %s\n", p.kind.c_str(), p.name.c_str(), p.version.c_str(), p.description.c_str());
    c.out << line;
  }
  for (const auto& e : host.problems()) c.err << "warning: " << e.message << "\n";
  return kExitOk;
}

int cmd_graph(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  auto plan = (*engine)->plan(c.vm["destroy"].as<bool>());
  if (!plan) return report_error(c, plan.error(), kExitFailed);
  c.out << plan->graph.to_dot();
  return kExitOk;
}

// Workloads (instances and addon components) with their live state, for ps.
std::string command_text(const json& command) {
  std::string cmd;
  if (command.is_array())
    for (const auto& a : command)
      if (a.is_string()) cmd += (cmd.empty() ? "" : " ") + a.get<std::string>();
  return cmd;
}

// Workloads (instances and addon components) with their live state, for ps.
json workloads(Engine& engine, const json& state) {
  const json live = engine.refresh(state);
  json rows = json::array();
  auto text = [](const json& status) { return status.is_string() ? status.get<std::string>() : std::string(); };
  auto pid = [](const json& record) { return record.is_object() ? record.value("pid", 0) : 0; };
  for (const auto& [id, rec] : records_of<InstanceRecord>(state, "instances")) {
    std::string st = text(rec.status);
    if (live["instances"].contains(id) && rec.status == WorkloadStatus::running) st = live["instances"][id];
    rows.push_back({{"node", rec.node}, {"name", id}, {"owner", "service " + rec.service}, {"service", rec.service},
                    {"pid", pid(rec.record)}, {"state", st}, {"image", rec.image}, {"command", command_text(rec.command)}});
  }
  for (const auto& [addon, rec] : records_of<AddonRecord>(state, "addons"))
    for (const auto& [key, comp] : rec.components) {
      std::string st = text(comp.status);
      if (live["components"].contains(addon) && live["components"][addon].contains(key)) st = live["components"][addon][key];
      rows.push_back({{"node", comp.node}, {"name", addon + "/" + comp.name}, {"owner", "addon " + addon}, {"service", ""},
                      {"pid", pid(comp.record)}, {"state", st}, {"image", comp.image}, {"command", command_text(comp.command)}});
    }
  return rows;
}

int cmd_ps(Context& c) {
  int code = kExitOk;
  auto cl = open_cluster(c, code);
  if (!cl) return code;
  const std::string text = c.args.size() > 1 ? c.args[1] : "";
  json rows = json::array();
  for (const auto& r : workloads(*cl->engine, cl->state)) {
    const std::string hay = r["name"].get<std::string>() + " " + r["service"].get<std::string>() + " " + r["image"].get<std::string>() +
                            " " + r["command"].get<std::string>();
    if (text.empty() || hay.find(text) != std::string::npos) rows.push_back(r);
  }
  if (json_output(c)) {
    c.out << json{{"workloads", rows}}.dump(2) << "\n";
    return kExitOk;
  }
  char line[512];
  std::snprintf(line, sizeof line, "%-14s %-28s %-8s %-9s %s\n", "NODE", "NAME", "PID", "STATE", "COMMAND");
  c.out << line;
  for (const auto& r : rows) {
    std::string what = r["command"].get<std::string>();
    if (what.empty()) what = r["image"].get<std::string>();
    if (what.size() > 70) what = what.substr(0, 67) + "...";
    std::snprintf(line, sizeof line, "%-14s %-28s %-8d %-9s %s\n", r["node"].get<std::string>().c_str(), r["name"].get<std::string>().c_str(),
                  r["pid"].get<int>(), r["state"].get<std::string>().c_str(), what.c_str());
    c.out << line;
  }
  return kExitOk;
}

int cmd_ip(Context& c) {
  int code = kExitOk;
  auto cl = open_cluster(c, code);
  if (!cl) return code;
  const std::string& name = c.args[1];
  const json nodes = cl->state.value("nodes", json::object());
  if (nodes.contains(name)) {
    c.out << nodes[name].value("address", "") << "\n";
    return kExitOk;
  }
  std::vector<std::string> lines;
  // The live catalog first, as the addon keeping it answers; the recorded state when there is none.
  const json addons_view = cl->state.value("addons", json::object());
  std::string label = name;
  for (const auto& s : cl->engine->topology().services)
    if (s.name == name) label = service_dns_label(s.name);
  bool answered = false;
  // Only an addon that has applied keeps a catalog (its outputs are recorded then).
  if (const AddonPlan* a = cl->engine->answerer("ip");
      a != nullptr && !addons_view.value(a->name, json::object()).value("outputs", json::object()).empty()) {
    auto r = cl->engine->ask("ip", {{"name", label}}, [] { return false; }, [](std::string_view) {});
    if (!r) c.err << "warning: " << r.error().message << "; answering from the recorded state\n";
    else if (r->status == FLT_OK) {
      answered = true;
      for (const auto& address : r->result.value("addresses", json::array()))
        if (address.is_string()) lines.push_back(address.get<std::string>());
    } else if (r->status != FLT_NOT_FOUND) {  // not found: no catalog yet, nothing to warn about
      c.err << "warning: " << r->error << "; answering from the recorded state\n";
    }
  }
  if (!answered) {
    for (const json instances_view = cl->state.value("instances", json::object()); const auto& [id, rec] : instances_view.items())
      if (rec.value("service", "") == name || service_dns_label(rec.value("service", "")) == name || id == name) {
        const std::string node = rec.value("node", "");
        lines.push_back(nodes.contains(node) ? nodes[node].value("address", "") : "");
      }
    // Components registered by addons (e.g. the ingress as "rest").
    for (const auto& [addon, rec] : addons_view.items())
      for (const auto& reg : obj(rec, "outputs").value("registrations", json::array()))  // the addon's own shape
        if (str_or(reg, "name") == name) lines.push_back(str_or(reg, "address"));
  }
  if (lines.empty())
    return report_error(c, Error{"no node, service or registered component named \"" + name + "\" in cluster \"" +
                                 cl->engine->topology().cluster_name + "\"; see `flotilla status " + c.args[0] + "`"},
                        kExitFailed);
  for (const auto& l : lines) c.out << l << "\n";
  return kExitOk;
}

/// A value as a POSIX shell reads it back unchanged inside double quotes.
std::string shell_quoted(const std::string& value) {
  std::string out = "\"";
  for (char ch : value) {
    if (ch == '"' || ch == '\\' || ch == '$' || ch == '`') out += '\\';
    out += ch;
  }
  return out + "\"";
}

/// The variables a Docker client needs to reach a node, from what its driver recorded:
/// runtime_config.env (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the runtime's
/// own endpoint (runtime_config.host) when the node runs the docker runtime. Empty: none.
std::vector<std::pair<std::string, std::string>> docker_env_of(const NodeRecord& node) {
  std::vector<std::pair<std::string, std::string>> out;
  const json& rc = node.runtime_config;
  if (!rc.is_object()) return out;
  if (const auto env = rc.find("env"); env != rc.end() && env->is_object() && env->contains("DOCKER_HOST")) {
    // docker-machine's order: how to connect first, then where.
    for (const char* key : {"DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH"})
      if (const auto v = env->find(key); v != env->end() && v->is_string()) out.emplace_back(key, v->get<std::string>());
    for (const auto& [k, v] : env->items())
      if (v.is_string() && std::none_of(out.begin(), out.end(), [&](const auto& e) { return e.first == k; })) out.emplace_back(k, v.get<std::string>());
  } else if (node.runtime == "docker" && rc.contains("host") && rc["host"].is_string() && !rc.contains("tls")) {
    out.emplace_back("DOCKER_HOST", rc["host"].get<std::string>());
  }
  return out;
}

int cmd_env(Context& c) {
  int code = kExitOk;
  auto cl = open_cluster(c, code);
  if (!cl) return code;
  const std::string& name = c.args[1];
  const auto nodes = records_of<NodeRecord>(cl->state, "nodes");
  if (!nodes.count(name))
    return report_error(c, Error{cl->engine->topology().find_node(name) ? "node \"" + name + "\" is not up; run `flotilla up " + c.args[0] + "`"
                                                                         : "there is no node named \"" + name + "\" in " + c.args[0] + "; see `flotilla status " + c.args[0] + "`"},
                        kExitFailed);
  const NodeRecord& node = nodes.at(name);
  const auto env = docker_env_of(node);
  if (env.empty())
    return report_error(c, Error{"node \"" + name + "\" runs the " + (node.runtime.empty() ? "?" : node.runtime) +
                                 " runtime, which has no Docker engine to point a client at; `flotilla env` works for nodes whose driver runs Docker on them"},
                        kExitFailed);
  if (json_output(c)) {
    json vars = json::object();
    for (const auto& [k, v] : env) vars[k] = v;
    c.out << json{{"node", name}, {"env", vars}}.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& [k, v] : env) c.out << "export " << k << "=" << shell_quoted(v) << "\n";
  c.out << "# Run this command to configure your shell:\n# eval \"$(flotilla env " << c.args[0] << " " << name << ")\"\n";
  return kExitOk;
}

int cmd_state(Context& c) {
  StateCommand s;
  s.action = c.args[0];
  if (c.args.size() > 1) s.topology_file = c.args[1];
  s.state_dir = c.vm["state-dir"].as<std::string>();
  s.json = json_output(c);
  s.backup = c.vm["backup"].as<bool>();
  s.force = c.vm["force"].as<bool>();
  return run_state_command(s, c.out, c.err);
}

int cmd_unlock(Context& c) {
  auto engine = open_engine(c, c.args[0]);
  if (!engine) return report_error(c, engine.error(), kExitInvalid);
  if (auto held = read_lock((*engine)->state_dir()); held && held->is_null()) {
    c.out << "Cluster \"" << (*engine)->topology().cluster_name << "\" is not locked; nothing to do.\n";
    return kExitOk;
  }
  auto ok = clear_lock((*engine)->state_dir(), c.vm["force"].as<bool>());
  if (!ok) return report_error(c, ok.error(), kExitFailed);
  c.out << "Lock cleared for cluster \"" << (*engine)->topology().cluster_name << "\".\n";
  return kExitOk;
}

int cmd_logs(Context& c) {
  // A bad duration is wrong usage whatever the cluster: say so before looking at it.
  std::optional<std::chrono::seconds> since;
  if (auto text = c.vm["since"].as<std::string>(); !text.empty()) {
    auto d = parse_duration(text);
    if (!d) return report_error(c, d.error(), kExitUsage);
    since = *d;
  }
  int code = kExitOk;
  auto cl = open_cluster(c, code);
  if (!cl) return code;
  // The log addon answers: the engine never reads its store.
  if (cl->engine->answerer("logs") == nullptr)
    return report_error(c, Error{"cluster \"" + cl->engine->topology().cluster_name +
                                 "\" collects no logs: add the syslog addon to " + c.args[0] +
                                 " ([[addons]] plugin = \"syslog\") and run `flotilla up " + c.args[0] + "`"},
                        kExitFailed);
  const Topology& topo = cl->engine->topology();
  if (c.args.size() > 1) {
    const bool known = std::any_of(topo.services.begin(), topo.services.end(), [&](const ServiceSpec& s) {
      return s.name == c.args[1] || service_dns_label(s.name) == c.args[1];
    });
    if (!known) return report_error(c, Error{"service \"" + c.args[1] + "\" is not in " + c.args[0] + "; see `flotilla status " + c.args[0] + "`"}, kExitFailed);
  }
  if (auto node = c.vm["node"].as<std::string>(); !node.empty() && !topo.find_node(node))
    return report_error(c, Error{"node \"" + node + "\" is not in " + c.args[0] + "; see `flotilla status " + c.args[0] + "`"}, kExitFailed);
  LogsOptions o;
  for (const auto& s : topo.services) o.service_names[service_dns_label(s.name)] = s.name;
  if (c.args.size() > 1) o.service = c.args[1];
  o.node = c.vm["node"].as<std::string>();
  if (since) o.since = *since;
  o.grep = c.vm["grep"].as<std::string>();
  o.follow = c.vm["follow"].as<bool>();
  o.json = json_output(c);
  CancelToken cancel;
  InterruptScope scope(cancel);
  o.stop = [&cancel] { return cancel.stop_scheduling(); };
  const LogsAsk ask = [&](const json& args, const std::function<bool()>& stop, const std::function<void(std::string_view)>& on_part) {
    auto r = cl->engine->ask("logs", args, stop, on_part);
    return r ? *r : CallResult{FLT_ERROR, json::object(), r.error().message};
  };
  return run_logs_command(o, ask, c.out, c.err) == kLogsOk ? kExitOk : kExitFailed;
}

// ---------------------------------------------------------------------------------------
// Editor and shell support: the topology schema, completion scripts and man pages.

int cmd_schema(Context& c) {
  auto host = PluginHost::discover(PluginHost::search_path(c.vm["plugin-path"].as<std::string>()));
  std::vector<PluginOptions> plugins;
  for (const auto& p : host.plugins()) plugins.push_back({p.kind, p.name, p.manifest.value("schema", json::object())});
  for (const auto& e : host.problems()) c.err << "warning: " << e.message << "\n";
  c.out << topology_json_schema(plugins, FLOTILLA_VERSION).dump(2) << "\n";
  return kExitOk;
}

std::vector<CommandDoc> command_docs();
std::vector<OptionDoc> common_option_docs();
extern const char* kExitCodes;

int cmd_completion(Context& c) {
  const auto& shell = c.args[0];
  if (shell == "bash") c.out << bash_completion(command_docs(), common_option_docs());
  else if (shell == "zsh") c.out << zsh_completion(command_docs(), common_option_docs());
  else {
    c.err << "error: no completion for shell \"" << shell << "\"; choose bash or zsh\n";
    return kExitUsage;
  }
  return kExitOk;
}

int cmd_manpages(Context& c) {
  const std::filesystem::path dir = c.args[0];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return report_error(c, Error{"cannot create " + dir.string() + ": " + ec.message()}, kExitFailed);
  const auto docs = command_docs();
  const auto common = common_option_docs();
  auto write = [&](const std::string& name, const std::string& text) {
    auto ok = write_file_atomic(dir / (name + ".1"), text);
    if (!ok) c.err << "error: " << ok.error().message << "\n";
    return static_cast<bool>(ok);
  };
  bool ok = write("flotilla", man_page_main(docs, common, FLOTILLA_VERSION, kExitCodes));
  for (const auto& d : docs) ok = write("flotilla-" + d.name, man_page_command(d, common, FLOTILLA_VERSION, kExitCodes)) && ok;
  if (!ok) return kExitFailed;
  if (!c.vm["quiet"].as<bool>()) c.err << "Wrote " << docs.size() + 1 << " manual pages to " << dir.string() << "\n";
  return kExitOk;
}

/// `flotilla __names FILE KIND...`: the node and service names of a topology, one per line,
/// for completion scripts. Reads the file only (no plugins), and prints nothing on errors.
int print_names(const std::vector<std::string>& args) {
  if (args.size() < 2) return kExitUsage;
  auto topology = load_topology(args[1]);
  if (!topology) return kExitInvalid;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "nodes")
      for (const auto& n : topology->nodes) std::cout << n.name << "\n";
    if (args[i] == "services")
      for (const auto& s : topology->services) std::cout << s.name << "\n";
  }
  return kExitOk;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"validate", "Check a topology file and its plugins' options without touching anything", "FILE",
       "flotilla validate configs/local.toml", nullptr, 1, 1, cmd_validate},
      {"plan", "Show what `up` would create, change and destroy", "FILE [--out PLAN] [--destroy] [--output json]",
       "flotilla plan configs/local.toml --out local.plan",
       [](po::options_description& d) {
         add_output(d);
         d.add_options()("out", po::value<std::string>()->default_value(""), "save the plan to this file for `up --plan`")(
             "destroy", po::bool_switch(), "plan `down` instead");
       },
       1, 1, cmd_plan},
      {"up", "Create or update the cluster to match the topology", "FILE [--plan PLAN] [--parallelism N]",
       "flotilla up configs/local.toml",
       [](po::options_description& d) {
         add_parallelism(d);
         d.add_options()("plan", po::value<std::string>()->default_value(""), "apply this saved plan; refused if the cluster moved since");
       },
       1, 1, cmd_up},
      {"status", "Show nodes, service instances, addons and endpoints", "FILE [--output json]", "flotilla status configs/local.toml --output json",
       add_output, 1, 1, cmd_status},
      {"scale", "Change one service's replicas and apply", "FILE SERVICE=N", "flotilla scale configs/local.toml hello/v1=8",
       add_parallelism, 2, 2, cmd_scale},
      {"promote", "Let a service's rollout go on past its canary, and apply", "FILE SERVICE", "flotilla promote configs/local.toml hello/v1",
       add_parallelism, 2, 2, cmd_promote},
      {"down", "Destroy everything the cluster runs and its nodes", "FILE", "flotilla down configs/local.toml", add_parallelism, 1, 1, cmd_down},
      {"plugins", "List the plugins found on the plugin path", "[--output json]", "flotilla plugins --output json", add_output, 0, 0, cmd_plugins},
      {"graph", "Print the step graph of the plan as Graphviz DOT", "FILE [--destroy]", "flotilla graph configs/local.toml | dot -Tsvg > plan.svg",
       [](po::options_description& d) { d.add_options()("destroy", po::bool_switch(), "graph `down` instead"); }, 1, 1, cmd_graph},
      {"ps", "List workloads whose name, service, image or command contains TEXT", "FILE [TEXT] [--output json]",
       "flotilla ps configs/local.toml hello", add_output, 1, 2, cmd_ps},
      {"ip", "Print the address of a node, or of each instance of a service", "FILE NAME", "flotilla ip configs/local.toml hello/v1",
       nullptr, 2, 2, cmd_ip},
      {"env", "Print shell exports that point a Docker client at a node", "FILE NODE [--output json]", "eval \"$(flotilla env configs/netns.toml swarm-1)\"",
       add_output, 2, 2, cmd_env},
      {"logs", "Show the collected output of services, merged by time", "FILE [SERVICE] [--node N] [--since 10m] [--grep TEXT] [--follow] [--output json]",
       "flotilla logs configs/local.toml hello/v1 --since 10m --grep error",
       [](po::options_description& d) {
         add_output(d);
         d.add_options()("node", po::value<std::string>()->default_value(""), "only lines from this node")(
             "since", po::value<std::string>()->default_value(""), "only lines younger than this (30s, 10m, 2h, 1d)")(
             "grep", po::value<std::string>()->default_value(""), "only lines containing this text")(
             "follow,f", po::bool_switch(), "keep printing new lines until Ctrl-C");
       },
       1, 2, cmd_logs},
      {"state", "Show the recorded state, or restore it from its backup", "show|restore-backup FILE [--output json] [--backup] [--force]",
       "flotilla state restore-backup configs/local.toml",
       [](po::options_description& d) {
         add_output(d);
         d.add_options()("backup", po::bool_switch(), "show: the backup (state.json.bak) instead of the state file")(
             "force", po::bool_switch(), "restore-backup: replace even a valid state file (it is kept beside it)");
       },
       1, 2, cmd_state},
      {"unlock", "Clear the lock left by a run that died", "FILE [--force]", "flotilla unlock configs/local.toml",
       [](po::options_description& d) { d.add_options()("force", po::bool_switch(), "clear even if the holder seems alive"); }, 1, 1, cmd_unlock},
      {"schema", "Print a JSON Schema of topology files with every installed plugin's options, for editors", "",
       "flotilla schema > flotilla.schema.json", nullptr, 0, 0, cmd_schema},
      {"completion", "Print a shell completion script for bash or zsh", "SHELL", "source <(flotilla completion bash)", nullptr, 1, 1,
       cmd_completion},
      {"manpages", "Write the manual pages flotilla(1) and flotilla-COMMAND(1) into a directory", "DIR", "flotilla manpages /tmp/man",
       nullptr, 1, 1, cmd_manpages},
  };
  return table;
}

/// The options of a description, as the man pages and completion scripts need them.
std::vector<OptionDoc> option_docs(const po::options_description& desc) {
  std::vector<OptionDoc> out;
  for (const auto& o : desc.options()) {
    OptionDoc d;
    d.long_name = o->long_name();
    const std::string shown = o->format_name();  // "-o [ --output ]" or "--output"
    if (shown.size() > 1 && shown[0] == '-' && shown[1] != '-') d.short_name = shown[1];
    d.takes_value = o->semantic()->max_tokens() > 0;
    d.description = o->description();
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<OptionDoc> common_option_docs() {
  po::options_description d;
  add_common(d);
  return option_docs(d);
}

std::vector<CommandDoc> command_docs() {
  std::vector<CommandDoc> out;
  for (const auto& c : commands()) {
    po::options_description d;
    if (c.options) c.options(d);
    out.push_back({c.name, c.summary, c.usage, c.example, option_docs(d)});
  }
  return out;
}

const char* kExitCodes =
    "Exit codes:\n"
    "  0    success\n"
    "  1    the command ran and something failed (a step, a lookup, a state directory it cannot write)\n"
    "  2    wrong arguments or options\n"
    "  3    the topology or a plugin is invalid; nothing was touched\n"
    "  4    another run holds the cluster's lock\n"
    "  130  interrupted by Ctrl-C\n";

void print_main_help(std::ostream& os) {
  os << "flotilla " << FLOTILLA_VERSION << ": bring up a cluster with discovery, load balancing, metrics and logs from one file.\n\n"
     << "Usage: flotilla COMMAND [ARGS] [OPTIONS]\n\nCommands:\n";
  char line[256];
  for (const auto& c : commands()) {
    std::snprintf(line, sizeof line, "  %-10s %s\n", c.name, c.summary);
    os << line;
  }
  os << "\nRun `flotilla COMMAND --help` for a command's options and an example.\n"
     << "Start with: flotilla up configs/local.toml\n\n"
     << kExitCodes;
}

void setup_logging(const po::variables_map& vm) {
  // spdlog colours levels on a terminal by itself and knows nothing of NO_COLOR.
  auto logger = spdlog::stderr_color_mt("flotilla", colour_wanted() ? spdlog::color_mode::automatic : spdlog::color_mode::never);
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  std::string level = vm["log-level"].as<std::string>();
  if (level.empty()) level = vm["verbose"].as<bool>() ? "info" : vm["quiet"].as<bool>() ? "error" : "warn";
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int run_cli(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    if (args.size() > 1) return run_cli({args[1], "--help"});
    print_main_help(std::cout);
    return kExitOk;
  }
  if (args[0] == "__names") return print_names(args);
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "flotilla " << FLOTILLA_VERSION << " (plugin ABI " << FLT_ABI_VERSION << ")\n";
    return kExitOk;
  }
  const Command* cmd = nullptr;
  for (const auto& c : commands())
    if (args[0] == c.name) cmd = &c;
  if (!cmd) {
    std::cerr << "error: unknown command \"" << args[0] << "\"; run `flotilla --help` for the list of commands\n";
    return kExitUsage;
  }
  po::options_description desc("Options");
  if (cmd->options) cmd->options(desc);
  add_common(desc);
  po::options_description hidden;
  hidden.add_options()("args", po::value<std::vector<std::string>>()->default_value({}, ""), "");
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("args", -1);
  Context ctx;
  try {
    po::store(po::command_line_parser(std::vector<std::string>(args.begin() + 1, args.end())).options(all).positional(pos).run(), ctx.vm);
    po::notify(ctx.vm);
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\nUsage: flotilla " << cmd->name << " " << cmd->usage << "\n";
    return kExitUsage;
  }
  if (ctx.vm["help"].as<bool>()) {
    std::cout << cmd->summary << ".\n\nUsage: flotilla " << cmd->name << " " << cmd->usage << "\n\n" << desc << "\nExample:\n  " << cmd->example
              << "\n\n" << kExitCodes;
    return kExitOk;
  }
  ctx.args = ctx.vm["args"].as<std::vector<std::string>>();
  if (static_cast<int>(ctx.args.size()) < cmd->min_args || static_cast<int>(ctx.args.size()) > cmd->max_args) {
    std::cerr << "error: wrong number of arguments\nUsage: flotilla " << cmd->name << " " << cmd->usage << "\nExample: " << cmd->example << "\n";
    return kExitUsage;
  }
  if (ctx.vm.count("output")) {
    const auto o = ctx.vm["output"].as<std::string>();
    if (o != "text" && o != "json") {
      std::cerr << "error: --output must be text or json, not \"" << o << "\"\n";
      return kExitUsage;
    }
  }
  // spdlog reads an unknown level name as "off", which would silence even errors.
  if (const auto level = ctx.vm["log-level"].as<std::string>();
      !level.empty() && level != "trace" && level != "debug" && level != "info" && level != "warn" && level != "error") {
    std::cerr << "error: --log-level must be trace, debug, info, warn or error, not \"" << level << "\"\n";
    return kExitUsage;
  }
  if (ctx.vm.count("parallelism")) {
    const int p = ctx.vm["parallelism"].as<int>();
    if (p < 1 || p > 256) {
      std::cerr << "error: --parallelism must be from 1 to 256, not " << p << "\n";
      return kExitUsage;
    }
  }
  setup_logging(ctx.vm);
  try {
    return cmd->run(ctx);
  } catch (const std::exception& e) {
    std::cerr << "error: internal error in `flotilla " << cmd->name << "`: " << redact(e.what())
              << "\nThis is a bug; state was saved after the last finished step. Please report it with the command you ran.\n";
    return kExitFailed;
  }
}

}  // namespace flotilla
