// Brings the servers of a running HAProxy to a wanted membership through the runtime API,
// without a reload and without failing a request: new servers are added in maintenance, let in
// only once HAProxy's own check has passed; removed servers are drained, then deleted.
#pragma once

#include "config.hpp"
#include "runtime_api.hpp"

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
inline std::string check_status(const StatRow& row) {
  std::string s = row.get("check_status");
  if (s.starts_with("* ")) s.erase(0, 2);
  return s;
}

/// L4OK, L6OK or L7OK: the last check passed.
inline bool check_passed(const StatRow& row) {
  const std::string s = check_status(row);
  return s.size() == 4 && s[0] == 'L' && s.ends_with("OK");
}

/// Server rows of `show stat` by "backend/server".
inline std::map<std::string, StatRow> stat_by_server(const RuntimeApi& api) {
  std::map<std::string, StatRow> out;
  for (auto& row : api.show_stat()) {
    const std::string sv = row.get("svname");
    if (sv != "BACKEND" && sv != "FRONTEND") out.emplace(full(row.get("pxname"), sv), std::move(row));
  }
  return out;
}

inline void pause(const SyncOptions& o) {
  if (o.check_cancelled) o.check_cancelled();
  std::this_thread::sleep_for(o.poll);
}

inline void say(const SyncOptions& o, const std::string& text) {
  if (o.log) o.log(text);
}

}  // namespace detail

/// The backends the running HAProxy has (`show backend`).
inline std::set<std::string> live_backends(const RuntimeApi& api) {
  std::set<std::string> out;
  std::istringstream in(api.send("show backend"));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.front() != '#') out.insert(line);
  }
  return out;
}

/// The servers HAProxy has now (`show servers state`), by backend.
inline Membership live_membership(const RuntimeApi& api) {
  Membership out;
  for (const ServerState& s : api.show_servers_state()) out[s.backend].push_back(Server{s.name, s.address, s.port});
  return out;
}

/// Waits until every server in `names` ("backend/server") has passed a check, up to `timeout`.
/// Returns those that have not, with their last check status ("hello.v1/i3-... (L4CON)").
inline std::vector<std::string> wait_checked(const RuntimeApi& api, const std::vector<std::string>& names,
                                             std::chrono::milliseconds timeout, const SyncOptions& o) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto stats = detail::stat_by_server(api);
    std::vector<std::string> pending;
    for (const auto& n : names) {
      const auto it = stats.find(n);
      if (it == stats.end()) pending.push_back(n + " (missing)");
      else if (!detail::check_passed(it->second)) pending.push_back(n + " (" + detail::check_status(it->second) + ")");
    }
    if (pending.empty() || std::chrono::steady_clock::now() >= deadline) return pending;
    detail::pause(o);
  }
}

