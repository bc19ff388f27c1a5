#include "flotilla/support/net.hpp"

#include "flotilla/support/fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace flotilla::support {
namespace {

/// A socket address from an IPv4 or IPv6 literal; false when `address` is neither.
bool make_address(const std::string& address, std::uint16_t port, sockaddr_storage& out, socklen_t& len) {
  out = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

class Socket {
 public:
  Socket(int family, int type) : fd_(::socket(family, type | SOCK_CLOEXEC, 0)) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

/// The port `address`:`port` got when bound for `type` (port 0 picks one), or 0.
std::uint16_t bound_port(int type, const std::string& address, std::uint16_t port) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!make_address(address, port, sa, len)) return 0;
  Socket s(sa.ss_family, type);
  if (s.get() < 0 || ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) return 0;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&sa)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port);
}

std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

/// Waits until `fd` is ready for `events`; throws StreamError once `deadline` passes.
void wait_ready(int fd, short events, std::chrono::steady_clock::time_point deadline, const std::string& what) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw StreamError(what + ": no answer in time");
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return;
    if (n < 0 && errno != EINTR) throw StreamError(what + ": poll failed: " + errno_text());
  }
}

/// A connected, non-blocking socket to `target` (see stream_exchange).
UniqueFd connect_target(const std::string& target, std::chrono::steady_clock::time_point deadline) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!target.empty() && target.front() == '/') {
    auto* un = reinterpret_cast<sockaddr_un*>(&sa);
    if (target.size() >= sizeof(un->sun_path))
      throw StreamError("socket path " + target + " is longer than " + std::to_string(sizeof(un->sun_path) - 1) + " bytes; use a shorter directory");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, target.c_str(), target.size() + 1);
    len = sizeof(sockaddr_un);
  } else {
    const auto colon = target.rfind(':');
    std::string host = colon == std::string::npos ? std::string() : target.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned long port = 0;
    try {
      port = colon == std::string::npos ? 0 : std::stoul(target.substr(colon + 1));
    } catch (const std::exception&) {
    }
    if (port == 0 || port > 65535 || !make_address(host, static_cast<std::uint16_t>(port), sa, len))
      throw StreamError("`" + target + "` is neither a socket path nor ADDRESS:PORT with a numeric address");
  }
  UniqueFd fd(::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw StreamError("cannot create a socket for " + target + ": " + errno_text());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0) return fd;
  if (errno != EINPROGRESS && errno != EAGAIN) throw StreamError("cannot connect to " + target + ": " + errno_text());
  wait_ready(fd.get(), POLLOUT, deadline, "connecting to " + target);
  int err = 0;
  socklen_t err_len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0)
    throw StreamError("cannot connect to " + target + ": " + std::error_code(err, std::generic_category()).message());
  return fd;
}

}  // namespace

std::string stream_exchange(const std::string& target, std::string_view request, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const UniqueFd fd = connect_target(target, deadline);
  std::size_t sent = 0;
  while (sent < request.size()) {
    wait_ready(fd.get(), POLLOUT, deadline, "sending to " + target);
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw StreamError("cannot send to " + target + ": " + errno_text());
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  std::string answer;
  char buf[16384];
  for (;;) {
    wait_ready(fd.get(), POLLIN, deadline, "reading the answer of " + target);
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw StreamError("cannot read the answer of " + target + ": " + errno_text());
    if (n == 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  return answer;
}

bool tcp_port_open(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!make_address(address, port, sa, len)) return false;
  Socket s(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK);
  if (s.get() < 0) return false;
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{s.get(), POLLOUT, 0};
  int rc;
  do rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (rc < 0 && errno == EINTR);
  if (rc != 1) return false;
  int err = 0;
  socklen_t err_len = sizeof err;
  return ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0;
}

std::error_code bind_error(const std::string& address, std::uint16_t port, Transport transport) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (!make_address(address, port, sa, len)) return std::make_error_code(std::errc::invalid_argument);
  Socket s(sa.ss_family, transport == Transport::tcp ? SOCK_STREAM : SOCK_DGRAM);
  if (s.get() < 0) return {errno, std::generic_category()};
  const int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) return {errno, std::generic_category()};
  return {};
}

bool can_bind(const std::string& address, std::uint16_t port, Transport transport) {
  return !bind_error(address, port, transport);
}

std::uint16_t free_port(const std::string& address) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const std::uint16_t port = bound_port(SOCK_STREAM, address, 0);
    if (port != 0 && bound_port(SOCK_DGRAM, address, port) == port) return port;
  }
  throw std::runtime_error("no free TCP and UDP port found on " + address + "; is the address local to this machine?");
}

}  // namespace flotilla::support
