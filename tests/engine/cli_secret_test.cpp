// A secret option given as env:NAME, end to end through the built binary: the plugin that
// declares it (tests/plugins_under_test/tattler.cpp) gets the value and tattles it in logs,
// progress and an error; every command a user runs then prints it nowhere, and no file Flotilla
// writes holds it, except the one file the addon itself placed for its workload.
#include "support/cli_cluster.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using flotilla::test::cli::Cluster;
using flotilla::test::cli::exit_code;
using flotilla::test::cli::Run;
using flotilla::test::proc::read_text;
using Catch::Matchers::Contains;

namespace {

std::string topology_body(bool fail, int replicas) {
  std::string body = "[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n[[nodes]]\nname = \"swarm\"\ncount = 2\nroles = [\"swarm\"]\n\n";
  body += "[[services]]\nname = \"echo/v1\"\ncommand = [\"sh\", \"-c\", \"echo started {instance}; exec sleep 600\"]\nhealth = \"\"\n";
  body += "replicas = " + std::to_string(replicas) + "\nroles = [\"swarm\"]\n\n";
  body += "[[addons]]\nplugin = \"syslog\"\n\n";
  body += "[[addons]]\nplugin = \"tattler\"\nroles = [\"infra\"]\n[addons.options]\ntoken = \"env:FLOTILLA_TEST_TATTLER_TOKEN\"\n";
  if (fail) body += "fail = true\n";
  return body;
}

std::string random_canary() {
  std::random_device rd;
  std::ostringstream out;
  out << "canary-" << std::hex << rd() << rd();
  return out.str();
}

// The files under `dir` that hold `needle`, relative to it.
std::vector<std::string> files_holding(const fs::path& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied))
    if (e.is_regular_file() && read_text(e.path()).find(needle) != std::string::npos) found.push_back(fs::relative(e.path(), dir).string());
  return found;
}

}  // namespace

TEST_CASE("a secret given as env:NAME reaches its plugin and no output, state, plan, event or log file", "[cli][integration][secret]") {
  const std::string canary = random_canary();
  Cluster c("secrets", topology_body(false, 2));
  c.always(std::string("--plugin-path ") + FLOTILLA_TEST_PLUGIN_DIR, "FLOTILLA_TEST_TATTLER_TOKEN=" + canary);
  std::vector<std::pair<std::string, Run>> printed;
  auto run = [&](const std::string& args) {
    const Run r = c.run(args + " --log-level trace");
    printed.emplace_back(args, r);
    return r;
  };
  // The files the test itself writes in the directory; everything else there is Flotilla's.
  const std::set<std::string> ours = {"topology.toml", "run.sh", "run.out", "run.err"};
  // The file the addon placed for its workload is where the secret belongs (the workload reads it).
  const std::string placed = ".flotilla/secrets/nodes/infra/files/tattler/token";
  auto check_files = [&](const std::string& when) {
    INFO("after " << when);
    for (const auto& f : files_holding(c.dir(), canary)) {
      INFO("file " << f << " holds the secret");
      CHECK((ours.count(f) == 1 || f == placed));
    }
  };

  REQUIRE(run("validate \"$TOPOLOGY\"").code == 0);
  REQUIRE(run("plan \"$TOPOLOGY\" --out \"$DIR/up.plan\" -o json").code == 0);
  const Run up = run("up \"$TOPOLOGY\" --plan \"$DIR/up.plan\"");
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);
  // The addon did tattle, and the engine redacted it.
  CHECK_THAT(up.err, Contains("addon:tattler:tattler: tattler warn line: token [redacted]"));
  CHECK_THAT(up.err, Contains("tattler debug line: token [redacted]"));
  CHECK_THAT(up.out, Contains("tattler holds a token of " + std::to_string(canary.size()) + " characters"));
  // ... and it got the real value: its workload has it, and so has the file it placed.
  CHECK(read_text(c.dir() / placed) == canary);
  CHECK((fs::status(c.dir() / placed).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  const auto workloads = nlohmann::json::parse(run("ps \"$TOPOLOGY\" tattler -o json").out)["workloads"];
  REQUIRE(workloads.size() == 1);
  const std::string environ_text = read_text("/proc/" + std::to_string(workloads[0]["pid"].get<int>()) + "/environ");
  CHECK(environ_text.find("TATTLER_TOKEN=" + canary) != std::string::npos);
  check_files("up");

  for (const char* args : {"status \"$TOPOLOGY\"", "status \"$TOPOLOGY\" -o json", "plan \"$TOPOLOGY\"", "plan \"$TOPOLOGY\" -o json",
                           "plan \"$TOPOLOGY\" --destroy -o json", "graph \"$TOPOLOGY\"", "ps \"$TOPOLOGY\"", "ps \"$TOPOLOGY\" -o json",
                           "ip \"$TOPOLOGY\" echo/v1", "state show \"$TOPOLOGY\"", "state show \"$TOPOLOGY\" -o json", "plugins -o json"}) {
    const Run r = run(args);
    INFO(args << ": " << r.err);
    CHECK(r.code == 0);
  }
  REQUIRE(flotilla::test::proc::wait_until([&] { return run("logs \"$TOPOLOGY\" echo/v1").out.find("started 2") != std::string::npos; },
                                           std::chrono::seconds(20)));
  CHECK(run("logs \"$TOPOLOGY\" -o json").code == 0);
  REQUIRE(run("scale \"$TOPOLOGY\" echo/v1=3").code == 0);
  REQUIRE(run("scale \"$TOPOLOGY\" echo/v1=1").code == 0);
  check_files("status, plan, ps, logs and scale");

  // A failing apply puts the token in its error: the message is shown, and kept, redacted.
  c.rewrite(topology_body(true, 1));
  const Run failed = run("up \"$TOPOLOGY\"");
  CHECK(failed.code == exit_code("the command ran and something failed"));
  CHECK_THAT(failed.err, Contains("tattler failed on purpose with token [redacted]"));
  CHECK_THAT(read_text(c.state_dir() / "events.jsonl"), Contains("tattler failed on purpose with token [redacted]"));
  check_files("a failed apply");
  c.rewrite(topology_body(false, 1));
  REQUIRE(run("up \"$TOPOLOGY\"").code == 0);
  check_files("the repaired apply");

  const Run down = run("down \"$TOPOLOGY\"");
  CHECK(down.code == 0);
  CHECK_FALSE(fs::exists(c.state_dir()));
  CHECK(c.processes().empty());
  check_files("down");

  for (const auto& [args, r] : printed) {
    INFO("flotilla " << args << " printed the secret");
    CHECK(r.out.find(canary) == std::string::npos);
    CHECK(r.err.find(canary) == std::string::npos);
  }
}
