// The runtime broker: runtime operations an addon asks for through the host API (start,
// stop, inspect, signal, put_file, remove_file, list). Each component is recorded in state
// before it is started and after, so a crashed run adopts it instead of starting it twice.
#pragma once

#include "result.hpp"
#include "state_records.hpp"

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <string>

namespace flotilla {

using json = nlohmann::json;

class Engine;

class RuntimeBroker {
 public:
  explicit RuntimeBroker(Engine& engine) : e_(engine) {}

  /// Runs `req` (see docs/sdk-reference.md, "runtime operations") for `addon`; fills `out`
  /// with the result or {"error": message}.
  [[nodiscard]] flt_status handle(const std::string& addon, const json& req, json& out);

  /// Stops a recorded component (if it has a runtime record) and forgets it.
  [[nodiscard]] Result<void> stop_component(const std::string& addon, const std::string& key);

 private:
  struct Call {
    const std::string& addon;
    const json& req;
    json& out;
    json state;        // a snapshot taken when the call began
    std::string node;
  };
  flt_status list(Call& c);
  flt_status put_file(Call& c, bool remove);
  flt_status start(Call& c, const std::string& name, const std::string& key);
  flt_status stop(Call& c, const std::string& key, const ComponentRecord& component);
  flt_status inspect_or_signal(Call& c, const std::string& op, const std::string& name, const ComponentRecord& component);

  Engine& e_;
};

}  // namespace flotilla
