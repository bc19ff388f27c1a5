// The `local` driver: every node is a loopback address on this machine and a directory.
//
// Linux routes all of 127.0.0.0/8 to the loopback interface, so any address in it can be bound
// without root and without configuring an interface. A node is therefore just an address
// (network + slot + 1) and a work directory; its workloads run through the process runtime.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::local {

/// The driver's operations (docs/sdk-reference.md, flotilla.driver/1).
class LocalDriver final : public flotilla::sdk::Driver {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json create(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json inspect(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& request) override;
};

/// The manifest (JSON text, with the option schema); lives as long as the process.
[[nodiscard]] const char* manifest();

}  // namespace flotilla::local
