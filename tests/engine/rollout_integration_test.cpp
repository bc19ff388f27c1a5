// Rolling updates through the real CLI, with real HAProxy in front of flotilla-hello and a
// steady keep-alive load on the ingress (loopback only, bounded in count and time): a changed
// env replaces every instance wave by wave without one failed request, `max_parallel` makes the
// waves wider, and a bad version (one that exits at once, one whose health check never passes)
// stops after its first wave, goes back to the previous spec and keeps serving it throughout;
// an `up` killed with SIGKILL mid-rollout is finished by the plain rerun.
#include "support/cli_cluster.hpp"
#include "support/haproxy_lab.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <set>
#include <string>

using json = nlohmann::json;
using Catch::Matchers::Contains;
using flotilla::test::cli::Cluster;
using flotilla::test::cli::Run;
namespace lab = flotilla::test::haproxy_lab;
namespace proc = flotilla::test::proc;
using namespace std::chrono_literals;

namespace {

constexpr int kIngressPort = 18080;

// infra (HAProxy) and two swarm nodes running five instances of hello/v1; `service_extra` goes
// into the service's table, `update` is its [services.update] table.
std::string body(const std::string& release, const std::string& service_extra = "", const std::string& update = "") {
  std::string b = "[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n[[nodes]]\nname = \"swarm\"\ncount = 2\nroles = [\"swarm\"]\n\n";
  b += "[[addons]]\nplugin = \"haproxy\"\nroles = [\"infra\"]\n[addons.options]\nport = " + std::to_string(kIngressPort) + "\n\n";
  b += "[[services]]\nname = \"hello/v1\"\nreplicas = 5\nport = 18000\nhealth = \"/health\"\nroles = [\"swarm\"]\n";
  if (service_extra.find("command") == std::string::npos) b += "command = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n";
  b += service_extra;
  b += "env = { RELEASE = \"" + release + "\" }\n";
  if (!update.empty()) b += "[services.update]\n" + update;
  return b;
}

// The release in an answer of flotilla-hello ("?" when it is not JSON).
std::string release_of(const std::string& answer) {
  const json j = json::parse(answer, nullptr, false);
  return j.is_object() ? j.value("release", "none") : "?";
}

// A steady load on the ingress while `change` runs, and a little after it; what it saw.
struct LoadReport {
  int sent = 0, errors = 0, non_2xx = 0;
  std::map<std::string, int> releases;
  std::string last_error;
};
template <class F>
LoadReport under_load(const Cluster& c, F&& change) {
  lab::LoadClient load(c.subnet() + ".1", kIngressPort, "/hello/v1/", release_of, 120s);
  REQUIRE(proc::wait_until([&] { return load.sent() > 100; }, 10s));
  change();
  const int sent = load.sent();
  REQUIRE(proc::wait_until([&] { return load.sent() > sent + 200; }, 10s));
  load.stop();
  return {load.sent(), load.errors(), load.non_2xx(), load.counts(), load.last_error()};
}

// `flotilla ARGS` run under load: what it printed, and what the load saw.
struct LoadedRun {
  Run run;
  LoadReport load;
  [[nodiscard]] std::string text() const { return run.out + run.err + "\nlast error: " + load.last_error; }
};
LoadedRun run_under_load(const Cluster& c, const std::string& args) {
  LoadedRun r;
  r.load = under_load(c, [&] { r.run = c.run(args); });
  return r;
}

// No request failed: none met a socket error or a status other than 200.
void check_none_failed(const LoadReport& load) {
  CHECK(load.errors == 0);
  CHECK(load.non_2xx == 0);
}

// `up`, which must succeed.
void bring_up(const Cluster& c) {
  const Run up = c.run("up \"$TOPOLOGY\"");
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);
}

// Which release answers 40 requests through the ingress.
std::set<std::string> served(const Cluster& c) {
  lab::HttpClient client(c.subnet() + ".1", kIngressPort, 3s);
  std::set<std::string> out;
  for (int i = 0; i < 40; ++i) {
    const auto r = client.get("/hello/v1/");
    out.insert(r.status == 200 ? release_of(r.body) : "status " + std::to_string(r.status));
  }
  return out;
}

// The instances of hello/v1 in `status`, and how many run the topology's current spec.
int on_current_spec(const json& status) {
  int n = 0;
  for (const auto& s : status["services"])
    for (const auto& i : s["instances"]) n += i.value("spec_current", false) && i["state"] == "running";
  return n;
}

}  // namespace

