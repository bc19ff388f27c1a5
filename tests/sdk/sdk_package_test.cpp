// The plugin author's path, end to end: install Flotilla into a scratch prefix, build the
// out-of-tree greeter addon (tests/sdk/greeter) against that prefix only, and run the
// installed CLI with it: list it, bring a local cluster up with it, reach its endpoint, and
// bring everything down again. A misspelt option of the plugin is refused at validate.
#include "support/cleanup_report.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"
#include "util.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;
using flotilla::test::proc::ScratchDir;
using namespace std::chrono_literals;

namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Run {
  int code = -1;
  std::string out;
  std::string err;
  [[nodiscard]] std::string both() const { return "exit " + std::to_string(code) + "\nstdout:\n" + out + "\nstderr:\n" + err; }
};

/// Runs argv, bounded by `timeout_s`, with FLOTILLA_PLUGIN_PATH unset so that only the plugin
/// directories named on the command line and the installed ones are seen.
Run run(const std::vector<std::string>& argv, const fs::path& scratch, int timeout_s) {
  static int serial = 0;
  const std::string tag = std::to_string(++serial);
  const fs::path out = scratch / ("out-" + tag + ".txt");
  const fs::path err = scratch / ("err-" + tag + ".txt");
  std::string cmd = "env -u FLOTILLA_PLUGIN_PATH timeout -k 5 " + std::to_string(timeout_s);
  for (const auto& a : argv) cmd += " " + quote(a);
  cmd += " >" + quote(out.string()) + " 2>" + quote(err.string()) + " </dev/null";
  const int status = std::system(cmd.c_str());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = flotilla::test::proc::read_text(out);
  r.err = flotilla::test::proc::read_text(err);
  return r;
}

/// Flotilla installed into a scratch prefix, and the example plugins built from it.
struct Installed {
  ScratchDir dir{"flotilla-sdk"};
  fs::path prefix = dir.path() / "prefix";
  fs::path greeter = dir.path() / "greeter-build";
  fs::path greeter10 = dir.path() / "greeter-sdk-1.0-build";
  fs::path sandbox = dir.path() / "sandbox-build";
  fs::path flotilla = prefix / "bin" / "flotilla";
  std::set<std::string> built;
};

/// The example plugins: the greeter addon against the installed prefix, the greeter as written
/// for SDK 1.0 against the 1.0 headers kept as test data, and the guide's sandbox driver.
enum class Example { greeter, greeter10, sandbox };

/// Configures (only the installed prefix: no package registry, no build tree) and builds one
/// example into `build`; a failure is a failed REQUIRE with the output.
void build_example(const Installed& inst, const std::string& source, const fs::path& build, bool with_prefix) {
  std::vector<std::string> configure = {FLOTILLA_CMAKE_COMMAND, "-S", std::string(FLOTILLA_SOURCE_DIR) + "/tests/sdk/" + source, "-B",
                                        build.string(), "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON",
                                        "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"};
  if (with_prefix) configure.push_back("-DCMAKE_PREFIX_PATH=" + inst.prefix.string());
  const Run configured = run(configure, inst.dir.path(), 300);
  INFO(configured.both());
  REQUIRE(configured.code == 0);
  const Run built = run({FLOTILLA_CMAKE_COMMAND, "--build", build.string(), "-j2"}, inst.dir.path(), 600);
  INFO(built.both());
  REQUIRE(built.code == 0);
}

/// Installs once per test process, and builds `examples` the first time a test asks for them
/// (each test case runs in its own process under ctest, so each builds only what it uses).
const Installed& installed(std::initializer_list<Example> examples) {
  static std::unique_ptr<Installed> inst;
  if (!inst) {
    auto fresh = std::make_unique<Installed>();
    const Run install = run({FLOTILLA_CMAKE_COMMAND, "--install", FLOTILLA_BINARY_DIR, "--prefix", fresh->prefix.string()},
                            fresh->dir.path(), 300);
    INFO(install.both());
    REQUIRE(install.code == 0);
    inst = std::move(fresh);
  }
  for (const Example e : examples) {
    const auto [source, build, with_prefix] = e == Example::greeter     ? std::tuple{"greeter", inst->greeter, true}
                                              : e == Example::greeter10 ? std::tuple{"sdk-1.0", inst->greeter10, false}
                                                                        : std::tuple{"sandbox", inst->sandbox, true};
    if (inst->built.contains(source)) continue;
    build_example(*inst, source, build, with_prefix);
    inst->built.insert(source);
  }
  return *inst;
}

