#include "addon_haproxy/request.hpp"

namespace flotilla::haproxy {

std::string str(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t instance_number(const json& inst) {
  if (inst.contains("instance") && inst["instance"].is_number_integer()) return inst["instance"].get<std::int64_t>();
  const std::string id = str(inst, "id");
  const auto hash = id.rfind('#');
  return hash == std::string::npos ? 0 : std::atoll(id.c_str() + hash + 1);
}

std::vector<Problem> service_problems(const json& services) {
  std::vector<Problem> out;
  if (!services.is_array()) return out;
  for (const json& svc : services) {
    const std::string name = str(svc, "name");
    const std::string shown = "service " + detail::quoted(name);
    if (auto p = service_name_problem(name)) {
      out.push_back({"services", shown + ": " + *p + "; rename it in [[services]]"});
      continue;
    }
    if (auto p = health_path_problem(str(svc, "health"))) {
      out.push_back({"services", shown + ": " + *p + " (health = " + detail::quoted(str(svc, "health")) + ")"});
    }
    if (!svc.contains("instances") || !svc["instances"].is_array()) continue;
    for (const json& inst : svc["instances"]) {
      const std::string address = str(inst, "address");
      if (auto p = address_problem(address)) {
        out.push_back({"services", shown + ", instance " + detail::quoted(str(inst, "id")) + ": " + *p});
      }
      if (auto p = port_problem(inst.value("port", std::int64_t{0}))) {
        out.push_back({"services", shown + ", instance " + detail::quoted(str(inst, "id")) + ": " + *p});
      }
    }
  }
  return out;
}

std::vector<Route> routes_of(const json& services) {
  std::vector<Route> routes;
  if (!services.is_array()) return routes;
  for (const json& svc : services) {
    if (svc.value("port", std::int64_t{0}) <= 0) continue;
    Route r;
    r.service = str(svc, "name");
    r.backend = backend_name(r.service);
    r.prefix = "/" + r.service;
    r.health = str(svc, "health");
    std::set<std::string> seen;
    for (const json& inst : svc.value("instances", json::array())) {
      const std::string state = str(inst, "state");
      if (!state.empty() && state != "running" && state != "healthy") continue;
      Server s;
      s.address = str(inst, "address");
      s.port = static_cast<int>(inst.value("port", std::int64_t{0}));
      s.name = server_name(instance_number(inst), s.address, s.port);
      if (seen.insert(s.name).second) r.servers.push_back(std::move(s));
    }
    routes.push_back(std::move(r));
  }
  return routes;
}
}  // namespace flotilla::haproxy
