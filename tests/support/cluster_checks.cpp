#include "support/cluster_checks.hpp"

#include <flotilla/support/http.hpp>
#include <flotilla/support/wait.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <set>
#include <sstream>
#include <tuple>

namespace flotilla::test::cluster {
namespace {

namespace s = flotilla::support;
using nlohmann::json;
using namespace std::chrono_literals;

/// Prometheus's active targets as job -> scrape URLs, and whether every one of them is up.
std::pair<std::map<std::string, std::set<std::string>>, bool> targets(const std::string& prometheus, std::string& body) {
  std::map<std::string, std::set<std::string>> jobs;
  bool all_up = true;
  body = s::HttpClient().get(prometheus + "/api/v1/targets").body;
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return {jobs, false};
  for (const auto& t : doc["data"]["activeTargets"]) {
    jobs[t["labels"].value("job", "")].insert(t.value("scrapeUrl", ""));
    all_up = all_up && t.value("health", "") == "up";
  }
  return {jobs, all_up};
}

}  // namespace

std::map<std::string, std::string> addresses(const RunScript& run) {
  std::map<std::string, std::string> out;
  for (const auto& node : kNodes) {
    const proc::Shell ip = run("$FLOTILLA ip $TOPOLOGY " + node);
    INFO(ip.out << ip.err);
    REQUIRE(ip.code == 0);
    out[node] = ip.out.substr(0, ip.out.find('\n'));
  }
  return out;
}

void check_prometheus(const std::map<std::string, std::string>& at) {
  const std::string prometheus = "http://" + at.at("infra") + ":9090";
  std::set<std::string> exporters;
  for (const auto& [node, address] : at) exporters.insert("http://" + address + ":9100/metrics");
  std::string body;
  std::map<std::string, std::set<std::string>> jobs;
  const bool seen = s::wait_until(60s, 500ms, [&] {
    try {
      bool up = false;
      std::tie(jobs, up) = targets(prometheus, body);
      return up && jobs["node"] == exporters && jobs["service:hello/v1"].size() == 5 && jobs.contains("etcd") && jobs.contains("haproxy");
    } catch (const s::HttpError&) {
      return false;
    }
  });
  INFO(body);
  CHECK(seen);
}

void check_logs(const RunScript& run) {
  proc::Shell logs;
  std::set<std::string> nodes;
  const bool arrived = s::wait_until(30s, 500ms, [&] {
    logs = run("$FLOTILLA logs $TOPOLOGY hello/v1");
    nodes.clear();
    std::istringstream in(logs.out);
    for (std::string line; std::getline(in, line);)
      for (const char* node : {"swarm-1", "swarm-2", "swarm-3"})
        if (line.find(std::string(" ") + node + " hello/v1#") != std::string::npos && line.find("listening on") != std::string::npos)
          nodes.insert(node);
    return logs.code == 0 && nodes.size() > 1;
  });
  INFO(logs.out << logs.err);
  CHECK(arrived);
}

}  // namespace flotilla::test::cluster