/// A one-node local cluster with the greeter and `options` (TOML lines); without the greeter
/// when `options` is empty.
std::string topology(const std::string& cidr, const std::string& options) {
  std::string t = "[cluster]\nname = \"sdkgreet\"\ndriver = \"local\"\n\n"
                  "[driver.local]\ncidr = \"" + cidr + "\"\n\n"
                  "[[nodes]]\nname = \"infra\"\ncount = 1\nroles = [\"infra\"]\n";
  if (!options.empty()) t += "\n[[addons]]\nplugin = \"greeter\"\n\n[addons.options]\n" + options;
  return t;
}

/// 1-based line of the first line of `text` that starts with `prefix`, or 0.
int line_of(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.rfind(prefix, 0) == 0) return n;
  }
  return 0;
}

json read_state(const fs::path& state_dir) {
  std::ifstream in(state_dir / "state.json");
  std::string version;
  std::getline(in, version);  // the format line
  std::stringstream rest;
  rest << in.rdbuf();
  return json::parse(rest.str());
}

/// The pid of the greeter's one component as the state file records it, or 0.
pid_t greeter_pid(const fs::path& state_dir) {
  json state = read_state(state_dir);
  const json components = state["addons"]["greeter"]["components"];
  if (!components.is_object() || components.size() != 1) return 0;
  return components.begin().value().value("record", json::object()).value("pid", 0);
}

/// A /24 reserved for this test process ("127.A.B."), so parallel runs do not share addresses
/// and the greeter's fixed ports on it are free.
std::string net_prefix() { return flotilla::test::resources::process_subnet("cluster").prefix(); }

}  // namespace

