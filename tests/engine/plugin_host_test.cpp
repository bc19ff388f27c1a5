#include "plugin_host.hpp"
#include "support/hostile_plugins.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

using namespace flotilla;
namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;

namespace {

fs::path test_plugin(const std::string& name) { return fs::path(FLOTILLA_TEST_PLUGIN_DIR) / ("test_" + name + ".so"); }

CallHooks no_hooks() {
  CallHooks h;
  h.instance = "test";
  return h;
}

}  // namespace

TEST_CASE("the real plugins load and declare their kind", "[plugin_host]") {
  auto host = PluginHost::discover({FLOTILLA_PLUGIN_DIR});
  CHECK(host.problems().empty());
  const Plugin* local = host.find("driver", "local");
  REQUIRE(local != nullptr);
  CHECK(local->driver != nullptr);
  CHECK(local->manifest.contains("schema"));
  const Plugin* process = host.find("runtime", "process");
  REQUIRE(process != nullptr);
  CHECK(process->runtime != nullptr);
}

TEST_CASE("a plugin built for another ABI version is refused with both versions and the file named", "[plugin_host]") {
  auto r = load_plugin(test_plugin("bad_abi"));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("test_bad_abi.so"));
  CHECK_THAT(r.error().message, Catch::Contains("ABI version 99"));
  CHECK_THAT(r.error().message, Catch::Contains("serves ABI version " + std::to_string(FLT_ABI_VERSION)));
}

TEST_CASE("a library without the entry symbol is refused by name", "[plugin_host]") {
  auto r = load_plugin(test_plugin("no_entry"));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("test_no_entry.so"));
  CHECK_THAT(r.error().message, Catch::Contains("flotilla_plugin_entry"));
}

TEST_CASE("a file that is not a library is reported, not fatal, during discovery", "[plugin_host]") {
  const fs::path dir = fs::temp_directory_path() / ("flotilla-plugin-host-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::FILE* f = std::fopen((dir / "driver_broken.so").c_str(), "w");
    std::fputs("not an ELF file", f);
    std::fclose(f);
  }
  fs::copy_file(test_plugin("bad_abi"), dir / "test_bad_abi.so");
  auto host = PluginHost::discover({dir, FLOTILLA_PLUGIN_DIR});
  CHECK(host.find("driver", "local") != nullptr);
  CHECK(host.problems().size() == 2);
  auto missing = host.get("driver", "broken");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("driver_broken.so"));
  // Every driver found is listed, whichever others are built besides local.
  CHECK_THAT(missing.error().message, Catch::Matches(".*known drivers: ([a-z]+, )*local(, [a-z]+)*;.*"));
  fs::remove_all(dir);
}

TEST_CASE("an exception thrown across the C boundary becomes an error naming the plugin", "[plugin_host]") {
  auto p = load_plugin(test_plugin("throws_across_abi"));
  REQUIRE(p);
  auto r = call_plugin(*p, p->addon->apply, "apply", json::object(), no_hooks());
  CHECK(r.status == FLT_ERROR);
  CHECK_THAT(r.error, Catch::Contains("boom from a raw plugin"));
  CHECK_THAT(call_error(*p, "apply", r).message, Catch::StartsWith("addon raw-thrower: apply failed"));
}

TEST_CASE("the C++ wrapper turns exceptions into statuses", "[plugin_host][sdk]") {
  auto p = load_plugin(test_plugin("wrapper_throws"));
  REQUIRE(p);
  CHECK(p->provides() == std::vector<std::string>{"test"});
  auto r = call_plugin(*p, p->addon->apply, "apply", json::object(), no_hooks());
  CHECK(r.status == FLT_ERROR);
  CHECK(r.error == "the wrapped addon failed on purpose");
  auto d = call_plugin(*p, p->addon->destroy, "destroy", json::object(), no_hooks());
  CHECK(d.status == FLT_RETRYABLE);
  CHECK(call_error(*p, "destroy", d).retryable);
}

TEST_CASE("a malformed JSON result is an error naming the plugin", "[plugin_host]") {
  auto p = load_plugin(test_plugin("malformed_result"));
  REQUIRE(p);
  auto r = call_plugin(*p, p->addon->apply, "apply", json::object(), no_hooks());
  CHECK(r.status == FLT_ERROR);
  CHECK_THAT(r.error, Catch::Contains("not a JSON object"));
  CHECK_THAT(call_error(*p, "apply", r).message, Catch::StartsWith("addon malformed: apply failed"));
}

TEST_CASE("secrets are redacted from messages", "[plugin_host]") {
  add_secret("AKIAVERYSECRETKEY");
  CHECK(redact("key=AKIAVERYSECRETKEY and again AKIAVERYSECRETKEY") == "key=[redacted] and again [redacted]");
  CHECK(redact("nothing here") == "nothing here");
}

TEST_CASE("a table lacking a required entry is refused, naming the entry", "[plugin_host][sdk]") {
  // Its `validate` is NULL too, which is allowed; `destroy` is not.
  auto r = load_plugin(test_plugin("missing_entry"));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("test_missing_entry.so"));
  CHECK_THAT(r.error().message, Catch::Contains("no `destroy` in its flotilla.addon/1 table, and that entry is required"));
}

TEST_CASE("a manifest that lists answers without a query interface is refused", "[plugin_host][sdk]") {
  auto r = load_plugin(test_plugin("answers_without_query"));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("test_answers_without_query.so"));
  CHECK_THAT(r.error().message, Catch::Contains("no flotilla.query/1 interface"));
}

