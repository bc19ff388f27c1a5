// What a user sees on a terminal and in a pipe: progress and colour only on a terminal,
// NO_COLOR, the log level (-q, default, -v, --log-level), and Ctrl-C typed during `up`, which
// exits 130 and leaves a cluster the plain rerun converges, with nothing running unrecorded.
#include "support/cli_cluster.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using json = nlohmann::json;
using flotilla::test::cli::Cluster;
using flotilla::test::cli::exit_code;
using flotilla::test::cli::recorded_pids;
using flotilla::test::cli::Run;
using flotilla::test::cli::Terminal;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

const std::string kFlotilla = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";

// One infra node with the tattler addon (it logs a line at debug, info and warn) and `replicas`
// instances of a service that takes `start_s` seconds to start listening.
std::string body(int replicas, const std::string& start_s = "0") {
  return "[[nodes]]\nname = \"infra\"\nroles = [\"infra\"]\n\n[[nodes]]\nname = \"swarm\"\nroles = [\"swarm\"]\n\n"
         "[[services]]\nname = \"slow/v1\"\ncommand = [\"sh\", \"-c\", \"sleep " + start_s +
         "; exec " + std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla-hello --listen {address}:{port}\"]\nreplicas = " + std::to_string(replicas) +
         "\nport = 18100\nroles = [\"swarm\"]\n\n"
         "[[addons]]\nplugin = \"tattler\"\n[addons.options]\ntoken = \"env:FLOTILLA_TEST_TATTLER_TOKEN\"\n";
}

const std::regex kColour("\x1b\\[[0-9;]*m");
const std::regex kProgress("\r\x1b\\[K\\[[0-9]+/[0-9]+\\] ");

Terminal on_terminal(const Cluster& c, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {kFlotilla};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const char* extra : {"--plugin-path", FLOTILLA_TEST_PLUGIN_DIR}) argv.emplace_back(extra);
  std::vector<std::string> all_env = {"FLOTILLA_TEST_TATTLER_TOKEN=a-token-for-the-terminal"};
  all_env.insert(all_env.end(), env.begin(), env.end());
  return Terminal(argv, all_env, c.dir());
}

Cluster& plugin_cluster(Cluster& c) {
  c.always(std::string("--plugin-path ") + FLOTILLA_TEST_PLUGIN_DIR, "FLOTILLA_TEST_TATTLER_TOKEN=a-token-for-the-terminal");
  return c;
}

}  // namespace

TEST_CASE("log levels: -q, the default, -v and --log-level show the documented levels, in a pipe without colour or progress", "[cli][integration]") {
  Cluster c("levels", body(1));
  plugin_cluster(c);
  const Run quiet = c.run("up \"$TOPOLOGY\" -q");
  INFO(quiet.out << quiet.err);
  REQUIRE(quiet.code == 0);
  CHECK_THAT(quiet.err, !Contains("tattler"));
  CHECK_THAT(quiet.err, !Contains("  ok  "));  // -q: only errors and results
  CHECK_THAT(quiet.out, Contains("Applied:"));
  struct Level {
    std::string flags;
    bool debug, info, warn;
  };
  for (const Level& l : {Level{"", false, false, true}, Level{"-v", false, true, true}, Level{"--verbose", false, true, true},
                         Level{"--log-level debug", true, true, true}, Level{"--log-level trace", true, true, true},
                         Level{"--log-level warn", false, false, true}, Level{"--log-level error", false, false, false}}) {
    // The addon requires `services`: a change of instances applies it again.
    REQUIRE(c.run("scale \"$TOPOLOGY\" slow/v1=0 -q").code == 0);
    const Run r = c.run("scale \"$TOPOLOGY\" slow/v1=1 " + l.flags);
    INFO("flags \"" << l.flags << "\": " << r.err);
    REQUIRE(r.code == 0);
    CHECK((r.err.find("debug: addon:tattler:tattler: tattler debug line") != std::string::npos) == l.debug);
    CHECK((r.err.find("info: addon:tattler:tattler: tattler info line") != std::string::npos) == l.info);
    CHECK((r.err.find("warning: addon:tattler:tattler: tattler warn line") != std::string::npos) == l.warn);
    CHECK_FALSE(std::regex_search(r.err, kColour));
    CHECK(r.err.find('\r') == std::string::npos);
    CHECK(r.out.find('\x1b') == std::string::npos);
  }
}

