// Reading the live discovery catalog that a registrator addon keeps (etcd or Consul), so
// `flotilla ip` answers with what discovery answers, not only with what was recorded.
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// The entries of `name` (a DNS-form service name such as "hello-v1" or "rest") in the catalog
/// described by `query` (a registrator's `outputs.catalog_query`): objects with at least
/// "address" and "port". Fails when no catalog endpoint answers.
[[nodiscard]] Result<std::vector<json>> query_catalog(const json& query, const std::string& name, std::chrono::milliseconds timeout);

}  // namespace flotilla