TEST_CASE("an addon answers questions through flotilla.query/1, in parts, until cancelled", "[plugin_host][sdk]") {
  auto p = load_plugin(test_plugin("answers"));
  REQUIRE(p);
  REQUIRE(p->query != nullptr);
  CHECK(p->answers() == std::vector<std::string>{"count", "follow", "fail"});
  CHECK(p->answers("count"));
  CHECK_FALSE(p->answers("logs"));

  std::vector<json> parts;
  auto collect = [&](std::string_view text) { parts.push_back(json::parse(text)); };
  json req = {{"addon", {{"name", "a1"}}}, {"question", "count"}, {"args", {{"n", 3}}}};
  auto r = call_query(*p, req, no_hooks(), collect);
  REQUIRE(r.status == FLT_OK);
  CHECK(r.result == json{{"parts", 3}});
  REQUIRE(parts.size() == 3);
  CHECK(parts[2] == json{{"i", 2}, {"addon", "a1"}});

  // A missing argument is reported by name, not an assertion.
  parts.clear();
  r = call_query(*p, {{"addon", {{"name", "a1"}}}, {"question", "count"}, {"args", json::object()}}, no_hooks(), collect);
  CHECK(r.status == FLT_INVALID);
  CHECK_THAT(r.error, Catch::Contains("option `n` is missing"));

  r = call_query(*p, {{"question", "weather"}}, no_hooks(), collect);
  CHECK(r.status == FLT_NOT_SUPPORTED);
  CHECK_THAT(r.error, Catch::Contains("weather"));

  // A followed answer runs until the host cancels it, and then succeeds.
  parts.clear();
  CallHooks hooks = no_hooks();
  hooks.cancelled = [&] { return parts.size() >= 5; };
  r = call_query(*p, {{"question", "follow"}}, hooks, collect);
  CHECK(r.status == FLT_OK);
  CHECK(parts.size() == 5);
  CHECK(r.result == json{{"parts", 5}});

  // A part the engine cannot take ends the answer as an error, without unwinding the plugin.
  r = call_query(*p, {{"question", "follow"}}, no_hooks(), [](std::string_view) { throw std::runtime_error("disk full"); });
  CHECK(r.status == FLT_ERROR);
  CHECK_THAT(r.error, Catch::Contains("disk full"));

  // An addon without the interface answers nothing.
  auto plain = load_plugin(test_plugin("wrapper_throws"));
  REQUIRE(plain);
  CHECK(plain->query == nullptr);
  CHECK(call_query(*plain, {{"question", "count"}}, no_hooks(), collect).status == FLT_NOT_SUPPORTED);
}

TEST_CASE("bad plugin candidates are refused before the loader sees them, each with its reason", "[plugin_host]") {
  const ScratchDir scratch("flotilla-hostile-plugins");
  const fs::path dir = scratch.path() / "plugins";
  const auto candidates = test::make_hostile_plugin_dir(dir, fs::path(FLOTILLA_PLUGIN_DIR) / "driver_local.so");
  for (const auto& c : candidates) {
    INFO(c.name);
    CHECK_THAT(check_plugin_file(dir / c.name), Catch::Contains(c.reason));
    auto loaded = load_plugin(dir / c.name);
    REQUIRE_FALSE(loaded);
    CHECK_THAT(loaded.error().message, Catch::StartsWith("skipped plugin " + (dir / c.name).string() + ": "));
    CHECK_THAT(loaded.error().message, Catch::Contains(c.reason));
    CHECK_THAT(loaded.error().message, Catch::Contains("remove it from the plugin path"));
  }
  CHECK(check_plugin_file(fs::path(FLOTILLA_PLUGIN_DIR) / "driver_local.so").empty());
  CHECK(check_plugin_file(test_plugin("bad_abi")).empty());
}

TEST_CASE("a truncated plugin names how many bytes it has and how many it needs", "[plugin_host]") {
  const ScratchDir scratch("flotilla-hostile-plugins");
  const fs::path real = fs::path(FLOTILLA_PLUGIN_DIR) / "runtime_process.so";
  test::make_hostile_plugin_dir(scratch.path(), real);
  CHECK(check_plugin_file(scratch.path() / "driver_truncated.so") ==
        "truncated ELF (4096 of " + std::to_string(fs::file_size(real)) + " bytes)");
}

TEST_CASE("discovery survives a hostile plugin directory and still finds the real plugins", "[plugin_host]") {
  const ScratchDir scratch("flotilla-hostile-plugins");
  const fs::path dir = scratch.path() / "plugins";
  const auto candidates = test::make_hostile_plugin_dir(dir, fs::path(FLOTILLA_PLUGIN_DIR) / "driver_local.so");
  // A directory of the path that is itself a symlink loop, and one that does not exist.
  fs::create_symlink(scratch.path() / "loop_dir", scratch.path() / "loop_dir");
  auto host = PluginHost::discover({scratch.path() / "loop_dir", dir, scratch.path() / "missing", FLOTILLA_PLUGIN_DIR});
  CHECK(host.find("driver", "local") != nullptr);
  CHECK(host.find("runtime", "process") != nullptr);
  REQUIRE(host.problems().size() == candidates.size() + 1);
  CHECK_THAT(host.problems()[0].message, Catch::Contains("cannot read plugin directory " + (scratch.path() / "loop_dir").string()));
  for (const auto& c : candidates) {
    INFO(c.name);
    const bool reported = std::any_of(host.problems().begin(), host.problems().end(), [&](const Error& e) {
      return e.message.find((dir / c.name).string() + ": ") != std::string::npos && e.message.find(c.reason) != std::string::npos;
    });
    CHECK(reported);
  }
  auto truncated = host.get("driver", "truncated");
  REQUIRE_FALSE(truncated);
  CHECK_THAT(truncated.error().message, Catch::Contains("truncated ELF"));
}
