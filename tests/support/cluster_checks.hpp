// Checks of a running cluster shaped like configs/netns.toml and configs/aws.toml (infra and
// swarm-1..3, hello/v1 with 5 replicas on the swarm nodes, the prometheus-cadvisor and syslog
// addons), shared by their end-to-end tests. Each is a Catch2 CHECK after a bounded wait.
#pragma once

#include "support/process_util.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace flotilla::test::cluster {

/// Runs a script in the test's directory with $FLOTILLA and $TOPOLOGY set (and whatever else
/// the test's cluster needs, such as its cloud's keys).
using RunScript = std::function<proc::Shell(const std::string& script)>;

/// The nodes of the cluster.
inline const std::vector<std::string> kNodes = {"infra", "swarm-1", "swarm-2", "swarm-3"};

/// Every node's address, from `flotilla ip`; REQUIREs that each answers.
std::map<std::string, std::string> addresses(const RunScript& run);

/// Prometheus on infra (:9090) scrapes node_exporter on every node of `at`, etcd, HAProxy and
/// the 5 hello/v1 instances, and every target is up, within 60 s.
void check_prometheus(const std::map<std::string, std::string>& at);

/// `flotilla logs` shows the hello/v1 instances' "listening on" lines from more than one swarm
/// node, within 30 s.
void check_logs(const RunScript& run);

}  // namespace flotilla::test::cluster
