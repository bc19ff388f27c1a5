// An addon using the C++ wrapper whose apply throws: the wrapper must turn it into a status.
#include <flotilla/plugin.hpp>

#include <stdexcept>

namespace {
class Thrower final : public flotilla::sdk::Addon {
 public:
  flotilla::sdk::json apply(flotilla::sdk::Context&, const flotilla::sdk::json&) override {
    throw std::runtime_error("the wrapped addon failed on purpose");
  }
  flotilla::sdk::json destroy(flotilla::sdk::Context&, const flotilla::sdk::json&) override { throw flotilla::sdk::Retryable("try later"); }
};
}  // namespace

FLOTILLA_PLUGIN(Thrower, "thrower", "1.0.0", "throws from apply", R"({"provides": ["test"]})")
