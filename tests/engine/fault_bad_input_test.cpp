// Hostile input through the real CLI: files that are endless, huge, not files at all, nested
// without end, names thousands of characters long, saved plans of the wrong shape, and state
// directories the run cannot write. Each must end promptly in a clear error naming the file,
// with the documented exit code: never a crash, a hang or an "internal error".
#include "support/process_util.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::Shell;
using Catch::Matchers::Contains;

// A topology every check accepts, with no nodes: nothing is started if a check is missed.
const std::string kEmpty = "[cluster]\nname = \"hostile\"\ndriver = \"local\"\n";

// Runs `flotilla ARGS` in `dir` under a time limit: a hang shows as exit code 124.
Shell run_cli(const fs::path& dir, const std::string& args) {
  return flotilla::test::proc::run_flotilla_script(dir, "timeout 30 \"$FLOTILLA\" " + args);
}

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

std::string dotted(std::size_t levels) {
  std::string out = "a";
  for (std::size_t i = 1; i < levels; ++i) out += ".a";
  return out;
}

// Ends as the validation of a bad topology should: exit 3, one error naming the file.
void check_refused(const Shell& r, const fs::path& file, const std::string& why) {
  INFO("exit " << r.code << ": " << r.err);
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Contains("error: " + file.string()));
  CHECK_THAT(r.err, Contains(why));
  CHECK_THAT(r.err, !Contains("internal error"));
}

}  // namespace

TEST_CASE("validate refuses what is no topology file, promptly and naming it", "[cli][limits]") {
  ScratchDir dir("flotilla-bad-input");
  SECTION("an endless device") { check_refused(run_cli(dir.path(), "validate /dev/zero"), "/dev/zero", "is not a regular file"); }
  SECTION("a FIFO without a writer") {
    const fs::path fifo = dir.path() / "fifo.toml";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    check_refused(run_cli(dir.path(), "validate " + fifo.string()), fifo, "is not a regular file");
  }
  SECTION("a huge file") {
    const fs::path big = write(dir.path() / "big.toml", kEmpty);
    fs::resize_file(big, std::uintmax_t{1} << 30);  // sparse: costs no disk
    check_refused(run_cli(dir.path(), "validate " + big.string()), big, "is larger than 4 MiB");
  }
  SECTION("a directory") {
    const Shell r = run_cli(dir.path(), "validate " + dir.path().string());
    check_refused(r, dir.path(), "is a directory");
    CHECK_THAT(r.err, !Contains("[cluster]"));
  }
  SECTION("a missing file") {
    check_refused(run_cli(dir.path(), "validate " + (dir.path() / "nope.toml").string()), dir.path() / "nope.toml",
                  "does not exist");
  }
}

TEST_CASE("deep nesting is refused before it is parsed, at its line", "[cli][limits]") {
  ScratchDir dir("flotilla-bad-input");
  const fs::path file = dir.path() / "deep.toml";
  std::string text;
  int line = 0;
  SECTION("40,000 levels of table headers") {
    text = kEmpty + "[" + dotted(40000) + "]\n";
    line = 4;
  }
  SECTION("20,000 levels of dotted keys in driver options") {
    text = kEmpty + "[driver.local]\n" + dotted(20000) + " = 1\n";
    line = 5;
  }
  SECTION("20,000 levels of dotted keys in addon options") {
    text = kEmpty + "[[addons]]\nplugin = \"haproxy\"\n[addons.options]\n" + dotted(20000) + " = 1\n";
    line = 7;
  }
  SECTION("40,000 nested arrays and inline tables") {
    std::string tables;
    for (int i = 0; i < 20000; ++i) tables += "{a=[";
    text = kEmpty + "[driver.local]\nx = " + tables + "\n";
    line = 5;
  }
  write(file, text);
  check_refused(run_cli(dir.path(), "validate " + file.string()), fs::path(file.string() + ":" + std::to_string(line) + ":"),
                "levels deep");
}

