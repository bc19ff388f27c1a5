// The editor and shell support: bash completion driven through compgen, the zsh script, the
// man pages against `--help`, and the topology schema checked by a real JSON Schema validator
// (Debian's python3-jsonschema) against every file in configs/.
#include "cli_docs.hpp"
#include "support/skip.hpp"
#include "support/process_util.hpp"
#include "topology_schema.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using flotilla::ArgKind;
using flotilla::test::proc::read_text;
using flotilla::test::proc::ScratchDir;

namespace {

const std::string kFlotilla = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla";

struct Shell {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `script` with bash (or another shell) in `dir`, capturing its output.
Shell run_shell(const ScratchDir& dir, const std::string& script, const std::string& shell = "bash") {
  const fs::path file = dir.path() / "script.sh", out = dir.path() / "out.txt", err = dir.path() / "err.txt";
  std::ofstream(file) << script;
  const std::string cmd = "cd " + std::string(FLOTILLA_SOURCE_DIR) + " && " + shell + " " + file.string() + " >" + out.string() + " 2>" +
                          err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out), read_text(err)};
}

/// The candidates bash completion offers for the words of `line` (the last word is completed).
std::set<std::string> complete(const ScratchDir& dir, const std::string& line) {
  const std::string script = "source <(\"" + kFlotilla + "\" completion bash) || exit 9\n"
                             "COMP_WORDS=(\"" + kFlotilla + "\" " + line + ")\n"
                             "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                             "_flotilla\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
  const auto r = run_shell(dir, script);
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::set<std::string> words;
  std::istringstream lines(r.out);
  for (std::string w; std::getline(lines, w);)
    if (!w.empty()) words.insert(w);
  return words;
}

bool have(const std::string& program) { return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0; }

}  // namespace

TEST_CASE("usage words name what each positional argument is", "[cli]") {
  using K = ArgKind;
  CHECK(flotilla::positional_kinds("FILE [SERVICE] [--node N] [--since 10m] [--grep TEXT] [--follow] [--output json]") ==
        std::vector<K>{K::topology_file, K::service});
  CHECK(flotilla::positional_kinds("FILE SERVICE=N") == std::vector<K>{K::topology_file, K::service_count});
  CHECK(flotilla::positional_kinds("FILE NAME") == std::vector<K>{K::topology_file, K::node_or_service});
  CHECK(flotilla::positional_kinds("FILE [--plan PLAN] [--parallelism N]") == std::vector<K>{K::topology_file});
  CHECK(flotilla::positional_kinds("[--output json]").empty());
  CHECK(flotilla::positional_kinds("SHELL") == std::vector<K>{K::shell});
  const auto state = flotilla::positionals("show|restore-backup FILE [--output json] [--force]");
  REQUIRE(state.size() == 2);
  CHECK(state[0].kind == K::choice);
  CHECK(state[0].words == "show restore-backup");
  CHECK(state[1].kind == K::topology_file);
}

TEST_CASE("a manifest's options become a closed JSON Schema object", "[cli]") {
  const auto manifest = nlohmann::json::parse(R"({
    "port": {"type": "integer", "default": 8080, "minimum": 1, "maximum": 65535, "description": "Port"},
    "mode": {"type": "string", "enum": ["a", "b"]},
    "token": {"type": "string", "secret": true, "required": true, "description": "API token"},
    "tags": {"type": "table"}
  })");
  const auto s = flotilla::options_json_schema(manifest);
  CHECK(s["additionalProperties"] == false);
  CHECK(s["required"] == nlohmann::json::array({"token"}));
  CHECK(s["properties"]["port"] == nlohmann::json::parse(R"({"type": "integer", "default": 8080, "minimum": 1, "maximum": 65535, "description": "Port"})"));
  CHECK(s["properties"]["mode"]["enum"] == nlohmann::json::array({"a", "b"}));
  CHECK(s["properties"]["tags"]["type"] == "object");
  // A secret may be written env:NAME; its default and description are not repeated inside anyOf.
  CHECK(s["properties"]["token"]["anyOf"][1]["pattern"] == "^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.*)$");
  CHECK(s["properties"]["token"]["description"] == "API token (secret; may be env:NAME or file:/path)");

  const auto topology = flotilla::topology_json_schema({{"driver", "local", manifest}, {"addon", "haproxy", manifest}}, "9.9");
  CHECK(topology["properties"]["cluster"]["properties"]["driver"]["enum"] == nlohmann::json::array({"local"}));
  CHECK(topology["properties"]["driver"]["properties"]["local"]["properties"].contains("port"));
  CHECK(topology["properties"]["addons"]["items"]["allOf"][0]["if"]["properties"]["plugin"]["const"] == "haproxy");
}