TEST_CASE("rolling update under load through the CLI: every wave replaced without a failed request, bad versions reverted",
          "[integration][rollout]") {
  Cluster c("rollout", body("v1"));
  bring_up(c);
  REQUIRE(c.status()["endpoints"]["rest"] == "http://" + c.subnet() + ".1:" + std::to_string(kIngressPort));
  REQUIRE(served(c) == std::set<std::string>{"v1"});

  // An env change: the plan shows a rollout of five instances in five waves.
  c.rewrite(body("v2"));
  Run plan = c.run("plan \"$TOPOLOGY\" --output json");
  REQUIRE(plan.code == 0);
  const json p = json::parse(plan.out);
  REQUIRE(p["rollouts"].size() == 1);
  CHECK(p["rollouts"][0]["service"] == "hello/v1");
  CHECK(p["rollouts"][0]["instances"].size() == 5);
  CHECK(p["rollouts"][0]["waves"] == 5);
  CHECK(p["rollouts"][0]["strategy"]["max_parallel"] == 1);
  CHECK(p["rollouts"][0]["strategy"]["auto_revert"] == true);
  const Run text = c.run("plan \"$TOPOLOGY\"");
  CHECK_THAT(text.out, Contains("~ instance hello/v1#5: replace (env.RELEASE changed; rolling, wave 5 of 5)"));
  CHECK_THAT(text.out + text.err, Contains("rolling update of 5 instance(s) in 5 wave(s) (max_parallel 1, min_healthy_time 1s"));

  {
    const LoadedRun roll = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(roll.text());
    REQUIRE(roll.run.code == 0);
    check_none_failed(roll.load);
    CHECK(roll.load.releases.count("v1") == 1);  // the old version served while the rollout ran
    CHECK(roll.load.releases.count("v2") == 1);
    WARN("max_parallel 1: " << roll.load.sent << " requests, " << roll.load.errors << " errors, " << roll.load.non_2xx << " non-2xx");
  }
  CHECK(served(c) == std::set<std::string>{"v2"});
  json v2 = c.status();
  CHECK(on_current_spec(v2) == 5);
  std::set<std::string> versions;
  for (const auto& i : v2["services"][0]["instances"]) versions.insert(i.value("version", ""));
  CHECK(versions.size() == 1);  // one version, whichever node and port
  CHECK(v2["services"][0]["rollout"].is_null());
  Run noop = c.run("plan \"$TOPOLOGY\" --output json");
  REQUIRE(noop.code == 0);
  CHECK(json::parse(noop.out)["rollouts"].empty());

  // Two at a time: three waves.
  c.rewrite(body("v3", "", "max_parallel = 2\nmin_healthy_time = \"0s\"\n"));
  {
    Run plan3 = c.run("plan \"$TOPOLOGY\" --output json");
    REQUIRE(plan3.code == 0);
    CHECK(json::parse(plan3.out)["rollouts"][0]["waves"] == 3);
    const LoadedRun roll = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(roll.text());
    REQUIRE(roll.run.code == 0);
    check_none_failed(roll.load);
    WARN("max_parallel 2: " << roll.load.sent << " requests, " << roll.load.errors << " errors, " << roll.load.non_2xx << " non-2xx");
  }
  CHECK(served(c) == std::set<std::string>{"v3"});

  // A version whose command exits at once: the first wave fails, goes back to v3, and the
  // error names the instance; v3 serves throughout.
  c.rewrite(body("v4", "command = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\", \"--no-such-flag\"]\n"));
  {
    const LoadedRun roll = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(roll.text());
    CHECK(roll.run.code != 0);
    CHECK_THAT(roll.run.err, Contains("wave 1 of 5 failed"));
    CHECK_THAT(roll.run.err, Contains("hello/v1#1"));
    CHECK_THAT(roll.run.err, Contains("exited"));
    CHECK_THAT(roll.run.err, Contains("Reverted hello/v1#1 to the previous spec"));
    CHECK_THAT(roll.run.err, Contains("(the previous) on hello/v1#1, hello/v1#2, hello/v1#3, hello/v1#4, hello/v1#5"));
    check_none_failed(roll.load);
    CHECK(roll.load.releases.count("v4") == 0);
  }
  CHECK(served(c) == std::set<std::string>{"v3"});
  json st = c.status();
  CHECK(on_current_spec(st) == 0);
  CHECK(st["services"][0]["rollout"]["instances_on_older_spec"] == 5);

  // A version whose health check never passes (it listens elsewhere): stopped at the deadline.
  c.rewrite(body("v5", "command = [\"flotilla-hello\", \"--listen\", \"" + c.subnet() + ".250:{port}\"]\n",
                 "healthy_deadline = \"3s\"\n"));
  {
    const LoadedRun roll = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(roll.text());
    CHECK(roll.run.code != 0);
    CHECK_THAT(roll.run.err, Contains("hello/v1#1"));
    CHECK_THAT(roll.run.err, Contains("did not answer"));
    CHECK_THAT(roll.run.err, Contains("within 3 s"));
    CHECK_THAT(roll.run.err, Contains("Reverted hello/v1#1"));
    check_none_failed(roll.load);
  }
  CHECK(served(c) == std::set<std::string>{"v3"});

  // A version that answers its health check, then dies after a second: min_healthy_time catches it.
  const std::string hello = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla-hello";
  c.rewrite(body("v6", "command = [\"/bin/sh\", \"-c\", \"'" + hello + "' --listen {address}:{port} & sleep 1; kill $!; wait\"]\n",
                 "min_healthy_time = \"4s\"\n"));
  {
    const LoadedRun roll = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(roll.text());
    CHECK(roll.run.code != 0);
    CHECK_THAT(roll.run.err, Contains("hello/v1#1") && Contains("within its min_healthy_time of 4 s"));
    CHECK_THAT(roll.run.err, Contains("Reverted hello/v1#1"));
    check_none_failed(roll.load);
  }
  CHECK(served(c) == std::set<std::string>{"v3"});

  // Back to v3 in the file: nothing to roll.
  c.rewrite(body("v3", "", "max_parallel = 2\nmin_healthy_time = \"0s\"\n"));
  Run back = c.run("plan \"$TOPOLOGY\" --output json");
  REQUIRE(back.code == 0);
  CHECK(json::parse(back.out)["rollouts"].empty());
}

