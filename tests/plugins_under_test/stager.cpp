// An addon for the engine's tests of `stages`: "first", then "second" and "third" (both after
// "first"), then the whole apply. Each call appends "begin NAME" and "end NAME" to the file
// `calls` in the addon's directory ("whole" for the whole apply); "first" waits a moment between
// the two, so a stage started too early shows up as a "begin" before "end first". Each stage
// returns {"stage": NAME}; the whole apply reports, as outputs.seen, the "stages" its request
// carried. Option `fail_stage` makes that stage fail.
#include <flotilla/plugin.hpp>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace {
using flotilla::sdk::json;

void note(const json& req, const std::string& line) {
  // One short write per line in append mode: lines from stages running at once do not mix.
  std::ofstream(req.at("addon").at("dir").get<std::string>() + "/calls", std::ios::app) << line + "\n" << std::flush;
}

class Stager final : public flotilla::sdk::Addon {
 public:
  json apply(flotilla::sdk::Context& ctx, const json& req) override {
    const std::string stage = req.value("stage", std::string());
    const std::string name = stage.empty() ? "whole" : stage;
    note(req, "begin " + name);
    if (stage == "first") std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (!stage.empty() && stage == ctx.option<std::string>("fail_stage", ""))
      throw flotilla::sdk::Error(FLT_ERROR, "stage " + stage + " failed on purpose");
    note(req, "end " + name);
    if (!stage.empty()) return {{"outputs", {{"stage", stage}}}};
    return {{"outputs", {{"seen", req.value("stages", json())}}}};
  }
  json destroy(flotilla::sdk::Context&, const json&) override { return json::object(); }
};
}  // namespace

FLOTILLA_PLUGIN(Stager, "stager", "1.0.0", "applies in three stages and notes the order of its calls",
                R"json({"schema": {"fail_stage": {"type": "string", "default": "", "description": "the stage that fails"}},
                         "placement": {"roles": ["infra"], "mode": "first"},
                         "stages": [{"name": "first"}, {"name": "second", "after": ["first"]}, {"name": "third", "after": ["first"]}]})json")
