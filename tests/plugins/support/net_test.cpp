#include "flotilla/support/net.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

namespace s = flotilla::support;
using namespace std::chrono_literals;

namespace {
/// A TCP listener on 127.0.0.1 at `port`, closed when destroyed.
class Listener {
 public:
  explicit Listener(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 4) == 0;
  }
  ~Listener() { ::close(fd_); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};
}  // namespace

TEST_CASE("tcp_port_open sees a listener come and go", "[support][net]") {
  const std::uint16_t port = s::free_port();
  CHECK_FALSE(s::tcp_port_open("127.0.0.1", port, 200ms));
  {
    Listener l(port);
    REQUIRE(l.ok());
    CHECK(s::tcp_port_open("127.0.0.1", port, 500ms));
    CHECK_FALSE(s::can_bind("127.0.0.1", port));
    CHECK(s::bind_error("127.0.0.1", port) == std::errc::address_in_use);
    // UDP on the same port is another socket space.
    CHECK(s::can_bind("127.0.0.1", port, s::Transport::udp));
  }
  CHECK_FALSE(s::tcp_port_open("127.0.0.1", port, 200ms));
  CHECK(s::can_bind("127.0.0.1", port));
}

TEST_CASE("bind_error says why an address cannot be used", "[support][net]") {
  CHECK(s::can_bind("127.0.0.1", 0));
  CHECK(s::bind_error("not-an-address", 0) == std::errc::invalid_argument);
  CHECK_FALSE(s::tcp_port_open("not-an-address", 80, 100ms));
  // 192.0.2.1 (TEST-NET-1) is not an address of this machine; binding it is only asked, never used.
  CHECK(s::bind_error("192.0.2.1", 0) == std::errc::address_not_available);
}

TEST_CASE("free_port hands out a port bindable on TCP and UDP", "[support][net]") {
  const std::uint16_t port = s::free_port("127.0.0.1");
  CHECK(port > 0);
  CHECK(s::can_bind("127.0.0.1", port, s::Transport::tcp));
  CHECK(s::can_bind("127.0.0.1", port, s::Transport::udp));
  CHECK_THROWS_WITH(s::free_port("192.0.2.1"), Catch::Contains("192.0.2.1"));
}

namespace {

/// Accepts one connection on `fd`, reads to EOF, answers "got:" and what it read, closes.
void answer_once(int fd) {
  const int c = ::accept(fd, nullptr, nullptr);
  if (c < 0) return;
  std::string in;
  char buf[256];
  for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<size_t>(n));
  const std::string out = "got:" + in;
  (void)::send(c, out.data(), out.size(), MSG_NOSIGNAL);
  ::close(c);
}

}  // namespace

TEST_CASE("stream_exchange sends, half-closes and reads to EOF over TCP and a unix socket, and names the target when it fails",
          "[support][net]") {
  const std::uint16_t port = s::free_port("127.0.0.1");
  const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(tcp, 1) == 0);
  std::thread server([tcp] { answer_once(tcp); });
  CHECK(s::stream_exchange("127.0.0.1:" + std::to_string(port), "show info\n", std::chrono::seconds(5)) == "got:show info\n");
  server.join();
  ::close(tcp);

  char dir[] = "/tmp/flotilla-stream-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/s.sock";
  const int unix_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  std::memcpy(u.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(unix_fd, reinterpret_cast<sockaddr*>(&u), sizeof u) == 0);
  REQUIRE(::listen(unix_fd, 1) == 0);
  std::thread unix_server([unix_fd] { answer_once(unix_fd); });
  CHECK(s::stream_exchange(path, "x", std::chrono::seconds(5)) == "got:x");
  unix_server.join();
  ::close(unix_fd);
  std::filesystem::remove_all(dir);

  CHECK_THROWS_WITH(s::stream_exchange("127.0.0.1:" + std::to_string(port), "x", std::chrono::seconds(2)),
                    Catch::Contains("127.0.0.1:" + std::to_string(port)));
  CHECK_THROWS_AS(s::stream_exchange("not-an-address", "x", std::chrono::seconds(1)), s::StreamError);
  CHECK_THROWS_WITH(s::stream_exchange(path, "x", std::chrono::seconds(1)), Catch::Contains(path));
}
