// The process runtime, called through its C ABI with real processes.
#include "support/plugin_harness.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

namespace {

namespace fs = std::filesystem;
using flotilla::test::PluginHarness;
using nlohmann::json;
namespace proc = flotilla::test::proc;
using namespace std::chrono_literals;

/// A node in a scratch directory, and a guard that stops (and purges) every workload the test
/// started through the runtime, even when an assertion fails half-way.
class RuntimeFixture {
 public:
  RuntimeFixture() : plugin_("runtime_process"), dir_("flotilla-runtime-process") {
    node_ = {{"name", "n1"}, {"address", "127.0.0.1"}, {"workdir", (dir_.path() / "node").string()}};
  }
  ~RuntimeFixture() {
    for (const auto& name : started_) plugin_.call("stop", {{"node", node_}, {"name", name}, {"timeout_s", 2}, {"purge", true}});
  }
  RuntimeFixture(const RuntimeFixture&) = delete;
  RuntimeFixture& operator=(const RuntimeFixture&) = delete;

  flotilla::test::PluginCallOutcome start(const std::string& name, const std::vector<std::string>& command,
                                          const json& env = json::object()) {
    started_.insert(name);
    return plugin_.call("start", {{"node", node_}, {"workload", {{"name", name}, {"command", command}, {"env", env}}}});
  }
  json started(const std::string& name, const std::vector<std::string>& command, const json& env = json::object()) {
    const auto out = start(name, command, env);
    INFO(out.describe());
    REQUIRE(out.ok());
    return out.result;
  }
  flotilla::test::PluginCallOutcome op(const std::string& name, json request) {
    request["node"] = node_;
    return plugin_.call(name, request);
  }

  PluginHarness plugin_;
  proc::ScratchDir dir_;
  json node_;
  std::set<std::string> started_;
};

fs::path workload_dir(const RuntimeFixture& f, const std::string& name) {
  return fs::path(f.node_["workdir"].get<std::string>()) / "workloads" / name;
}

std::set<pid_t> children_of_this_process() {
  std::set<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto st = proc::read_stat(std::stoi(name));
    if (st && st->ppid == ::getpid()) out.insert(std::stoi(name));
  }
  return out;
}

}  // namespace

TEST_CASE("process runtime: descriptor and manifest", "[plugins][process]") {
  PluginHarness plugin("runtime_process");
  CHECK(std::string(plugin.descriptor().name) == "process");
  CHECK(std::string(plugin.descriptor().kind) == "runtime");
  CHECK(plugin.manifest().contains("schema"));
}