TEST_CASE("sdk: cmake --install gives a prefix that builds and runs an out-of-tree addon", "[integration][sdk]") {
  const Installed& inst = installed({Example::greeter});

  SECTION("the installed tree has the CLI, the plugins, the sample service, the headers and the CMake package") {
    for (const char* rel : {"bin/flotilla", "bin/flotilla-hello", "lib/flotilla/plugins/driver_local.so",
                            "lib/flotilla/plugins/runtime_process.so", "include/flotilla/plugin.h", "include/flotilla/plugin.hpp",
                            "lib/cmake/Flotilla/FlotillaConfig.cmake", "lib/cmake/Flotilla/FlotillaConfigVersion.cmake",
                            "lib/cmake/Flotilla/FlotillaTargets.cmake", "lib/cmake/Flotilla/FlotillaPlugin.cmake"}) {
      INFO(rel);
      CHECK(fs::is_regular_file(inst.prefix / rel));
    }
    CHECK(::access((inst.prefix / "bin/flotilla").c_str(), X_OK) == 0);
    CHECK(::access((inst.prefix / "bin/flotilla-hello").c_str(), X_OK) == 0);
  }

  SECTION("the package is SDK 1.2 and accepts plugins asking for 1.0") {
    const std::string version = flotilla::test::proc::read_text(inst.prefix / "lib/cmake/Flotilla/FlotillaConfigVersion.cmake");
    CHECK(version.find("set(PACKAGE_VERSION \"1.2.0\")") != std::string::npos);
    const std::string header = flotilla::test::proc::read_text(inst.prefix / "include/flotilla/plugin.h");
    CHECK(header.find("#define FLT_INTERFACE_QUERY \"flotilla.query/1\"") != std::string::npos);
    CHECK(header.find("#define FLT_SDK_VERSION_MINOR 2") != std::string::npos);
  }

  SECTION("the greeter was built against the installed package, not the source tree") {
    const std::string cache = flotilla::test::proc::read_text(inst.greeter / "CMakeCache.txt");
    CHECK(cache.find("Flotilla_DIR:PATH=" + (inst.prefix / "lib/cmake/Flotilla").string()) != std::string::npos);
    const std::string commands = flotilla::test::proc::read_text(inst.greeter / "compile_commands.json");
    CHECK(commands.find((inst.prefix / "include").string()) != std::string::npos);
    CHECK(commands.find(std::string(FLOTILLA_SOURCE_DIR) + "/sdk/include") == std::string::npos);
    CHECK(fs::is_regular_file(inst.greeter / "addon_greeter.so"));
  }

  SECTION("the greeter's own check, through a fake host, passes under ctest") {
    const fs::path ctest = fs::path(FLOTILLA_CMAKE_COMMAND).parent_path() / "ctest";
    const Run r = run({ctest.string(), "--test-dir", inst.greeter.string(), "--output-on-failure"}, inst.dir.path(), 120);
    INFO(r.both());
    CHECK(r.code == 0);
    CHECK(r.out.find("100% tests passed, 0 tests failed out of 1") != std::string::npos);
  }

  SECTION("the installed CLI lists the greeter from --plugin-path beside its own plugins") {
    const Run r = run({inst.flotilla.string(), "plugins", "--plugin-path", inst.greeter.string(), "--output", "json"}, inst.dir.path(), 60);
    INFO(r.both());
    REQUIRE(r.code == 0);
    const json doc = json::parse(r.out);
    const json* greeter = nullptr;
    const json* local = nullptr;
    for (const auto& p : doc.at("plugins")) {
      if (p.value("name", "") == "greeter") greeter = &p;
      if (p.value("name", "") == "local" && p.value("kind", "") == "driver") local = &p;
    }
    REQUIRE(greeter != nullptr);
    CHECK(greeter->value("kind", "") == "addon");
    CHECK(greeter->value("version", "") == "0.1.0");
    CHECK(fs::weakly_canonical(greeter->value("file", "")) == fs::weakly_canonical(inst.greeter / "addon_greeter.so"));
    CHECK(greeter->at("schema").at("greeting").value("default", "") == "hello");
    CHECK(greeter->at("schema").at("port").value("required", false));
    REQUIRE(local != nullptr);
    CHECK(fs::weakly_canonical(local->value("file", "")) ==
          fs::weakly_canonical(inst.prefix / "lib/flotilla/plugins/driver_local.so"));
    for (const auto& problem : doc.at("problems")) CHECK(problem.get<std::string>().find("greeter") == std::string::npos);
  }

  SECTION("up runs the greeter's workload and publishes its endpoint; removing it or down leaves nothing") {
    ScratchDir work("flotilla-sdk-up");
    const fs::path topo = work.path() / "topology.toml";
    const fs::path state_dir = work.path() / "state";
    const std::string net = net_prefix();
    const std::string address = net + "1";
    const int port = 8090;
    const std::string url = "http://" + address + ":" + std::to_string(port);
    std::ofstream(topo) << topology(net + "0/24", "greeting = \"ahoy\"\nport = " + std::to_string(port) + "\n");

    auto cli = [&](const std::string& command, const std::string& flag = "") {
      std::vector<std::string> argv = {inst.flotilla.string(), command, topo.string(), "--plugin-path", inst.greeter.string(),
                                       "--state-dir", state_dir.string()};
      if (!flag.empty()) argv.push_back(flag);
      return run(argv, work.path(), 300);
    };
    struct DownGuard {
      std::function<Run()> down;
      ~DownGuard() {
        if (const Run r = down(); r.code != 0) flotilla::test::report_cleanup_failure("down: " + r.both());
      }
    } guard{[&] { return cli("down", "-q"); }};

    Run up = cli("up");
    INFO(up.both());
    REQUIRE(up.code == 0);
    CHECK(up.out.find("ahoy from greeter") != std::string::npos);
    CHECK(up.out.find("greeter: " + url) != std::string::npos);

    std::string body;
    CHECK(flotilla::http_get(url + "/health", 2000ms) == 200);
    REQUIRE(flotilla::http_get(url + "/", 2000ms, &body) == 200);
    const json hello = json::parse(body);
    CHECK(hello["service"] == "greeter");
    CHECK(hello["node"] == "infra");

    json addon = read_state(state_dir)["addons"]["greeter"];
    CHECK(addon["state"]["applies"] == 1);
    CHECK(addon["state"]["node"] == "infra");
    const pid_t pid = greeter_pid(state_dir);
    REQUIRE(pid > 0);
    CHECK(flotilla::test::proc::running(pid));
    // The workload is the installed flotilla-hello, found beside the installed CLI.
    CHECK(fs::read_symlink("/proc/" + std::to_string(pid) + "/exe") == fs::weakly_canonical(inst.prefix / "bin/flotilla-hello"));
    // put_file paths are the addon's own: the engine keeps them under files/<addon>/.
    const fs::path greeting_file = state_dir / "nodes" / "infra" / "files" / "greeter" / "greeting.txt";
    CHECK(flotilla::test::proc::read_text(greeting_file) == "ahoy\n");
    CHECK(addon["outputs"]["greeting_file"] == greeting_file.string());

    // Nothing changed: no apply, so the counter stays.
    Run again = cli("up");
    INFO(again.both());
    REQUIRE(again.code == 0);
    CHECK(again.out.find("No changes") != std::string::npos);
    CHECK(read_state(state_dir)["addons"]["greeter"]["state"]["applies"] == 1);

    // A new greeting is a new apply: the file changes, the workload (same spec) keeps running.
    std::ofstream(topo, std::ios::trunc) << topology(net + "0/24", "greeting = \"hej\"\nport = " + std::to_string(port) + "\n");
    Run changed = cli("up");
    INFO(changed.both());
    REQUIRE(changed.code == 0);
    CHECK(changed.out.find("hej from greeter") != std::string::npos);
    json state = read_state(state_dir);
    CHECK(state["addons"]["greeter"]["state"]["applies"] == 2);
    CHECK(greeter_pid(state_dir) == pid);
    CHECK(flotilla::test::proc::read_text(greeting_file) == "hej\n");

    // Without the greeter in the topology, up destroys it: workload, file and record go.
    std::ofstream(topo, std::ios::trunc) << topology(net + "0/24", "");
    Run removed = cli("up");
    INFO(removed.both());
    REQUIRE(removed.code == 0);
    CHECK(flotilla::test::proc::wait_until([&] { return !flotilla::test::proc::running(pid); }, 5000ms));
    CHECK(flotilla::http_get(url + "/health", 500ms) == 0);
    CHECK_FALSE(fs::exists(greeting_file));
    CHECK_FALSE(read_state(state_dir).value("addons", json::object()).contains("greeter"));

    // Back again, then down: nothing is left.
    std::ofstream(topo, std::ios::trunc) << topology(net + "0/24", "port = " + std::to_string(port) + "\n");
    Run back = cli("up");
    INFO(back.both());
    REQUIRE(back.code == 0);
    CHECK(back.out.find("hello from greeter") != std::string::npos);
    const pid_t pid2 = greeter_pid(state_dir);
    REQUIRE(pid2 > 0);
    CHECK(flotilla::test::proc::running(pid2));

    Run down = cli("down");
    INFO(down.both());
    CHECK(down.code == 0);
    CHECK(flotilla::test::proc::wait_until([&] { return !flotilla::test::proc::running(pid2); }, 5000ms));
    CHECK(flotilla::http_get(url + "/health", 500ms) == 0);
    CHECK_FALSE(fs::exists(state_dir));
  }
}

