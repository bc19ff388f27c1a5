// Addon syslog: log aggregation from Debian's rsyslog.
//
// A collector rsyslog on the infra node receives RELP and hands every line to flotilla-logstore,
// which keeps <addon.dir>/store/<service>/<YYYY-MM-DD>.jsonl. A shipper rsyslog on every node
// tails the workloads' stdout.log/stderr.log with imfile wildcards (new workloads need no
// restart) and forwards over RELP; while the collector is down it stops reading, so lines
// written meanwhile wait in their files and arrive when it is back. RELP may deliver a line twice; the store drops
// resends by the line's key (node, file, offset). Docker-runtime nodes run nothing: their
// containers' logs are read through the Engine API into a store beside it (docker_logs.hpp).
// See docs/addons/syslog.md.
#pragma once

#include "addon_syslog/docker_logs.hpp"
#include "addon_syslog/syslog_options.hpp"

#include <flotilla/plugin.hpp>

namespace flotilla::syslog_addon {

/// The addon's manifest: option schema, capabilities and placement.
const char* manifest();

/// Reads the new container logs of the Docker nodes that get a shipper (an addon request's
/// nodes, with the `roles` option) into <addon dir>/docker/store.
DockerPullReport pull_docker_nodes(const sdk::json& req, const Options& o);

/// The addon's operations, as the plugin entry exports them.
class SyslogAddon : public flotilla::sdk::Addon, public flotilla::sdk::Answers {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& req) override;
  /// `flotilla logs` asks here (question `logs`, query.hpp): the store's reader lives beside its writer.
  sdk::json answer(sdk::Context& ctx, const sdk::json& req) override;
};

}  // namespace flotilla::syslog_addon
