// An addon whose manifest lists "answers" but which has no flotilla.query/1 table.
#include <flotilla/plugin.hpp>

namespace {
class Mute final : public flotilla::sdk::Addon {
 public:
  flotilla::sdk::json apply(flotilla::sdk::Context&, const flotilla::sdk::json&) override { return flotilla::sdk::json::object(); }
  flotilla::sdk::json destroy(flotilla::sdk::Context&, const flotilla::sdk::json&) override { return flotilla::sdk::json::object(); }
};
}  // namespace

FLOTILLA_PLUGIN(Mute, "mute", "1.0.0", "claims answers it cannot give", R"json({"answers": ["logs"]})json")
