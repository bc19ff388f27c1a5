// The local driver's network: a cidr inside 127.0.0.0/8 from which node slot N gets the
// address network + N + 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace flotilla::local {

inline constexpr const char* kDefaultCidr = "127.77.0.0/24";
inline constexpr int kMinPrefix = 16;
inline constexpr int kMaxPrefix = 30;

struct Cidr {
  std::uint32_t network = 0;  // host byte order
  int prefix = 0;
  /// Addresses a node may get: all but the network and broadcast addresses.
  [[nodiscard]] std::uint64_t usable() const { return (std::uint64_t{1} << (32 - prefix)) - 2; }
};

/// Dotted-quad text of a host-order IPv4 address.
[[nodiscard]] std::string ipv4_text(std::uint32_t addr);

/// Parses and checks a cidr (inside 127.0.0.0/8, prefix kMinPrefix to kMaxPrefix, no host
/// bits); on failure `error` says what to write instead.
[[nodiscard]] std::optional<Cidr> parse_cidr(const std::string& text, std::string& error);

/// The smallest network around `cidr` (same start, prefix down to kMinPrefix) with room for
/// `nodes` nodes, as text, for a "use a larger network" hint.
[[nodiscard]] std::string larger_cidr(const Cidr& cidr, std::uint64_t nodes);

}  // namespace flotilla::local