TEST_CASE("bash completion offers commands, options, files and the topology's names", "[cli][integration]") {
  ScratchDir dir("flotilla-completion");
  CHECK(complete(dir, "s") == std::set<std::string>{"status", "scale", "schema", "state"});
  CHECK(complete(dir, "up configs/lo") == std::set<std::string>{"configs/local.toml"});
  // Names come from configs/local.toml: one infra node, three swarm nodes, one service.
  CHECK(complete(dir, "env configs/local.toml sw") == std::set<std::string>{"swarm-1", "swarm-2", "swarm-3"});
  CHECK(complete(dir, "ip configs/local.toml ''") == std::set<std::string>{"infra", "swarm-1", "swarm-2", "swarm-3", "hello/v1"});
  CHECK(complete(dir, "scale configs/local.toml h") == std::set<std::string>{"hello/v1="});
  CHECK(complete(dir, "logs configs/local.toml ''") == std::set<std::string>{"hello/v1"});
  CHECK(complete(dir, "logs configs/local.toml --node i") == std::set<std::string>{"infra"});
  CHECK(complete(dir, "logs configs/local.toml --since 1m --node i") == std::set<std::string>{"infra"});
  CHECK(complete(dir, "status configs/local.toml --output ''") == std::set<std::string>{"text", "json"});
  CHECK(complete(dir, "status --out") == std::set<std::string>{"--output"});
  CHECK(complete(dir, "completion ''") == std::set<std::string>{"bash", "zsh"});
  CHECK(complete(dir, "state ''") == std::set<std::string>{"show", "restore-backup"});
  CHECK(complete(dir, "state show configs/lo") == std::set<std::string>{"configs/local.toml"});
  // A topology that does not parse gives no names, and no error on the terminal.
  CHECK(complete(dir, "ip /nonexistent.toml ''").empty());
}

TEST_CASE("the zsh completion script is valid zsh", "[cli][integration]") {
  if (!have("zsh")) {
    FLOTILLA_SKIP("zsh is not installed (scripts/install-deps.sh installs it)");
  }
  ScratchDir dir("flotilla-completion");
  const auto r = run_shell(dir, "\"" + kFlotilla + "\" completion zsh > " + (dir.path() / "_flotilla").string() + " && zsh -n " +
                                    (dir.path() / "_flotilla").string());
  INFO(r.err);
  CHECK(r.code == 0);
  const auto text = read_text(dir.path() / "_flotilla");
  CHECK(text.starts_with("#compdef flotilla\n"));
  CHECK(text.find("'scale:Change one service") != std::string::npos);
}