TEST_CASE("sdk: the installed CLI refuses a misspelt or out-of-range greeter option at validate", "[integration][sdk]") {
  const Installed& inst = installed({Example::greeter});
  ScratchDir work("flotilla-sdk-validate");
  const fs::path topo = work.path() / "topology.toml";
  const fs::path state_dir = work.path() / "state";
  auto validate = [&] {
    return run({inst.flotilla.string(), "validate", topo.string(), "--plugin-path", inst.greeter.string(), "--state-dir", state_dir.string()},
               work.path(), 60);
  };

  SECTION("correct options are valid") {
    std::ofstream(topo) << topology(net_prefix() + "0/24", "greeting = \"ahoy\"\nport = 8090\n");
    const Run r = validate();
    INFO(r.both());
    CHECK(r.code == 0);
    CHECK(r.out.find("is valid") != std::string::npos);
  }

  SECTION("an unknown option names the file, line, addon and plugin, and suggests the right key") {
    const std::string text = topology(net_prefix() + "0/24", "greting = \"ahoy\"\nport = 8090\n");
    std::ofstream(topo) << text;
    const int line = line_of(text, "greting");
    REQUIRE(line > 0);
    const Run r = validate();
    INFO(r.both());
    CHECK(r.code == 3);
    CHECK(r.err.find(topo.string() + ":" + std::to_string(line) + ":") != std::string::npos);
    CHECK(r.err.find("option \"greting\" is not known to addon \"greeter\" (plugin greeter)") != std::string::npos);
    CHECK(r.err.find("did you mean \"greeting\"") != std::string::npos);
  }

  SECTION("the plugin's own validate reports an out-of-range port at the addon's table") {
    const std::string text = topology(net_prefix() + "0/24", "port = 70000\n");
    std::ofstream(topo) << text;
    const int line = line_of(text, "[[addons]]");
    REQUIRE(line > 0);
    const Run r = validate();
    INFO(r.both());
    CHECK(r.code == 3);
    CHECK(r.err.find(topo.string() + ":" + std::to_string(line) + ":") != std::string::npos);
    CHECK(r.err.find("addon \"greeter\": option \"port\": must be between 1 and 65535, not 70000") != std::string::npos);
  }

  CHECK_FALSE(fs::exists(state_dir));
}