/// Makes the servers of every backend in `desired` exactly the wanted ones. Backends not in
/// `desired` are left alone; every backend in it must exist (a missing one needs a reload).
/// New servers: `add server` (in maintenance), `enable health`, and `enable server` as soon as
/// HAProxy's check passes; one that does not pass within up_timeout is deleted again and the
/// sync throws RuntimeApiError (nothing is removed then, so capacity never drops). Removed
/// servers: `state drain`, wait for no sessions (or drain_timeout), `state maint`, `del server`.
inline SyncReport sync_servers(const RuntimeApi& api, const Membership& desired, const SyncOptions& o) {
  SyncReport report;
  std::map<std::string, ServerState> live;
  for (ServerState& s : api.show_servers_state()) live.emplace(detail::full(s.backend, s.name), std::move(s));

  struct Pending {
    std::string backend, server;
  };
  std::vector<Pending> to_add, to_remove;
  std::set<std::string> wanted;
  for (const auto& [backend, servers] : desired) {
    for (const Server& s : servers) {
      const std::string id = detail::full(backend, s.name);
      wanted.insert(id);
      const auto it = live.find(id);
      if (it == live.end()) {
        api.run("add server " + id + " " + s.address + ":" + std::to_string(s.port) + " " + std::string(kCheckArgs),
                "New server registered.");
        api.run("enable health " + id);
        to_add.push_back({backend, s.name});
        detail::say(o, "added " + id + " (in maintenance until its check passes)");
      } else if ((it->second.admin_state & kStoppedByAdmin) != 0) {
        // Maintenance or drain left by an interrupted run or set by hand.
        api.run("set server " + id + " state ready");
        report.readied.push_back(id);
        detail::say(o, "took " + id + " out of maintenance");
      }
    }
  }
  for (const auto& [id, s] : live) {
    if (desired.contains(s.backend) && !wanted.contains(id)) to_remove.push_back({s.backend, s.name});
  }

  // Let each new server in as soon as its own check passes.
  const auto up_deadline = std::chrono::steady_clock::now() + o.up_timeout;
  while (!to_add.empty()) {
    const auto stats = detail::stat_by_server(api);
    std::vector<Pending> still;
    for (const auto& p : to_add) {
      const std::string id = detail::full(p.backend, p.server);
      const auto it = stats.find(id);
      if (it != stats.end() && detail::check_passed(it->second)) {
        api.run("enable server " + id);
        report.added.push_back(id);
        detail::say(o, "enabled " + id + " (check " + detail::check_status(it->second) + ")");
      } else {
        still.push_back(p);
      }
    }
    to_add = std::move(still);
    if (to_add.empty()) break;
    if (std::chrono::steady_clock::now() >= up_deadline) {
      std::string names;
      for (const auto& p : to_add) {
        const std::string id = detail::full(p.backend, p.server);
        const auto it = stats.find(id);
        names += (names.empty() ? "" : ", ") + id + " (" + (it == stats.end() ? "missing" : detail::check_status(it->second)) + ")";
        try {
          api.run("del server " + id, "Server deleted.");
        } catch (const RuntimeApiError&) {
          // Still in maintenance, so it takes no traffic; the next sync deletes or enables it.
        }
      }
      throw RuntimeApiError("HAProxy's health check did not pass within " + std::to_string(o.up_timeout.count()) +
                            " ms for " + names + "; check the instances' health path and logs");
    }
    detail::pause(o);
  }

  if (to_remove.empty()) return report;
  for (const auto& p : to_remove) api.run("set server " + detail::full(p.backend, p.server) + " state drain");
  const auto drain_deadline = std::chrono::steady_clock::now() + o.drain_timeout;
  for (;;) {
    const auto stats = detail::stat_by_server(api);
    bool busy = false;
    for (const auto& p : to_remove) {
      const auto it = stats.find(detail::full(p.backend, p.server));
      if (it != stats.end() && std::atoi(it->second.get("scur").c_str()) > 0) busy = true;
    }
    if (!busy) break;
    if (std::chrono::steady_clock::now() >= drain_deadline) {
      detail::say(o, "drain timeout reached; removing servers with sessions still open");
      break;
    }
    detail::pause(o);
  }
  for (const auto& p : to_remove) api.run("set server " + detail::full(p.backend, p.server) + " state maint");
  const auto delete_deadline = std::chrono::steady_clock::now() + o.delete_timeout;
  for (const auto& p : to_remove) {
    const std::string id = detail::full(p.backend, p.server);
    for (;;) {
      try {
        api.run("del server " + id, "Server deleted.");
        report.removed.push_back(id);
        detail::say(o, "removed " + id);
        break;
      } catch (const RuntimeApiError& e) {
        // Usually connections still attached; in maintenance it takes no new traffic meanwhile.
        if (std::chrono::steady_clock::now() >= delete_deadline) {
          report.not_deleted.push_back(id);
          detail::say(o, std::string("could not delete ") + id + " yet (left in maintenance): " + e.what());
          break;
        }
        detail::pause(o);
      }
    }
  }
  return report;
}

}  // namespace flotilla::haproxy