TEST_CASE("on a terminal: progress is drawn and marks are coloured, and NO_COLOR turns every colour off", "[cli][integration]") {
  Cluster c("terminal", body(2));
  plugin_cluster(c);
  {
    Terminal up = on_terminal(c, {"up", c.file().string(), "-v"});
    const auto code = up.wait(60s);
    INFO(up.output());
    REQUIRE(code == 0);
    CHECK(std::regex_search(up.output(), kProgress));
    CHECK_THAT(up.output(), Contains("\x1b[32mok\x1b[0m"));
    CHECK(std::regex_search(up.output(), std::regex("\x1b\\[[0-9;]*minfo\x1b\\[[0-9;]*m: addon:tattler:tattler: tattler info line")));
    CHECK_THAT(up.output(), Contains("Applied: 5 added"));
  }
  for (const std::string no_color : {"NO_COLOR=1", "NO_COLOR=yes"}) {
    REQUIRE(c.run("scale \"$TOPOLOGY\" slow/v1=1 -q").code == 0);
    Terminal scale = on_terminal(c, {"scale", c.file().string(), "slow/v1=3", "-v"}, {no_color});
    const auto code = scale.wait(60s);
    INFO(no_color << ": " << scale.output());
    REQUIRE(code == 0);
    CHECK(std::regex_search(scale.output(), kProgress));  // progress is no colour: it stays
    CHECK_THAT(scale.output(), Contains("  ok  ") && Contains("info: addon:tattler:tattler: tattler info line") &&
                                   Contains("warning: addon:tattler:tattler: tattler warn line"));
    CHECK_FALSE(std::regex_search(scale.output(), kColour));
  }
  {
    // An empty NO_COLOR is no request (no-color.org): colour stays.
    REQUIRE(c.run("scale \"$TOPOLOGY\" slow/v1=1 -q").code == 0);
    Terminal scale = on_terminal(c, {"scale", c.file().string(), "slow/v1=2"}, {"NO_COLOR="});
    REQUIRE(scale.wait(60s) == 0);
    INFO(scale.output());
    CHECK(std::regex_search(scale.output(), kColour));
  }
  // -q draws no progress even on a terminal.
  Terminal quiet = on_terminal(c, {"scale", c.file().string(), "slow/v1=1", "-q"});
  REQUIRE(quiet.wait(60s) == 0);
  INFO(quiet.output());
  CHECK_FALSE(std::regex_search(quiet.output(), kProgress));
}

TEST_CASE("Ctrl-C typed during up exits 130 after the running steps, and the plain rerun converges with nothing leaked",
          "[cli][integration]") {
  Cluster c("interrupted", body(6, "0.4"));
  plugin_cluster(c);
  Terminal up = on_terminal(c, {"up", c.file().string(), "-p", "1"});
  // Once one instance has started (its step finished), type Ctrl-C.
  const fs::path events = c.state_dir() / "events.jsonl";
  REQUIRE(flotilla::test::proc::wait_until(
      [&] {
        up.read(10ms);
        std::istringstream in(flotilla::test::proc::read_text(events));
        for (std::string line; std::getline(in, line);) {
          const json e = json::parse(line, nullptr, false);
          if (e.is_object() && e.value("event", "") == "finish" && e.value("step", "").rfind("instance.", 0) == 0) return true;
        }
        return false;
      },
      30s));
  up.type("\x03");
  const auto code = up.wait(60s);
  INFO(up.output());
  REQUIRE(code.has_value());
  CHECK(*code == exit_code("interrupted by Ctrl-C"));
  CHECK_THAT(up.output(), Contains("interrupt: no new steps will start") && Contains("up was interrupted:") &&
                              Contains("Run the same command again to finish"));
  // Some instances never started; what runs is exactly what the state records.
  const json half = c.status();
  std::size_t started = 0;
  for (const auto& i : half["services"][0]["instances"]) started += i["state"] == "running";
  CHECK(started >= 1);
  CHECK(started < 6);
  CHECK(c.unaccounted(recorded_pids(half)).empty());
  CHECK_FALSE(fs::exists(c.state_dir() / "lock"));

  const Run rerun = c.run("up \"$TOPOLOGY\"");
  INFO(rerun.out << rerun.err);
  REQUIRE(rerun.code == 0);
  const json full = c.status();
  std::size_t running = 0;
  for (const auto& i : full["services"][0]["instances"]) running += i["state"] == "running";
  CHECK(running == 6);
  // The instances that ran before the interrupt were kept, not started again.
  for (const auto& i : half["services"][0]["instances"])
    if (i["state"] == "running")
      for (const auto& j : full["services"][0]["instances"])
        if (j["id"] == i["id"]) CHECK(j["pid"] == i["pid"]);
  CHECK(c.unaccounted(recorded_pids(full)).empty());
}
