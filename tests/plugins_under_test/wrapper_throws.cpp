// An addon using the C++ wrapper whose apply throws: the wrapper must turn it into a status.
#include <flotilla/plugin.hpp>

#include <atomic>
#include <stdexcept>

namespace {
class Thrower final : public flotilla::sdk::Addon {
 public:
  flotilla::sdk::json apply(flotilla::sdk::Context&, const flotilla::sdk::json&) override {
    throw std::runtime_error("the wrapped addon failed on purpose");
  }
  // Fails once with a retryable error, then succeeds: the engine must retry it.
  flotilla::sdk::json destroy(flotilla::sdk::Context&, const flotilla::sdk::json&) override {
    if (destroy_calls_.fetch_add(1) == 0) throw flotilla::sdk::Retryable("try later");
    return flotilla::sdk::json::object();
  }

 private:
  std::atomic<int> destroy_calls_{0};
};
}  // namespace

FLOTILLA_PLUGIN(Thrower, "thrower", "1.0.0", "throws from apply", R"({"provides": ["test"]})")
