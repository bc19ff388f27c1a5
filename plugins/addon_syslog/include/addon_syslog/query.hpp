// The syslog addon's answers through flotilla.query/1 (docs/sdk-reference.md, "flotilla.query/1").
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::syslog_addon {

/// Answers `logs`: the stored lines of the addon's store (<addon.dir>/store) that pass
/// args {service, node, since_s, grep}, merged by time, emitted as parts {"lines": [...]};
/// problems the user should see as parts {"warning": TEXT}. With args.follow it keeps
/// emitting new lines every 250 ms until the engine cancels. NotFound when there is no store.
[[nodiscard]] sdk::json answer_logs(const sdk::Context& ctx, const sdk::json& request);

}  // namespace flotilla::syslog_addon
