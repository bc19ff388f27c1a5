// The process runtime's library, called directly: what it stores about a workload.
#include "runtime_process/workload_files.hpp"

#include <catch2/catch.hpp>

namespace {

namespace rp = flotilla::process_runtime;

TEST_CASE("process runtime: the spec hash stored in spec.json keeps its value", "[plugins][process]") {
  // Running workloads carry this hash in spec.json; a new value for the same spec would make
  // every one of them restart on upgrade. The expected value is FNV-1a 64 over the compact,
  // key-sorted JSON text of workload, node name and node address, computed independently.
  const rp::json workload = {{"name", "web"}, {"command", {"/bin/sleep", "60"}}, {"env", {{"PORT", "8080"}}}};
  const rp::NodeInfo node{"n1", "127.0.0.2", "/var/lib/flotilla/n1"};
  CHECK(rp::spec_hash(workload, node) == "d8bc8e6d9170c32f");
  // The node's address is part of what the workload runs with.
  CHECK(rp::spec_hash(workload, rp::NodeInfo{"n1", "127.0.0.3", "/var/lib/flotilla/n1"}) != "d8bc8e6d9170c32f");
}

}  // namespace
