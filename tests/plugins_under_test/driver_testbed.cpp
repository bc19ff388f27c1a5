// A driver for the engine's tests whose machines can be stopped from outside: each node is a
// loopback address and a file `<workdir>/machine` holding "running" or "stopped". Removing
// the file makes the machine missing. `flavor` forces a replacement when it changes; `note`
// changes in place.
#include <flotilla/plugin.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;

fs::path machine_file(const json& req) {
  const json node = req.value("node", json::object());
  const std::string workdir = node.value("workdir", std::string());
  if (workdir.empty()) throw Invalid("driver testbed: the node has no workdir");
  return fs::path(workdir) / "machine";
}

class TestbedDriver : public flotilla::sdk::Driver {
 public:
  json create(Context&, const json& req) override {
    const json node = req.value("node", json::object());
    const int slot = node.value("slot", -1);
    if (slot < 0 || slot > 250) throw Invalid("driver testbed: bad slot " + std::to_string(slot));
    const fs::path file = machine_file(req);
    fs::create_directories(file.parent_path());
    std::ofstream(file) << "running";
    const json config = req.value("config", json::object());
    return json{{"address", config.value("prefix", std::string("127.86.7")) + "." + std::to_string(slot + 1)},
                {"runtime", "process"},
                {"data", {{"flavor", config.value("flavor", std::string())}}}};
  }

  json inspect(Context&, const json& req) override {
    std::ifstream in(machine_file(req));
    std::string state;
    if (!in || !(in >> state)) return json{{"state", "missing"}};
    return json{{"state", state == "running" ? "running" : "stopped"}};
  }

  json destroy(Context&, const json& req) override {
    std::error_code ec;
    fs::remove(machine_file(req), ec);
    return json::object();
  }
};

}  // namespace

FLOTILLA_PLUGIN(TestbedDriver, "testbed", "1.0.0", "Test machines that can be stopped from outside", R"json({
  "schema": {
    "prefix": {"type": "string", "default": "127.86.7", "description": "the first three octets of node addresses"},
    "flavor": {"type": "string", "default": "small", "description": "the machine size; changing it replaces the machine"},
    "note": {"type": "string", "default": "", "description": "a free text the machine is told; changes in place"}
  },
  "mutable_options": ["note"]
})json")