TEST_CASE("man pages cover every command and every option --help shows", "[cli][integration]") {
  ScratchDir dir("flotilla-man");
  auto r = run_shell(dir, "\"" + kFlotilla + "\" manpages " + (dir.path() / "man").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto help = run_shell(dir, "\"" + kFlotilla + "\" --help");
  std::istringstream lines(help.out);
  int commands = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("  ") || line.size() < 4 || !std::islower(static_cast<unsigned char>(line[2]))) continue;
    const std::string name = line.substr(2, line.find(' ', 2) - 2);
    ++commands;
    const auto page = read_text(dir.path() / "man" / ("flotilla-" + name + ".1"));
    INFO(name);
    REQUIRE_FALSE(page.empty());
    // Every option of `flotilla NAME --help` is in its page (dashes are \- in roff).
    const auto cmd_help = run_shell(dir, "\"" + kFlotilla + "\" " + name + " --help");
    std::istringstream opts(cmd_help.out);
    for (std::string o; std::getline(opts, o);) {
      const auto at = o.find("--");
      if (!o.starts_with("  ") || at == std::string::npos) continue;
      std::string option = "--" + o.substr(at + 2, o.find_first_of(" ]", at) - at - 2);
      std::string in_roff;  // dashes are \- in roff
      for (char ch : option) in_roff += ch == '-' ? std::string("\\-") : std::string(1, ch);
      INFO(option);
      CHECK(page.find(in_roff) != std::string::npos);
    }
  }
  CHECK(commands >= 16);
  CHECK(read_text(dir.path() / "man" / "flotilla.1").find(".BR flotilla\\-up (1)") != std::string::npos);
  if (have("man")) {
    r = run_shell(dir, "for f in " + (dir.path() / "man").string() + "/*.1; do LC_ALL=C.UTF-8 man --warnings -l \"$f\" >/dev/null || exit 1; done");
    CHECK(r.code == 0);
    CHECK(r.err.empty());
  }
}

TEST_CASE("every file in configs/ validates against `flotilla schema`, and mistakes do not", "[cli][integration]") {
  if (std::system("/usr/bin/python3 -c 'import jsonschema, tomllib' >/dev/null 2>&1") != 0) {
    FAIL("Debian's python3-jsonschema is needed (scripts/install-deps.sh installs it)");
  }
  ScratchDir dir("flotilla-schema");
  auto r = run_shell(dir, "\"" + kFlotilla + "\" schema > " + (dir.path() / "schema.json").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto schema = nlohmann::json::parse(read_text(dir.path() / "schema.json"));
  CHECK(schema["properties"]["addons"]["items"]["properties"]["plugin"]["enum"].size() >= 6);
  const std::string check = R"PY(
import copy, glob, json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
files = sorted(glob.glob("configs/*.toml"))
assert files, "no configs"
for f in files:
    errors = [e.message for e in v.iter_errors(tomllib.load(open(f, "rb")))]
    print(f, "valid" if not errors else errors)
base = tomllib.load(open("configs/local.toml", "rb"))
haproxy = next(a for a in base["addons"] if a["plugin"] == "haproxy")
wrong_key = copy.deepcopy(base); next(a for a in wrong_key["addons"] if a["plugin"] == "haproxy")["options"]["prot"] = 1
wrong_type = copy.deepcopy(base); next(a for a in wrong_type["addons"] if a["plugin"] == "haproxy")["options"]["port"] = "80"
wrong_top = copy.deepcopy(base); wrong_top["cluster"]["nmae"] = "x"
wrong_plugin = copy.deepcopy(base); wrong_plugin["addons"][0]["plugin"] = "nosuch"
for name, doc in [("wrong key", wrong_key), ("wrong type", wrong_type), ("wrong cluster key", wrong_top), ("unknown plugin", wrong_plugin)]:
    print(name, "rejected" if list(v.iter_errors(doc)) else "accepted")
)PY";
  std::ofstream(dir.path() / "check.py") << check;
  r = run_shell(dir, "/usr/bin/python3 " + (dir.path() / "check.py").string() + " " + (dir.path() / "schema.json").string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  std::istringstream lines(r.out);
  int valid_files = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("configs/")) {
      CHECK(line.ends_with(" valid"));
      ++valid_files;
    } else {
      CHECK(line.ends_with(" rejected"));
    }
  }
  CHECK(valid_files >= 1);
  CHECK(r.out.find("wrong type rejected") != std::string::npos);
}
