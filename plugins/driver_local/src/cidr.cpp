#include "driver_local/cidr.hpp"

#include "flotilla/support/request.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace flotilla::local {

std::string ipv4_text(std::uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::optional<Cidr> parse_cidr(const std::string& text, std::string& error) {
  const auto parsed = flotilla::support::parse_ipv4_cidr(text);
  if (!parsed) {
    error = "cidr `" + text + "` is not an IPv4 network such as " + kDefaultCidr;
    return std::nullopt;
  }
  const int prefix = parsed->prefix;
  const Cidr c{parsed->network, prefix};
  if ((c.network >> 24) != 127) {
    error = "cidr `" + text + "` is outside 127.0.0.0/8; the local driver gives nodes loopback addresses only (e.g. " +
            kDefaultCidr + ")";
    return std::nullopt;
  }
  if (prefix < kMinPrefix || prefix > kMaxPrefix) {
    error = "cidr `" + text + "` has prefix /" + std::to_string(prefix) + "; use a prefix from /" + std::to_string(kMinPrefix) +
            " to /" + std::to_string(kMaxPrefix);
    return std::nullopt;
  }
  const std::uint32_t mask = ~std::uint32_t{0} << (32 - prefix);
  if ((c.network & ~mask) != 0) {
    error = "cidr `" + text + "` has host bits set; write the network address: " + ipv4_text(c.network & mask) + "/" +
            std::to_string(prefix);
    return std::nullopt;
  }
  return c;
}

std::string larger_cidr(const Cidr& cidr, std::uint64_t nodes) {
  int prefix = cidr.prefix;
  while (prefix > kMinPrefix && ((std::uint64_t{1} << (32 - prefix)) - 2) < nodes) --prefix;
  return ipv4_text(cidr.network & (~0u << (32 - prefix))) + "/" + std::to_string(prefix);
}

}  // namespace flotilla::local
