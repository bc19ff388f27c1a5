// Brings the servers of a running HAProxy to a wanted membership through the runtime API,
// without a reload and without failing a request: new servers are added in maintenance, let in
// only once HAProxy's own check has passed; removed servers are drained, then deleted.
#pragma once

#include "addon_haproxy/config.hpp"
#include "addon_haproxy/runtime_api.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::haproxy {

/// The wanted servers of each backend (backend name -> servers).
using Membership = std::map<std::string, std::vector<Server>>;

struct SyncOptions {
  std::chrono::milliseconds up_timeout{10000};     // longest wait for a new server's first passing check
  std::chrono::milliseconds drain_timeout{10000};  // longest wait for a removed server's sessions to end
  std::chrono::milliseconds delete_timeout{3000};  // longest retry of `del server` after draining
  std::chrono::milliseconds poll{25};
  std::function<void()> check_cancelled;           // throws to abort; may be empty
  std::function<void(const std::string&)> log;     // progress lines; may be empty
};

/// What a sync did, as "backend/server" names.
struct SyncReport {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<std::string> readied;       // existing servers taken out of maintenance or drain
  std::vector<std::string> not_deleted;   // drained and in maintenance, but `del server` kept refusing
  [[nodiscard]] bool changed() const { return !added.empty() || !removed.empty() || !readied.empty(); }
};

/// Admin-state bits of `show servers state` that keep a server from new traffic: forced
/// maintenance (0x01), maintenance from the config (0x04), forced drain (0x08).
inline constexpr int kStoppedByAdmin = 0x01 | 0x04 | 0x08;

namespace detail {

inline std::string full(const std::string& backend, const std::string& server) { return backend + "/" + server; }

/// "* L7OK" (a check running now) -> "L7OK".
std::string check_status(const StatRow& row);

/// L4OK, L6OK or L7OK: the last check passed.
bool check_passed(const StatRow& row);

/// Server rows of `show stat` by "backend/server".
std::map<std::string, StatRow> stat_by_server(const RuntimeApi& api);

void pause(const SyncOptions& o);

void say(const SyncOptions& o, const std::string& text);

}  // namespace detail

/// The backends the running HAProxy has (`show backend`).
std::set<std::string> live_backends(const RuntimeApi& api);

/// The servers HAProxy has now (`show servers state`), by backend.
Membership live_membership(const RuntimeApi& api);

/// Waits until every server in `names` ("backend/server") has passed a check, up to `timeout`.
/// Returns those that have not, with their last check status ("hello.v1/i3-... (L4CON)").
std::vector<std::string> wait_checked(const RuntimeApi& api, const std::vector<std::string>& names,
                                             std::chrono::milliseconds timeout, const SyncOptions& o);

/// Makes the servers of every backend in `desired` exactly the wanted ones. Backends not in
/// `desired` are left alone; every backend in it must exist (a missing one needs a reload).
/// New servers: `add server` (in maintenance), `enable health`, and `enable server` as soon as
/// HAProxy's check passes; one that does not pass within up_timeout is deleted again and the
/// sync throws RuntimeApiError (nothing is removed then, so capacity never drops). Removed
/// servers: `state drain`, wait for no sessions (or drain_timeout), `state maint`, `del server`.
SyncReport sync_servers(const RuntimeApi& api, const Membership& desired, const SyncOptions& o);

}  // namespace flotilla::haproxy
