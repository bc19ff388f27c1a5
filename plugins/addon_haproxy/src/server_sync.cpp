#include "addon_haproxy/server_sync.hpp"
#include "flotilla/support/wait.hpp"

namespace flotilla::haproxy {
namespace detail {

std::string check_status(const StatRow& row) {
  std::string s = row.get("check_status");
  if (s.starts_with("* ")) s.erase(0, 2);
  return s;
}

bool check_passed(const StatRow& row) {
  const std::string s = check_status(row);
  return s.size() == 4 && s[0] == 'L' && s.ends_with("OK");
}

std::map<std::string, StatRow> stat_by_server(const RuntimeApi& api) {
  std::map<std::string, StatRow> out;
  for (auto& row : api.show_stat()) {
    const std::string sv = row.get("svname");
    if (sv != "BACKEND" && sv != "FRONTEND") out.emplace(full(row.get("pxname"), sv), std::move(row));
  }
  return out;
}

void pause(const SyncOptions& o) {
  if (o.check_cancelled) o.check_cancelled();
  (void)support::sleep_for(o.poll);
}

void say(const SyncOptions& o, const std::string& text) {
  if (o.log) o.log(text);
}
}  // namespace detail

std::set<std::string> live_backends(const RuntimeApi& api) {
  std::set<std::string> out;
  std::istringstream in(api.send("show backend"));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.front() != '#') out.insert(line);
  }
  return out;
}

Membership live_membership(const RuntimeApi& api) {
  Membership out;
  for (const ServerState& s : api.show_servers_state()) out[s.backend].push_back(Server{s.name, s.address, s.port});
  return out;
}

std::vector<std::string> wait_checked(const RuntimeApi& api, const std::vector<std::string>& names,
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

namespace {

struct Pending {
  std::string backend, server;
  [[nodiscard]] std::string id() const { return detail::full(backend, server); }
};

/// Adds the desired servers HAProxy lacks (in maintenance until their check passes), readies
/// those left in maintenance, and returns which were added and which live ones must go.
std::pair<std::vector<Pending>, std::vector<Pending>> add_missing(const RuntimeApi& api, const Membership& desired,
                                                                  const SyncOptions& o, SyncReport& report) {
  std::map<std::string, ServerState> live;
  for (ServerState& s : api.show_servers_state()) live.emplace(detail::full(s.backend, s.name), std::move(s));
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
  return {std::move(to_add), std::move(to_remove)};
}

/// Lets each new server in as soon as its own check passes; past the deadline, deletes the ones
/// still failing and throws naming them.
void enable_when_checked(const RuntimeApi& api, std::vector<Pending> to_add, const SyncOptions& o, SyncReport& report) {
  const auto up_deadline = std::chrono::steady_clock::now() + o.up_timeout;
  while (!to_add.empty()) {
    const auto stats = detail::stat_by_server(api);
    std::vector<Pending> still;
    for (const auto& p : to_add) {
      const auto it = stats.find(p.id());
      if (it != stats.end() && detail::check_passed(it->second)) {
        api.run("enable server " + p.id());
        report.added.push_back(p.id());
        detail::say(o, "enabled " + p.id() + " (check " + detail::check_status(it->second) + ")");
      } else {
        still.push_back(p);
      }
    }
    to_add = std::move(still);
    if (to_add.empty()) break;
    if (std::chrono::steady_clock::now() >= up_deadline) {
      std::string names;
      for (const auto& p : to_add) {
        const auto it = stats.find(p.id());
        names += (names.empty() ? "" : ", ") + p.id() + " (" + (it == stats.end() ? "missing" : detail::check_status(it->second)) + ")";
        try {
          api.run("del server " + p.id(), "Server deleted.");
        } catch (const RuntimeApiError&) {
          // Still in maintenance, so it takes no traffic; the next sync deletes or enables it.
        }
      }
      throw RuntimeApiError("HAProxy's health check did not pass within " + std::to_string(o.up_timeout.count()) +
                            " ms for " + names + "; check the instances' health path and logs");
    }
    detail::pause(o);
  }
}

/// Drains the servers that must go until their sessions end (or the drain timeout), then puts
/// them in maintenance and deletes them; one that cannot be deleted yet is reported.
void drain_and_delete(const RuntimeApi& api, const std::vector<Pending>& to_remove, const SyncOptions& o, SyncReport& report) {
  for (const auto& p : to_remove) api.run("set server " + p.id() + " state drain");
  const auto drain_deadline = std::chrono::steady_clock::now() + o.drain_timeout;
  for (;;) {
    const auto stats = detail::stat_by_server(api);
    bool busy = false;
    for (const auto& p : to_remove) {
      const auto it = stats.find(p.id());
      if (it != stats.end() && std::atoi(it->second.get("scur").c_str()) > 0) busy = true;
    }
    if (!busy) break;
    if (std::chrono::steady_clock::now() >= drain_deadline) {
      detail::say(o, "drain timeout reached; removing servers with sessions still open");
      break;
    }
    detail::pause(o);
  }
  for (const auto& p : to_remove) api.run("set server " + p.id() + " state maint");
  const auto delete_deadline = std::chrono::steady_clock::now() + o.delete_timeout;
  for (const auto& p : to_remove) {
    for (;;) {
      try {
        api.run("del server " + p.id(), "Server deleted.");
        report.removed.push_back(p.id());
        detail::say(o, "removed " + p.id());
        break;
      } catch (const RuntimeApiError& e) {
        // Usually connections still attached; in maintenance it takes no new traffic meanwhile.
        if (std::chrono::steady_clock::now() >= delete_deadline) {
          report.not_deleted.push_back(p.id());
          detail::say(o, std::string("could not delete ") + p.id() + " yet (left in maintenance): " + e.what());
          break;
        }
        detail::pause(o);
      }
    }
  }
}

}  // namespace

SyncReport sync_servers(const RuntimeApi& api, const Membership& desired, const SyncOptions& o) {
  SyncReport report;
  auto [to_add, to_remove] = add_missing(api, desired, o, report);
  enable_when_checked(api, std::move(to_add), o, report);
  if (!to_remove.empty()) drain_and_delete(api, to_remove, o, report);
  return report;
}
}  // namespace flotilla::haproxy
