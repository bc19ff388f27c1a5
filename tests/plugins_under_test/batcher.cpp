// An addon for the engine's tests of the runtime operation `batch`: apply starts `per_node`
// holders (sleep) on every node of its placement in one batch, with one operation for a node
// that does not exist among them, and reports each result's status and error in its outputs,
// with the answers to two malformed batches. It reconciles (resyncs on every up) and records
// how many holders it asked for in its own state, the same value each time. destroy stops them
// all in one batch (stop_each), or, with `leave_running`, leaves them to the engine.
#include <flotilla/plugin.hpp>

#include <string>
#include <vector>

namespace {
using flotilla::sdk::json;

class Batcher final : public flotilla::sdk::Addon {
 public:
  json apply(flotilla::sdk::Context& ctx, const json& req) override {
    const int per_node = ctx.option<int>("per_node", 2);
    std::vector<json> ops;
    for (const auto& node : req.at("addon").at("nodes"))
      for (int k = 1; k <= per_node; ++k)
        ops.push_back({{"op", "start"}, {"node", node}, {"workload", {{"name", "holder-" + std::to_string(k)}, {"command", {"sleep", "600"}}}}});
    ops.push_back({{"op", "start"}, {"node", "nowhere"}, {"workload", {{"name", "holder-1"}, {"command", {"sleep", "600"}}}}});
    ctx.set_state({{"holders_per_node", per_node}});
    json statuses = json::array();
    json errors = json::array();
    for (const auto& r : ctx.runtime_batch(ops)) {
      statuses.push_back(static_cast<int>(r.status));
      errors.push_back(r.error);
    }
    auto refusal = [&](const json& request) {
      try {
        (void)ctx.runtime(request);
        return std::string("accepted");
      } catch (const flotilla::sdk::Error& e) {
        return std::to_string(static_cast<int>(e.status())) + ": " + e.what();
      }
    };
    return {{"outputs",
             {{"statuses", statuses},
              {"errors", errors},
              {"not_an_array", refusal({{"op", "batch"}, {"ops", "start"}})},
              {"nested", refusal({{"op", "batch"}, {"ops", {{{"op", "batch"}, {"ops", json::array()}}}}})}}}};
  }
  // With `leave_running`, destroy leaves its holders for the engine to stop.
  json destroy(flotilla::sdk::Context& ctx, const json&) override {
    if (!ctx.option<bool>("leave_running", false)) (void)flotilla::sdk::Context::all_ok(ctx.stop_each(ctx.list()));
    return json::object();
  }
};
}  // namespace

FLOTILLA_PLUGIN(Batcher, "batcher", "1.0.0", "starts its holders on every node in one batch",
                R"json({"schema": {"per_node": {"type": "integer", "default": 2, "minimum": 1, "description": "holders per node"},
                                    "leave_running": {"type": "boolean", "default": false, "description": "destroy stops nothing"}},
                         "placement": {"roles": ["swarm"]}, "reconcile": true})json")
