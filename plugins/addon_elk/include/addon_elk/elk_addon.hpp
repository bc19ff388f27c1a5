// Addon elk: Elasticsearch, Logstash and Kibana in containers on one Docker node (infra by
// default), and logspout on every Docker node routing every container's output to Logstash, as
// the original addLogging.sh did; destroy removes all of it (rmLogging.sh).
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::addons::elk {

/// The addon's operations (docs/sdk-reference.md, flotilla.addon/1); see docs/addons/elk.md.
class Elk final : public flotilla::sdk::Addon {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& request) override;
};

}  // namespace flotilla::addons::elk
