// flotilla-hello, started for real on 127.0.0.1 and spoken to over raw sockets.
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
namespace proc = flotilla::test::proc;
using namespace std::chrono_literals;

const std::string kHello = std::string(FLOTILLA_BINARY_DIR) + "/bin/flotilla-hello";

/// A running flotilla-hello on a port the kernel picked; killed when destroyed if still running.
class Hello {
 public:
  explicit Hello(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), {kHello, "--listen", "127.0.0.1:0"});
    child_ = std::make_unique<proc::Child>(args, env, true);
    const auto line = child_->read_line(5000ms);
    std::smatch m;
    if (!line || !std::regex_match(*line, m, std::regex("listening on 127\\.0\\.0\\.1:([0-9]+)")))
      throw std::runtime_error("flotilla-hello did not report its port; first line: " + line.value_or("(none)"));
    port_ = static_cast<uint16_t>(std::stoi(m[1].str()));
  }
  [[nodiscard]] uint16_t port() const { return port_; }
  proc::Child& child() { return *child_; }

 private:
  std::unique_ptr<proc::Child> child_;
  uint16_t port_ = 0;
};

struct Response {
  int status = 0;
  std::string headers;
  std::string body;
};

/// One HTTP/1.1 connection that may carry several requests (keep-alive).
class Connection {
 public:
  explicit Connection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    timeval tv{5, 0};  // every read is bounded
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Sends GET `path` and reads the whole response; status 0 if the server closed or timed out.
  Response get(const std::string& path, bool close = false) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return {};
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return {};
    Response r;
    r.headers = buffer_.substr(0, head_end);
    r.status = std::stoi(r.headers.substr(9, 3));
    std::smatch m;
    std::size_t length = 0;
    if (std::regex_search(r.headers, m, std::regex("[Cc]ontent-[Ll]ength: *([0-9]+)"))) length = std::stoul(m[1].str());
    while (buffer_.size() < head_end + 4 + length)
      if (!fill()) return {};
    r.body = buffer_.substr(head_end + 4, length);
    buffer_.erase(0, head_end + 4 + length);
    return r;
  }

  /// True once the server has closed its end.
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  bool fill() {
    char buf[8192];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
};

/// The value of one sample line of Prometheus text, or -1 if it is absent.
double sample(const std::string& metrics, const std::string& series) {
  const auto pos = metrics.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(metrics.substr(pos + series.size() + 2));
}

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