TEST_CASE("two roles of 20,000 characters are refused at once, without a slow did-you-mean", "[cli][limits]") {
  ScratchDir dir("flotilla-bad-input");
  const std::string a(20000, 'r');
  std::string b = a;
  b.back() = 's';
  const fs::path file = write(dir.path() / "roles.toml", kEmpty + "[[nodes]]\nname = \"n\"\nroles = [\"" + a +
                                                            "\"]\n\n[[services]]\nname = \"s\"\nimage = \"i\"\nroles = [\"" + b + "\"]\n");
  const auto start = std::chrono::steady_clock::now();
  const Shell r = run_cli(dir.path(), "validate " + file.string());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  check_refused(r, fs::path(file.string() + ":6:"), "at most 63 characters");
  CHECK_THAT(r.err, Contains(file.string() + ":11:"));
  CHECK(r.err.size() < 1000);  // the names are shown cut
}

TEST_CASE("up --plan with a file that is no saved plan names it, never an internal error", "[cli][limits]") {
  ScratchDir dir("flotilla-bad-input");
  write(dir.path() / "topology.toml", kEmpty);
  const fs::path plan = dir.path() / "saved.plan";
  std::string why;
  SECTION("an array") {
    write(plan, "[]");
    why = "not a saved plan";
  }
  SECTION("a number") {
    write(plan, "5");
    why = "not a saved plan";
  }
  SECTION("an empty object") {
    write(plan, "{}");
    why = "\"state_serial\" is missing or not an integer";
  }
  SECTION("a wrong-typed serial") {
    write(plan, R"({"state_serial": "seventeen", "actions": []})");
    why = "\"state_serial\" is missing or not an integer";
  }
  SECTION("wrong-typed actions") {
    write(plan, R"({"state_serial": 0, "actions": 5})");
    why = "\"actions\" is missing or not an array";
  }
  SECTION("nested without end") {
    write(plan, std::string(100000, '[') + std::string(100000, ']'));
    why = "levels deep";
  }
  SECTION("a directory") {
    fs::create_directory(plan);
    why = "is a directory";
  }
  SECTION("a missing file") { why = "does not exist"; }
  SECTION("a huge file") {
    write(plan, "{}");
    fs::resize_file(plan, std::uintmax_t{1} << 30);
    why = "is larger than 32 MiB";
  }
  const Shell r = run_cli(dir.path(), "up \"$TOPOLOGY\" --plan " + plan.string());
  INFO("exit " << r.code << ": " << r.err);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains(plan.string()));
  CHECK_THAT(r.err, Contains(why));
  CHECK_THAT(r.err, !Contains("internal error"));
}

TEST_CASE("a lock that cannot be taken for a reason other than another run exits 1, saying where", "[cli][limits]") {
  ScratchDir dir("flotilla-bad-input");
  write(dir.path() / "topology.toml", kEmpty);
  SECTION("the state directory cannot be made") {
    write(dir.path() / "file", "");
    for (const char* verb : {"up", "down"}) {
      const Shell r = run_cli(dir.path(), std::string(verb) + " \"$TOPOLOGY\" --state-dir " + (dir.path() / "file" / "state").string());
      INFO(verb << ": exit " << r.code << ": " << r.err);
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Contains("cannot create state directory"));
      CHECK_THAT(r.err, Contains((dir.path() / "file" / "state").string()));
    }
  }
  SECTION("the topology's directory is read-only") {
    // A read-only bind mount in a private mount namespace: even root cannot write there.
    const std::string readonly = "unshare -m sh -c 'mount --bind \"$0\" \"$0\" && mount -o remount,ro,bind \"$0\" \"$0\" && ";
    const Shell probe = flotilla::test::proc::run_flotilla_script(dir.path(), readonly + "! touch \"$0/probe\" 2>/dev/null' " + dir.path().string());
    if (probe.code != 0) FLOTILLA_SKIP("no read-only bind mount here (unshare -m and mount need CAP_SYS_ADMIN)");
    const Shell r = flotilla::test::proc::run_flotilla_script(
        dir.path(), readonly + "exec timeout 30 \"$1\" up \"$0/topology.toml\"' " + dir.path().string() + " \"$FLOTILLA\"");
    INFO("exit " << r.code << ": " << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains("Read-only file system"));
    CHECK_THAT(r.err, Contains((dir.path() / ".flotilla").string()));
    CHECK_THAT(r.err, !Contains("internal error"));
  }
}