TEST_CASE("sdk: a greeter built against the SDK 1.0 headers loads and runs in this engine", "[integration][sdk]") {
  const Installed& inst = installed({Example::greeter10});
  // It was built from the 1.0 copy of the headers only.
  const std::string commands = flotilla::test::proc::read_text(inst.greeter10 / "compile_commands.json");
  CHECK(commands.find(std::string(FLOTILLA_SOURCE_DIR) + "/tests/sdk/sdk-1.0/include") != std::string::npos);
  CHECK(commands.find(std::string(FLOTILLA_SOURCE_DIR) + "/sdk/include") == std::string::npos);
  CHECK(commands.find((inst.prefix / "include").string()) == std::string::npos);

  const Run listed = run({inst.flotilla.string(), "plugins", "--plugin-path", inst.greeter10.string(), "--output", "json"}, inst.dir.path(), 60);
  INFO(listed.both());
  REQUIRE(listed.code == 0);
  const json doc = json::parse(listed.out);
  bool found = false;
  for (const auto& p : doc.at("plugins"))
    if (p.value("name", "") == "greeter") {
      found = true;
      CHECK(fs::weakly_canonical(p.value("file", "")) == fs::weakly_canonical(inst.greeter10 / "addon_greeter.so"));
    }
  CHECK(found);
  for (const auto& problem : doc.at("problems")) CHECK(problem.get<std::string>().find("greeter") == std::string::npos);

  ScratchDir work("flotilla-sdk10-up");
  const fs::path topo = work.path() / "topology.toml";
  const fs::path state_dir = work.path() / "state";
  const std::string net = net_prefix();
  const int port = 8091;
  const std::string url = "http://" + net + "1:" + std::to_string(port);
  std::ofstream(topo) << topology(net + "0/24", "greeting = \"old\"\nport = " + std::to_string(port) + "\n");
  auto cli = [&](const std::string& command) {
    return run({inst.flotilla.string(), command, topo.string(), "--plugin-path", inst.greeter10.string(), "--state-dir", state_dir.string()},
               work.path(), 300);
  };
  struct DownGuard {
    std::function<Run()> down;
    ~DownGuard() {
        if (const Run r = down(); r.code != 0) flotilla::test::report_cleanup_failure("down: " + r.both());
      }
  } guard{[&] { return cli("down"); }};

  const Run up = cli("up");
  INFO(up.both());
  REQUIRE(up.code == 0);
  CHECK(up.out.find("old from greeter") != std::string::npos);
  CHECK(up.out.find("greeter: " + url) != std::string::npos);
  CHECK(flotilla::http_get(url + "/health", 2000ms) == 200);
  CHECK(read_state(state_dir)["addons"]["greeter"]["state"]["applies"] == 1);
  const pid_t pid = greeter_pid(state_dir);
  REQUIRE(pid > 0);

  const Run down = cli("down");
  INFO(down.both());
  CHECK(down.code == 0);
  CHECK(flotilla::test::proc::wait_until([&] { return !flotilla::test::proc::running(pid); }, 5000ms));
  CHECK_FALSE(fs::exists(state_dir));
}