TEST_CASE("rolling update killed with SIGKILL mid-rollout: the plain rerun finishes it, no instance runs twice, none is lost",
          "[integration][rollout]") {
  Cluster c("rollkill", body("v1"));
  bring_up(c);
  c.rewrite(body("v2", "", "min_healthy_time = \"2s\"\n"));

  Run rerun;
  const LoadReport load = under_load(c, [&] {
    const std::string cli = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";
    proc::Child run({"/bin/sh", "-c", "exec '" + cli + "' up '" + c.file().string() + "' >'" + (c.dir() / "killed.out").string() + "' 2>&1"});
    // Killed once some instances run v2 and some still run v1.
    const bool midway = proc::wait_until(
        [&] {
          const int n = on_current_spec(c.status());
          return n >= 1 && n <= 3;
        },
        60s);
    REQUIRE(::kill(run.pid(), SIGKILL) == 0);
    (void)run.wait_exit(10s);
    REQUIRE(midway);
    rerun = c.run("up \"$TOPOLOGY\"");
  });
  INFO(rerun.out << rerun.err << "\nlast error: " << load.last_error);
  REQUIRE(rerun.code == 0);
  check_none_failed(load);
  const json st = c.status();
  CHECK(on_current_spec(st) == 5);
  CHECK(st["services"][0]["instances"].size() == 5);
  CHECK(c.unaccounted(flotilla::test::cli::recorded_pids(st)).empty());
  CHECK(served(c) == std::set<std::string>{"v2"});
}

TEST_CASE("a canary of 1 serves beside four old instances until `flotilla promote`, and putting the file back rolls it back",
          "[integration][rollout]") {
  const std::string strategy = "canary = 1\nmin_healthy_time = \"0s\"\n";
  Cluster c("rollcanary", body("v1", "", strategy));
  bring_up(c);
  Run early = c.run("promote \"$TOPOLOGY\" hello/v1");
  CHECK(early.code == 1);
  CHECK_THAT(early.err, Contains("no canary of service hello/v1 runs version") && Contains("run `flotilla up` first"));
  Run unknown = c.run("promote \"$TOPOLOGY\" nosuch/v1");
  CHECK(unknown.code == 1);
  CHECK_THAT(unknown.err, Contains("service \"nosuch/v1\" is not in"));

  c.rewrite(body("v2", "", strategy));
  {
    const LoadedRun canary = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(canary.text());
    REQUIRE(canary.run.code == 0);
    CHECK_THAT(canary.run.err, Contains("the other 4 wait for `flotilla promote FILE hello/v1`"));
    check_none_failed(canary.load);
  }
  CHECK(served(c) == std::set<std::string>{"v1", "v2"});
  json st = c.status();
  CHECK(on_current_spec(st) == 1);
  CHECK(st["services"][0]["rollout"]["waiting_for_promote"] == true);
  CHECK_THAT(c.run("status \"$TOPOLOGY\"").out, Contains("a canary waits for `flotilla promote"));
  // Another up holds it as it is.
  Run again = c.run("up \"$TOPOLOGY\"");
  REQUIRE(again.code == 0);
  CHECK(on_current_spec(c.status()) == 1);

  {
    const LoadedRun promote = run_under_load(c, "promote \"$TOPOLOGY\" hello/v1");
    INFO(promote.text());
    REQUIRE(promote.run.code == 0);
    check_none_failed(promote.load);
  }
  CHECK(served(c) == std::set<std::string>{"v2"});
  st = c.status();
  CHECK(on_current_spec(st) == 5);
  CHECK(st["services"][0]["rollout"].is_null());

  // A v3 canary, then the file back to v2: the canary goes back without a promote.
  c.rewrite(body("v3", "", strategy));
  REQUIRE(c.run("up \"$TOPOLOGY\"").code == 0);
  CHECK(served(c) == std::set<std::string>{"v2", "v3"});
  c.rewrite(body("v2", "", strategy));
  {
    const LoadedRun back = run_under_load(c, "up \"$TOPOLOGY\"");
    INFO(back.text());
    REQUIRE(back.run.code == 0);
    check_none_failed(back.load);
  }
  CHECK(served(c) == std::set<std::string>{"v2"});
  CHECK(on_current_spec(c.status()) == 5);
}
