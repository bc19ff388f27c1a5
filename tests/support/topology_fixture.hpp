// A small topology for the engine's unit tests: an infra node, three swarm nodes and a
// service of five instances.
#pragma once

#include "topology.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace flotilla::test {

inline const char* kTopology = R"(
[cluster]
name = "t"
driver = "local"

[[nodes]]
name = "infra"
roles = ["infra"]

[[nodes]]
name = "swarm"
count = 3
roles = ["swarm"]

[[services]]
name = "hello/v1"
command = ["flotilla-hello", "--listen", "{address}:{port}"]
replicas = 5
port = 8000
roles = ["swarm"]
)";

/// `text` parsed as t.toml; fails the test case when it does not parse.
inline Topology topo(const std::string& text = kTopology) {
  auto t = parse_topology(text, "t.toml");
  if (!t) FAIL(t.error().message);
  return *t;
}

}  // namespace flotilla::test
