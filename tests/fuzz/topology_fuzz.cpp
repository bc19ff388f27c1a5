// Fuzz target: a topology file's text through the loader and the engine's checks (syntax,
// known keys with did-you-mean, names, counts, placements, ports). Bad input must come back as
// an Error naming the file; anything else (a crash, a sanitizer report, an exception escaping
// the loader, a hang) is a finding.
#include "topology.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto topo = flotilla::parse_topology(text, "fuzz.toml");
  if (!topo) {
    // Every refusal names the file, so the user knows where to look.
    if (topo.error().message.find("fuzz.toml") == std::string::npos) std::abort();
    return 0;
  }
  // What the planner does next with an accepted model: placements and service names.
  for (const auto& service : topo->services) {
    (void)topo->place(service.placement);
    (void)flotilla::service_dns_label(service.name);
    if (!flotilla::check_service_name(service.name)) std::abort();  // the loader let a bad name through
  }
  for (const auto& addon : topo->addons) (void)topo->place(addon.placement);
  for (const auto& node : topo->nodes)
    if (topo->find_node(node.name) == nullptr) std::abort();
  return 0;
}
