// Reading the addon request: the services it carries, checked and turned into routes.
#pragma once

#include "addon_haproxy/config.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

namespace flotilla::haproxy {

using json = nlohmann::json;

/// A problem found before anything runs: `key` is the option or "services".
struct Problem {
  std::string key;
  std::string message;
};

/// The string at `key`, or "" when it is missing or not a string.
std::string str(const json& obj, const char* key);

/// The instance number: the `instance` field, or the number after '#' in the id ("hello/v1#3").
std::int64_t instance_number(const json& inst);

/// Every reason the request's services cannot go into a config, each naming its service.
std::vector<Problem> service_problems(const json& services);

/// The routes for the request's services. Services without a port serve no HTTP and get none.
std::vector<Route> routes_of(const json& services);

}  // namespace flotilla::haproxy