TEST_CASE("flotilla-hello answers every path with JSON naming the instance", "[services][hello][integration]") {
  Hello hello({"--instance", "7", "--node", "swarm-1", "--service", "hello/v1"});
  Connection c(hello.port());
  const auto before = std::chrono::system_clock::now() - 2s;
  const Response r = c.get("/some/path?x=1");
  REQUIRE(r.status == 200);
  CHECK_THAT(r.headers, Catch::Contains("application/json"));
  const json body = json::parse(r.body);
  CHECK(body["hostname"] == hostname());
  CHECK(body["node"] == "swarm-1");
  CHECK(body["instance"] == "7");
  CHECK(body["service"] == "hello/v1");
  CHECK(body["language"] == "C++");
  CHECK(body["path"] == "/some/path");
  const std::string time = body["time"];
  REQUIRE(std::regex_match(time, std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z")));
  std::tm tm{};
  strptime(time.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto served = std::chrono::system_clock::from_time_t(timegm(&tm));
  CHECK(served >= std::chrono::time_point_cast<std::chrono::seconds>(before));
  CHECK(served <= std::chrono::system_clock::now() + 2s);

  // Same connection again: keep-alive works.
  const Response health = c.get("/health");
  REQUIRE(health.status == 200);
  CHECK(json::parse(health.body) == json{{"status", "ok"}});
}

TEST_CASE("flotilla-hello takes its identity from the environment by default", "[services][hello][integration]") {
  Hello hello({}, {"FLOTILLA_INSTANCE=9", "FLOTILLA_NODE=infra", "FLOTILLA_SERVICE=rest"});
  Connection c(hello.port());
  const json body = json::parse(c.get("/").body);
  CHECK(body["instance"] == "9");
  CHECK(body["node"] == "infra");
  CHECK(body["service"] == "rest");
}

TEST_CASE("flotilla-hello counts requests in /metrics", "[services][hello][integration]") {
  Hello hello({"--service", "hello/v1", "--instance", "1"});
  Connection c(hello.port());
  const std::string first = c.get("/metrics").body;
  CHECK_THAT(first, Catch::Contains("# TYPE flotilla_hello_requests_total counter"));
  CHECK_THAT(first, Catch::Contains("# TYPE flotilla_hello_request_duration_seconds histogram"));
  CHECK_THAT(first, Catch::Contains("# TYPE process_start_time_seconds gauge"));
  const double app_before = sample(first, "flotilla_hello_requests_total{path_class=\"app\"}");
  REQUIRE(app_before == 0);

  for (int i = 0; i < 5; ++i) REQUIRE(c.get("/hello/v1/" + std::to_string(i)).status == 200);
  REQUIRE(c.get("/health").status == 200);
  const std::string after = c.get("/metrics").body;
  CHECK(sample(after, "flotilla_hello_requests_total{path_class=\"app\"}") == app_before + 5);
  CHECK(sample(after, "flotilla_hello_requests_total{path_class=\"health\"}") == 1);
  CHECK(sample(after, "flotilla_hello_requests_total{path_class=\"metrics\"}") == 1);  // the first scrape
  CHECK(sample(after, "flotilla_hello_request_duration_seconds_bucket{path_class=\"app\",le=\"+Inf\"}") == 5);
  CHECK(sample(after, "flotilla_hello_request_duration_seconds_count{path_class=\"app\"}") == 5);
  CHECK(sample(after, "flotilla_hello_request_duration_seconds_sum{path_class=\"app\"}") > 0);
  const double started = sample(after, "process_start_time_seconds");
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(started > now - 60);
  CHECK(started <= now + 1);
  CHECK_THAT(after, Catch::Contains("flotilla_hello_info{service=\"hello/v1\",instance=\"1\""));
}

TEST_CASE("flotilla-hello serves 32 concurrent keep-alive connections", "[services][hello][integration]") {
  Hello hello({});
  constexpr int kConnections = 32;
  constexpr int kRequestsEach = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kConnections; ++i)
    clients.emplace_back([&] {
      try {
        Connection c(hello.port());
        for (int j = 0; j < kRequestsEach; ++j)
          if (c.get("/load").status == 200) ++ok;
      } catch (const std::exception&) {
      }
    });
  for (auto& t : clients) t.join();
  CHECK(ok == kConnections * kRequestsEach);
  Connection c(hello.port());
  CHECK(sample(c.get("/metrics").body, "flotilla_hello_requests_total{path_class=\"app\"}") == kConnections * kRequestsEach);
}

TEST_CASE("flotilla-hello exits 0 on SIGTERM without waiting for idle connections", "[services][hello][integration]") {
  Hello hello({});
  Connection idle(hello.port());
  REQUIRE(idle.get("/").status == 200);  // now idle on a kept-alive connection
  REQUIRE(::kill(hello.child().pid(), SIGTERM) == 0);
  // Waiting for the idle connection would hold it for its 5 s drain timeout; it closes the
  // connection itself and exits (the 3 s only bound the wait).
  const auto status = hello.child().wait_exit(3000ms);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(idle.closed_by_peer());
}

TEST_CASE("flotilla-hello command line", "[services][hello]") {
  SECTION("--help") {
    proc::Child help({kHello, "--help"}, {}, true);
    const auto line = help.read_line(3000ms);
    REQUIRE(line);
    CHECK_THAT(*line, Catch::StartsWith("Usage: flotilla-hello"));
    const auto status = help.wait_exit(3000ms);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
  }
  SECTION("a bad --listen is a usage error") {
    proc::Child bad({kHello, "--listen", "nowhere"}, {}, true);
    const auto status = bad.wait_exit(3000ms);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 2);
  }
  SECTION("a port in use is reported, exit 1") {
    Hello first({});
    proc::Child second({kHello, "--listen", "127.0.0.1:" + std::to_string(first.port())}, {}, true);
    const auto status = second.wait_exit(3000ms);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 1);
  }
}
