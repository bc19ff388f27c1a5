// Network checks: whether something listens on a TCP port, whether an address and port can
// be bound here, and a free port for tests and helpers.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace flotilla::support {

enum class Transport { tcp, udp };

/// True when a TCP connection to `address`:`port` (an IPv4 or IPv6 literal) is accepted within
/// `timeout`. False on any failure, including an address that is not a literal.
[[nodiscard]] bool tcp_port_open(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout);

/// Why `address`:`port` cannot be bound for `transport` right now (as a server would bind it,
/// with SO_REUSEADDR), or an empty error_code when it can. Port 0 asks only whether the
/// address is local. EINVAL when `address` is not an IP literal.
[[nodiscard]] std::error_code bind_error(const std::string& address, std::uint16_t port, Transport transport = Transport::tcp);

/// True when bind_error finds nothing.
[[nodiscard]] bool can_bind(const std::string& address, std::uint16_t port, Transport transport = Transport::tcp);

/// A port that was free for both TCP and UDP on `address` a moment ago; throws
/// std::runtime_error naming the address when none is found.
[[nodiscard]] std::uint16_t free_port(const std::string& address = "127.0.0.1");

/// A stream socket could not be reached, or did not answer in time.
class StreamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One request on a new stream connection: connects to `target` (a unix socket path starting
/// with '/', or "ADDRESS:PORT" with an IPv4 literal, or "[IPv6]:PORT"), sends `request`,
/// half-closes, and reads the answer to EOF (the style of HAProxy's runtime API). Every wait
/// is bounded by `timeout`. Throws StreamError naming the target and the cause.
[[nodiscard]] std::string stream_exchange(const std::string& target, std::string_view request, std::chrono::milliseconds timeout);

}  // namespace flotilla::support