namespace {

/// The guide's driver example: two web nodes with hello/v1 on them and one db node, on the
/// sandbox driver in `network` (owner is a mutable option).
std::string sandbox_topology(const std::string& network, const std::string& owner) {
  return "[cluster]\nname = \"sdksandbox\"\ndriver = \"sandbox\"\n\n"
         "[driver.sandbox]\nnetwork = \"" + network + "\"\nowner = \"" + owner + "\"\n\n"
         "[[nodes]]\nname = \"web\"\ncount = 2\nroles = [\"web\"]\n\n"
         "[[nodes]]\nname = \"db\"\ncount = 1\nroles = [\"db\"]\n\n"
         "[[services]]\nname = \"hello/v1\"\ncommand = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]\n"
         "replicas = 2\nport = 8000\nhealth = \"/health\"\nroles = [\"web\"]\n";
}

}  // namespace

TEST_CASE("sdk: the guide's sandbox driver, built out of tree, creates and removes a cluster's nodes", "[integration][sdk]") {
  const Installed& inst = installed({Example::sandbox});
  ScratchDir work("flotilla-sdk-sandbox");
  const fs::path topo = work.path() / "topology.toml";
  const fs::path state_dir = work.path() / "state";
  const std::string network = flotilla::test::resources::process_subnet("sandbox").net();
  auto cli = [&](const std::string& command) {
    return run({inst.flotilla.string(), command, topo.string(), "--plugin-path", inst.sandbox.string(), "--state-dir", state_dir.string()},
               work.path(), 300);
  };

  SECTION("validate runs the driver's own check") {
    std::ofstream(topo) << sandbox_topology("10.0.0", "");
    const Run r = cli("validate");
    INFO(r.both());
    CHECK(r.code == 3);
    CHECK(r.err.find("must be the first three parts of a loopback address such as \"127.83.1\", not \"10.0.0\"") != std::string::npos);
    CHECK_FALSE(fs::exists(state_dir));
  }

  SECTION("up gives nodes slots in file order, runs services on them, and down removes them") {
    std::ofstream(topo) << sandbox_topology(network, "ops");
    struct DownGuard {
      std::function<Run()> down;
      ~DownGuard() {
        if (const Run r = down(); r.code != 0) flotilla::test::report_cleanup_failure("down: " + r.both());
      }
    } guard{[&] { return cli("down"); }};

    const Run up = cli("up");
    INFO(up.both());
    REQUIRE(up.code == 0);
    const json nodes = read_state(state_dir)["nodes"];
    // Groups in file order, nodes by index within their group: web-1, web-2, db.
    const std::vector<std::tuple<std::string, std::string, int, int>> expected = {{"web-1", "web", 1, 0}, {"web-2", "web", 2, 1}, {"db", "db", 1, 2}};
    for (const auto& [name, group, index, slot] : expected) {
      INFO(name);
      REQUIRE(nodes.contains(name));
      CHECK(nodes[name]["slot"] == slot);
      CHECK(nodes[name]["index"] == index);
      CHECK(nodes[name]["runtime"] == "process");
      const std::string address = network + "." + std::to_string(10 + slot);
      CHECK(nodes[name]["address"] == address);
      // The driver's description of the node, in the work directory the engine chose for it.
      const json described = json::parse(flotilla::test::proc::read_text(state_dir / "nodes" / name / "sandbox-node.json"));
      CHECK(described["slot"] == slot);
      CHECK(described["index"] == index);
      CHECK(described["group"] == group);
      CHECK(described["owner"] == "ops");
    }
    // hello/v1's two instances run on the web nodes through the process runtime.
    CHECK(flotilla::http_get("http://" + network + ".10:8000/health", 2000ms) == 200);
    CHECK(flotilla::http_get("http://" + network + ".11:8000/health", 2000ms) == 200);

    const Run status = cli("status");
    INFO(status.both());
    CHECK(status.code == 0);
    CHECK(status.out.find(network + ".12") != std::string::npos);

    // A node gone behind the engine's back: inspect reports it missing, and up creates it again
    // with its slot, so at its address.
    fs::remove(state_dir / "nodes" / "db" / "sandbox-node.json");
    const Run plan_missing = cli("plan");
    INFO(plan_missing.both());
    CHECK(plan_missing.out.find("it is missing") != std::string::npos);
    const Run repaired = cli("up");
    INFO(repaired.both());
    REQUIRE(repaired.code == 0);
    CHECK(fs::is_regular_file(state_dir / "nodes" / "db" / "sandbox-node.json"));
    CHECK(read_state(state_dir)["nodes"]["db"]["address"] == network + ".12");

    // owner is in mutable_options: an in-place update. network is not: it forces replacement,
    // and the services follow their nodes to the new addresses.
    std::ofstream(topo, std::ios::trunc) << sandbox_topology(network, "dev");
    const Run plan_owner = cli("plan");
    INFO(plan_owner.both());
    CHECK(plan_owner.out.find("driver option owner changed; changes in place") != std::string::npos);
    CHECK(plan_owner.out.find("forces replacement") == std::string::npos);
    const Run up_owner = cli("up");
    INFO(up_owner.both());
    REQUIRE(up_owner.code == 0);
    CHECK(flotilla::http_get("http://" + network + ".10:8000/health", 2000ms) == 200);

    const std::string moved = flotilla::test::resources::process_subnet("sandbox-moved").net();
    std::ofstream(topo, std::ios::trunc) << sandbox_topology(moved, "dev");
    const Run plan_network = cli("plan");
    INFO(plan_network.both());
    CHECK(plan_network.out.find("driver option network changed; forces replacement") != std::string::npos);
    const Run up_network = cli("up");
    INFO(up_network.both());
    REQUIRE(up_network.code == 0);
    CHECK(read_state(state_dir)["nodes"]["web-1"]["address"] == moved + ".10");
    CHECK(flotilla::http_get("http://" + moved + ".10:8000/health", 2000ms) == 200);
    CHECK(flotilla::http_get("http://" + network + ".10:8000/health", 500ms) == 0);

    const Run down = cli("down");
    INFO(down.both());
    CHECK(down.code == 0);
    CHECK(flotilla::http_get("http://" + moved + ".10:8000/health", 500ms) == 0);
    CHECK_FALSE(fs::exists(state_dir));
  }
}

TEST_CASE("sdk: the guide shows the worked examples exactly as the tests build them", "[sdk]") {
  const fs::path source = FLOTILLA_SOURCE_DIR;
  const std::string guide = flotilla::test::proc::read_text(source / "docs/plugin-guide.md");
  REQUIRE_FALSE(guide.empty());
  for (const char* rel : {"tests/sdk/greeter/greeter.cpp", "tests/sdk/greeter/CMakeLists.txt", "tests/sdk/sandbox/sandbox.cpp"}) {
    INFO(rel << " differs from its copy in docs/plugin-guide.md; update the guide");
    const std::string text = flotilla::test::proc::read_text(source / rel);
    REQUIRE_FALSE(text.empty());
    CHECK(guide.find(text) != std::string::npos);
  }
}
