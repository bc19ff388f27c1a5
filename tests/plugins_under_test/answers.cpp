// An addon that answers questions through flotilla.query/1 with the C++ wrapper:
// "count" emits args.n parts and returns their number, "follow" emits a part every 10 ms until
// the host cancels, "fail" throws Invalid; any other question is not supported.
#include <flotilla/plugin.hpp>

#include <chrono>
#include <thread>

namespace {
using flotilla::sdk::json;

class Answering final : public flotilla::sdk::Addon, public flotilla::sdk::Answers {
 public:
  json apply(flotilla::sdk::Context&, const json&) override { return json::object(); }
  json destroy(flotilla::sdk::Context&, const json&) override { return json::object(); }
  json answer(flotilla::sdk::Context& ctx, const json& req) override {
    const std::string question = req.value("question", "");
    const json args = req.value("args", json::object());
    if (question == "count") {
      const int n = flotilla::sdk::option<int>(args, "n");
      for (int i = 0; i < n; ++i) ctx.emit({{"i", i}, {"addon", req["addon"].value("name", "")}});
      return {{"parts", n}};
    }
    if (question == "follow") {
      int i = 0;
      while (!ctx.cancelled()) {
        ctx.emit({{"i", i++}});
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return {{"parts", i}};
    }
    if (question == "fail") throw flotilla::sdk::Invalid("asked to fail");
    throw flotilla::sdk::NotSupported("no answer to \"" + question + "\"");
  }
};
}  // namespace

FLOTILLA_PLUGIN(Answering, "answering", "1.0.0", "answers test questions",
                R"json({"provides": ["test-answers"], "answers": ["count", "follow", "fail"],
                          "placement": {"roles": ["infra"], "mode": "first"}, "max_parallel": 2})json")