TEST_CASE("process runtime: start runs the command detached, in its own group, with its environment",
          "[plugins][process]") {
  RuntimeFixture f;
  const auto before = children_of_this_process();
  const json result =
      f.started("w1", {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 60"}, {{"GREETING", "hi there"}});
  const json record = result["record"];
  CHECK(result["changed"] == true);
  const pid_t pid = record["pid"].get<pid_t>();
  const fs::path dir = workload_dir(f, "w1");

  // Identity: the start time is the kernel's, and the process leads its own session and group.
  const auto st = proc::read_stat(pid);
  REQUIRE(st);
  CHECK(record["start_time"].get<std::uint64_t>() == st->start_time);
  CHECK(st->pgid == pid);
  CHECK(st->sid == pid);
  CHECK(record["dir"] == dir.string());
  CHECK(record["stdout"] == (dir / "stdout.log").string());
  CHECK(record["stderr"] == (dir / "stderr.log").string());
  CHECK(record["name"] == "w1");
  CHECK(record["spec_hash"].get<std::string>().size() == 16);

  // Detached: the engine (this process) is left with no child to reap.
  CHECK(st->ppid != ::getpid());
  CHECK(children_of_this_process() == before);

  // Files: pid, spec, logs; the working directory is the workload directory.
  CHECK(proc::read_text(dir / "pid") == std::to_string(pid) + " " + std::to_string(st->start_time) + "\n");
  const json spec = json::parse(proc::read_text(dir / "spec.json"));
  CHECK(spec["spec_hash"] == record["spec_hash"]);
  CHECK(spec["workload"]["name"] == "w1");
  // The environment's values (an addon may hand its workload a secret) stay out of the file.
  CHECK(spec["workload"]["env"]["GREETING"] == "(not stored)");
  CHECK(proc::read_text(dir / "spec.json").find("hi there") == std::string::npos);
  // Its hash still covers them (a changed value restarts the workload), and a low-entropy secret
  // could be guessed against it: only the owner reads the file, as it reads the state.
  CHECK((fs::status(dir / "spec.json").permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
  CHECK(fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd") == dir);
  CHECK(proc::wait_until([&] { return proc::read_text(dir / "stdout.log") == "to-stdout\n"; }, 2000ms));
  CHECK(proc::read_text(dir / "stderr.log") == "to-stderr\n");

  const std::string environ_text = proc::read_text("/proc/" + std::to_string(pid) + "/environ");
  CHECK(environ_text.find(std::string("GREETING=hi there\0", 18)) != std::string::npos);
  CHECK(environ_text.find(std::string("FLOTILLA_NODE=n1\0", 17)) != std::string::npos);
  CHECK(environ_text.find(std::string("FLOTILLA_NODE_ADDRESS=127.0.0.1\0", 32)) != std::string::npos);
  CHECK(environ_text.find(std::string("FLOTILLA_WORKLOAD=w1\0", 21)) != std::string::npos);
  CHECK(environ_text.find("PATH=") != std::string::npos);  // the engine's environment is inherited

  const auto inspected = f.op("inspect", {{"record", record}});
  REQUIRE(inspected.ok());
  CHECK(inspected.result["state"] == "running");
  CHECK(inspected.result["pid"] == pid);

  const auto stopped = f.op("stop", {{"record", record}, {"timeout_s", 5}});
  REQUIRE(stopped.ok());
  CHECK_FALSE(proc::running(pid));
  CHECK_FALSE(fs::exists(dir / "pid"));
  CHECK_FALSE(fs::exists(dir / "spec.json"));
  CHECK(fs::exists(dir / "stdout.log"));  // logs stay for `flotilla logs`
  CHECK(f.op("inspect", {{"record", record}}).result["state"] == "missing");
}

TEST_CASE("process runtime: start is idempotent and replaces a changed spec", "[plugins][process]") {
  RuntimeFixture f;
  const json first = f.started("w", {"/bin/sleep", "60"});
  const json again = f.started("w", {"/bin/sleep", "60"});
  CHECK(again["changed"] == false);
  CHECK(again["record"] == first["record"]);

  const pid_t old_pid = first["record"]["pid"].get<pid_t>();
  const json changed = f.started("w", {"/bin/sleep", "61"});
  CHECK(changed["changed"] == true);
  const pid_t new_pid = changed["record"]["pid"].get<pid_t>();
  CHECK(new_pid != old_pid);
  CHECK_FALSE(proc::running(old_pid));
  CHECK(proc::running(new_pid));
  CHECK(changed["record"]["spec_hash"] != first["record"]["spec_hash"]);

  // The old record now names an exited process; the workload itself still runs.
  CHECK(f.op("inspect", {{"record", first["record"]}}).result["state"] == "exited");
  CHECK(f.op("inspect", {{"record", changed["record"]}}).result["state"] == "running");

  // A workload that died is started again by the next start with the same spec.
  ::kill(new_pid, SIGKILL);
  REQUIRE(proc::wait_until([&] { return !proc::running(new_pid); }, 2000ms));
  CHECK(f.op("inspect", {{"record", changed["record"]}}).result["state"] == "exited");
  const json restarted = f.started("w", {"/bin/sleep", "61"});
  CHECK(restarted["changed"] == true);
  CHECK(proc::running(restarted["record"]["pid"].get<pid_t>()));
}

TEST_CASE("process runtime: stop ends the whole process group", "[plugins][process]") {
  RuntimeFixture f;
  // The shell starts a child and waits for it: stopping must end both, not just the leader.
  const json r = f.started("group", {"/bin/sh", "-c", "sleep 300 & echo $! > child.pid; wait"});
  const fs::path child_file = workload_dir(f, "group") / "child.pid";
  REQUIRE(proc::wait_until([&] { return proc::read_text(child_file).find('\n') != std::string::npos; }, 3000ms));
  const pid_t child = std::stoi(proc::read_text(child_file));
  const pid_t leader = r["record"]["pid"].get<pid_t>();
  REQUIRE(proc::running(child));
  REQUIRE(proc::read_stat(child)->pgid == leader);

  const auto stopped = f.op("stop", {{"record", r["record"]}, {"timeout_s", 5}});
  INFO(stopped.describe());
  REQUIRE(stopped.ok());
  CHECK_FALSE(proc::running(leader));
  CHECK_FALSE(proc::running(child));

  // Stopping again, or stopping what never existed, succeeds.
  CHECK(f.op("stop", {{"record", r["record"]}}).ok());
  CHECK(f.op("stop", {{"name", "never-started"}}).ok());
}

TEST_CASE("process runtime: stop_mode leader sends TERM to the main process, then to what it left", "[plugins][process]") {
  RuntimeFixture f;
  // The child notes its TERM at once; the main process takes 300 ms to exit on TERM. With a TERM
  // to the whole group the child's note comes first; with "leader" it comes only after the main
  // process has gone.
  const std::string script =
      "(trap 'echo child >> term.log; exit 0' TERM; while :; do sleep 0.05; done) & echo $! > child.pid; "
      "trap 'sleep 0.3; echo leader >> term.log; exit 0' TERM; while :; do wait; done";
  f.started_.insert("mixed");
  const auto out = f.op("start", {{"workload", {{"name", "mixed"}, {"command", {"/bin/sh", "-c", script}}, {"stop_mode", "leader"}}}});
  INFO(out.describe());
  REQUIRE(out.ok());
  const fs::path child_file = workload_dir(f, "mixed") / "child.pid";
  REQUIRE(proc::wait_until([&] { return proc::read_text(child_file).find('\n') != std::string::npos; }, 3000ms));
  const pid_t child = std::stoi(proc::read_text(child_file));

  // By name, as the engine stops it: the mode comes from the workload's spec.
  const auto stopped = f.op("stop", {{"name", "mixed"}, {"timeout_s", 5}});
  INFO(stopped.describe());
  REQUIRE(stopped.ok());
  CHECK_FALSE(proc::running(child));
  CHECK(proc::read_text(workload_dir(f, "mixed") / "term.log") == "leader\nchild\n");
}

TEST_CASE("process runtime: stop escalates to SIGKILL after timeout_s", "[plugins][process]") {
  RuntimeFixture f;
  // The child ignores TERM; the shell notes it in term.log and goes on waiting.
  const json r = f.started("stubborn", {"/bin/sh", "-c",
                                        "trap '' TERM; sleep 300 & echo $! > child.pid; "
                                        "trap 'echo got-term >> term.log' TERM; while :; do wait; done"});
  const fs::path child_file = workload_dir(f, "stubborn") / "child.pid";
  REQUIRE(proc::wait_until([&] { return proc::read_text(child_file).find('\n') != std::string::npos; }, 3000ms));
  const pid_t child = std::stoi(proc::read_text(child_file));
  const pid_t leader = r["record"]["pid"].get<pid_t>();

  const auto stopped = f.op("stop", {{"record", r["record"]}, {"timeout_s", 0.5}});
  REQUIRE(stopped.ok());
  CHECK_FALSE(proc::running(leader));
  CHECK_FALSE(proc::running(child));
  // TERM came first (and was survived), so only KILL can have ended them.
  CHECK(proc::read_text(workload_dir(f, "stubborn") / "term.log") == "got-term\n");
}

TEST_CASE("process runtime: a record whose start time does not match is never signalled", "[plugins][process]") {
  RuntimeFixture f;
  // A process the runtime did not start, standing in for a reused pid.
  proc::Child stranger({"/bin/sleep", "60"});
  REQUIRE(proc::wait_until([&] { return proc::running(stranger.pid()); }, 2000ms));
  const auto st = proc::read_stat(stranger.pid());
  REQUIRE(st);
  const json fake = {{"name", "ghost"},
                     {"pid", stranger.pid()},
                     {"start_time", st->start_time + 1},
                     {"dir", (workload_dir(f, "ghost")).string()}};

  SECTION("through the record") {
    CHECK(f.op("stop", {{"record", fake}, {"timeout_s", 1}}).ok());
    CHECK(f.op("inspect", {{"record", fake}}).result["state"] != "running");
    const auto sig = f.op("signal", {{"record", fake}, {"signal", "KILL"}});
    CHECK(sig.status == FLT_NOT_FOUND);
  }
  SECTION("through a pid file left in the workload directory") {
    fs::create_directories(workload_dir(f, "ghost"));
    std::ofstream(workload_dir(f, "ghost") / "pid")
        << stranger.pid() << " " << st->start_time + 1 << "\n";
    CHECK(f.op("stop", {{"name", "ghost"}, {"timeout_s", 1}}).ok());
    // A start of that name must not take the stranger for its own process either.
    f.started("ghost", {"/bin/sleep", "60"});
  }
  CHECK(proc::running(stranger.pid()));
  CHECK_FALSE(stranger.wait_exit(0ms));  // still running: nothing signalled it
}

TEST_CASE("process runtime: a command that cannot run is reported clearly", "[plugins][process]") {
  RuntimeFixture f;
  SECTION("not on PATH") {
    const auto out = f.start("missing", {"flotilla-no-such-program", "--flag"});
    CHECK(out.status == FLT_INVALID);
    CHECK(out.error ==
          "cannot start missing on node n1: command `flotilla-no-such-program` not found (No such file or directory); "
          "install it or fix `command`");
  }
  SECTION("absolute path that does not exist") {
    const auto out = f.start("missing", {"/nonexistent/prog"});
    CHECK(out.status == FLT_INVALID);
    CHECK_THAT(out.error, Catch::Contains("command `/nonexistent/prog` not found"));
    CHECK_THAT(out.error, Catch::Contains("install it or fix `command`"));
  }
  SECTION("exists but is not executable: exec itself fails and the child reports it") {
    const fs::path script = f.dir_.path() / "not-executable";
    std::ofstream(script) << "#!/bin/sh\necho hi\n";
    fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
    const auto out = f.start("noexec", {script.string()});
    CHECK(out.status == FLT_INVALID);
    CHECK_THAT(out.error, Catch::Contains("cannot be executed (Permission denied)"));
    CHECK_FALSE(fs::exists(workload_dir(f, "noexec") / "pid"));
  }
  SECTION("starts but exits at once: the error shows the end of stderr.log") {
    const auto out = f.start("crash", {"/bin/sh", "-c", "echo first line >&2; echo 'bind: address in use' >&2; exit 3"});
    CHECK(out.status == FLT_ERROR);
    CHECK_THAT(out.error, Catch::Contains("workload crash on node n1 exited right after it started"));
    CHECK_THAT(out.error, Catch::Contains("first line\nbind: address in use"));
    CHECK(f.op("inspect", {{"name", "crash"}}).result["state"] != "running");
  }
  SECTION("an image-only workload is not for this runtime") {
    const auto out =
        f.op("start", {{"workload", {{"name", "img"}, {"image", "sirile/node-test"}}}});
    CHECK(out.status == FLT_NOT_SUPPORTED);
    CHECK_THAT(out.error, Catch::Contains("the process runtime runs commands, not images"));
  }
}

TEST_CASE("process runtime: validate names what to change", "[plugins][process]") {
  PluginHarness plugin("runtime_process");
  const json node = {{"name", "n1"}, {"workdir", "/tmp/unused"}};
  const auto image_only = plugin.call("validate", {{"node", node}, {"workload", {{"name", "web"}, {"image", "nginx"}}}});
  REQUIRE(image_only.ok());
  REQUIRE(image_only.result["errors"].size() == 1);
  CHECK(image_only.result["errors"][0]["key"] == "command");
  CHECK_THAT(image_only.result["errors"][0]["message"].get<std::string>(),
             Catch::StartsWith("workload web has no command: the process runtime runs commands, not images; add `command`"));

  const auto good =
      plugin.call("validate", {{"node", node}, {"workload", {{"name", "web"}, {"command", {"/bin/true"}}}}});
  REQUIRE(good.ok());
  CHECK(good.result["errors"].empty());

  const auto bad_stop =
      plugin.call("validate", {{"node", node}, {"workload", {{"name", "web"}, {"command", {"/bin/true"}}, {"stop_mode", "leaders"}}}});
  REQUIRE(bad_stop.ok());
  REQUIRE(bad_stop.result["errors"].size() == 1);
  CHECK(bad_stop.result["errors"][0]["key"] == "stop_mode");
  CHECK_THAT(bad_stop.result["errors"][0]["message"].get<std::string>(), Catch::Contains("\"group\"") && Catch::Contains("\"leader\""));

  const auto bad_name = plugin.call("validate", {{"node", node}, {"workload", {{"name", "../x"}, {"command", {"/bin/true"}}}}});
  REQUIRE(bad_name.ok());
  REQUIRE(bad_name.result["errors"].size() == 1);
  CHECK(bad_name.result["errors"][0]["key"] == "name");
}

TEST_CASE("process runtime: signal reaches the workload by name", "[plugins][process]") {
  RuntimeFixture f;
  const json r = f.started("hup", {"/bin/sh", "-c", "trap 'echo got-hup' HUP; while :; do sleep 0.05; done"});
  const auto out = f.op("signal", {{"record", r["record"]}, {"signal", "HUP"}});
  INFO(out.describe());
  REQUIRE(out.ok());
  CHECK(proc::wait_until([&] { return proc::read_text(workload_dir(f, "hup") / "stdout.log").find("got-hup") != std::string::npos; },
                         3000ms));
  CHECK(proc::running(r["record"]["pid"].get<pid_t>()));
  CHECK(f.op("signal", {{"record", r["record"]}, {"signal", "BOGUS"}}).status == FLT_INVALID);
}

TEST_CASE("process runtime: put_file writes atomically inside the node's files directory", "[plugins][process]") {
  RuntimeFixture f;
  const fs::path files = fs::path(f.node_["workdir"].get<std::string>()) / "files";

  const auto first = f.op("put_file", {{"path", "haproxy/haproxy.cfg"}, {"content", "global\n"}, {"mode", 0600}});
  INFO(first.describe());
  REQUIRE(first.ok());
  CHECK(first.result["path"] == (files / "haproxy/haproxy.cfg").string());
  CHECK(first.result["changed"] == true);
  CHECK(proc::read_text(files / "haproxy/haproxy.cfg") == "global\n");
  struct stat st {};
  REQUIRE(::stat((files / "haproxy/haproxy.cfg").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  const auto same = f.op("put_file", {{"path", "haproxy/haproxy.cfg"}, {"content", "global\n"}, {"mode", 0600}});
  REQUIRE(same.ok());
  CHECK(same.result["changed"] == false);
  const auto other = f.op("put_file", {{"path", "haproxy/haproxy.cfg"}, {"content", "defaults\n"}, {"mode", 0600}});
  REQUIRE(other.ok());
  CHECK(other.result["changed"] == true);
  CHECK(proc::read_text(files / "haproxy/haproxy.cfg") == "defaults\n");
  // No temporary files left beside it.
  CHECK(std::distance(fs::directory_iterator(files / "haproxy"), fs::directory_iterator()) == 1);

  for (const std::string bad : {"../escape", "a/../../escape", "/etc/passwd", ""}) {
    INFO(bad);
    const auto out = f.op("put_file", {{"path", bad}, {"content", "x"}});
    CHECK(out.status == FLT_INVALID);
  }
  CHECK_FALSE(fs::exists(fs::path(f.node_["workdir"].get<std::string>()) / "escape"));
  CHECK_FALSE(fs::exists(f.dir_.path() / "escape"));
}

TEST_CASE("process runtime: stop with purge removes the workload directory", "[plugins][process]") {
  RuntimeFixture f;
  const json r = f.started("p", {"/bin/sleep", "60"});
  REQUIRE(fs::exists(workload_dir(f, "p")));
  REQUIRE(f.op("stop", {{"record", r["record"]}, {"purge", true}}).ok());
  CHECK_FALSE(fs::exists(workload_dir(f, "p")));
  CHECK_FALSE(proc::running(r["record"]["pid"].get<pid_t>()));
}

TEST_CASE("process runtime: a record holding only the name finds the workload by its pid file", "[plugins][process]") {
  // What the engine sends for a workload recorded only as intent: a run that died after the
  // start but before recording its result.
  RuntimeFixture f;
  const json r = f.started("intent", {"/bin/sleep", "60"});
  const pid_t pid = r["record"]["pid"].get<pid_t>();
  const json by_name = {{"name", "intent"}};
  const auto seen = f.op("inspect", {{"record", by_name}});
  REQUIRE(seen.ok());
  CHECK(seen.result["state"] == "running");
  CHECK(seen.result["pid"] == pid);
  CHECK(f.op("inspect", {{"record", {{"name", "never-started"}}}}).result["state"] == "missing");
  // The same start adopts it rather than starting a second one.
  const json again = f.started("intent", {"/bin/sleep", "60"});
  CHECK(again["changed"] == false);
  CHECK(again["record"]["pid"] == pid);

  REQUIRE(f.op("stop", {{"record", by_name}, {"timeout_s", 2}, {"purge", true}}).ok());
  CHECK(proc::wait_until([&] { return !proc::running(pid); }, 2000ms));
  CHECK_FALSE(fs::exists(workload_dir(f, "intent")));
  CHECK(f.op("inspect", {{"record", by_name}}).result["state"] == "missing");
}

TEST_CASE("process runtime: runs flotilla-hello bound to the node address", "[plugins][process][integration]") {
  RuntimeFixture f;
  const std::string hello = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla-hello";
  REQUIRE(fs::exists(hello));
  const json r = f.started("hello", {hello, "--listen", "127.0.0.1:0", "--service", "hello/v1"}, {{"FLOTILLA_INSTANCE", "4"}});
  const fs::path out = workload_dir(f, "hello") / "stdout.log";
  REQUIRE(proc::wait_until([&] { return proc::read_text(out).find('\n') != std::string::npos; }, 3000ms));
  std::smatch m;
  const std::string line = proc::read_text(out);
  REQUIRE(std::regex_search(line, m, std::regex("listening on 127\\.0\\.0\\.1:([0-9]+)")));

  // One request over a raw socket: the node name came through the environment.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(m[1].str())));
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  const std::string req = "GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (connected) (void)!::write(fd, req.data(), req.size());
  std::string reply;
  char buf[4096];
  for (ssize_t n; connected && (n = ::read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  REQUIRE(connected);
  const json body = json::parse(reply.substr(reply.find("\r\n\r\n") + 4));
  CHECK(body["node"] == "n1");
  CHECK(body["instance"] == "4");
  CHECK(body["service"] == "hello/v1");

  const pid_t pid = r["record"]["pid"].get<pid_t>();
  REQUIRE(f.op("stop", {{"record", r["record"]}}).ok());
  CHECK_FALSE(proc::running(pid));
  CHECK_THAT(proc::read_text(out), Catch::Contains("stopped"));  // it exited through its SIGTERM path
}
