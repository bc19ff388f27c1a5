// flotilla-hello: the sample service Flotilla deploys in its examples and tests.
//
// An HTTP/1.1 server on one thread (Boost.Beast over Asio, keep-alive): every path answers with
// JSON naming the instance that served it, /health answers {"status":"ok"} and /metrics serves
// Prometheus text. One thread is plenty for a sample service, and keeps the counters lock-free.
#include <utility>  // Boost 1.74 asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_set>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kIdleTimeout = 60s;     // a keep-alive connection with no request is closed
constexpr auto kDrainTimeout = 5s;     // how long SIGTERM waits for requests in flight

struct Options {
  tcp::endpoint listen;
  std::string instance;
  std::string node;
  std::string service;
  std::string release;  // $RELEASE: which version of the service this is, shown in every answer
  bool log_every_request = false;
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

/// "127.0.0.1:8000" or "[::1]:8000"; nullopt if it is neither.
std::optional<tcp::endpoint> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5) return std::nullopt;
  const unsigned long port = std::stoul(port_text);
  if (port > 65535) return std::nullopt;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

std::string iso8601_utc(std::chrono::system_clock::time_point tp) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(tp);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

/// Request counts and latencies per path class. Touched only from the io thread.
class Metrics {
 public:
  enum PathClass { kApp, kHealth, kMetrics, kClasses };
  static constexpr std::array<const char*, kClasses> kClassNames = {"app", "health", "metrics"};
  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,   0.025,   0.05,   0.1,   0.5,    1.0};

  static PathClass classify(std::string_view path) {
    if (path == "/health") return kHealth;
    if (path == "/metrics") return kMetrics;
    return kApp;
  }

  void observe(PathClass c, double seconds) {
    Series& s = series_[c];
    ++s.count;
    s.sum += seconds;
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
      if (seconds <= kBuckets[i]) ++s.buckets[i];
  }

  [[nodiscard]] std::string render(const Options& o, const std::string& hostname, double start_time) const {
    std::ostringstream out;
    out.precision(9);
    out << "# HELP flotilla_hello_requests_total Requests answered, by path class.\n"
           "# TYPE flotilla_hello_requests_total counter\n";
    for (int c = 0; c < kClasses; ++c)
      out << "flotilla_hello_requests_total{path_class=\"" << kClassNames[c] << "\"} " << series_[c].count << "\n";
    out << "# HELP flotilla_hello_request_duration_seconds Time from a request read to its response written.\n"
           "# TYPE flotilla_hello_request_duration_seconds histogram\n";
    for (int c = 0; c < kClasses; ++c) {
      const Series& s = series_[c];
      const std::string cls = std::string("path_class=\"") + kClassNames[c] + "\"";
      for (std::size_t i = 0; i < kBuckets.size(); ++i)
        out << "flotilla_hello_request_duration_seconds_bucket{" << cls << ",le=\"" << kBuckets[i] << "\"} " << s.buckets[i]
            << "\n";
      out << "flotilla_hello_request_duration_seconds_bucket{" << cls << ",le=\"+Inf\"} " << s.count << "\n";
      out << "flotilla_hello_request_duration_seconds_sum{" << cls << "} " << s.sum << "\n";
      out << "flotilla_hello_request_duration_seconds_count{" << cls << "} " << s.count << "\n";
    }
    out << "# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.\n"
           "# TYPE process_start_time_seconds gauge\n"
        << std::fixed << "process_start_time_seconds " << start_time << "\n";
    out << "# HELP flotilla_hello_info Who this instance is.\n"
           "# TYPE flotilla_hello_info gauge\n"
           "flotilla_hello_info{service=\""
        << label_value(o.service) << "\",instance=\"" << label_value(o.instance) << "\",node=\"" << label_value(o.node)
        << "\",hostname=\"" << label_value(hostname) << "\"} 1\n";
    return out.str();
  }

 private:
  struct Series {
    std::uint64_t count = 0;
    double sum = 0;
    std::array<std::uint64_t, kBuckets.size()> buckets{};
  };
  std::array<Series, kClasses> series_{};
};

class Session;

class Server {
 public:
  Server(asio::io_context& io, Options options)
      : io_(io), acceptor_(io), options_(std::move(options)), drain_timer_(io), signals_(io, SIGTERM, SIGINT) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    hostname_ = host;
    start_time_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  /// Binds and starts accepting; returns the error text on failure.
  std::optional<std::string> listen() {
    boost::system::error_code ec;
    acceptor_.open(options_.listen.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(options_.listen, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec.message();
    bound_ = acceptor_.local_endpoint();
    signals_.async_wait([this](const boost::system::error_code& e, int) {
      if (!e) shutdown();
    });
    accept();
    return std::nullopt;
  }

  [[nodiscard]] const tcp::endpoint& bound() const { return bound_; }
  [[nodiscard]] const Options& options() const { return options_; }
  [[nodiscard]] const std::string& hostname() const { return hostname_; }
  [[nodiscard]] double start_time() const { return start_time_; }
  [[nodiscard]] bool stopping() const { return stopping_; }
  Metrics& metrics() { return metrics_; }

  void add(Session* s) { sessions_.insert(s); }
  void remove(Session* s) { sessions_.erase(s); }

 private:
  void accept();
  void shutdown();
  void wait_drained(std::chrono::steady_clock::time_point deadline);

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  tcp::endpoint bound_;
  Options options_;
  std::string hostname_;
  double start_time_ = 0;
  bool stopping_ = false;
  Metrics metrics_;
  std::unordered_set<Session*> sessions_;
  asio::steady_timer drain_timer_;
  asio::signal_set signals_;
};

/// One connection: read a request, answer it, repeat while the client keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server) : stream_(std::move(socket)), server_(server) { server_.add(this); }
  ~Session() { server_.remove(this); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void run() { read(); }

  /// Closes the connection if it is between requests; one in flight finishes first.
  void close_if_idle() {
    if (!busy_) {
      boost::system::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.socket().close(ec);
    }
  }

 private:
  void read() {
    request_ = {};
    busy_ = false;
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return close();  // end of stream, idle timeout, bad request or shutdown
    busy_ = true;
    started_ = std::chrono::steady_clock::now();
    respond();
  }

  void respond() {
    const std::string_view target(request_.target().data(), request_.target().size());
    const std::string path(target.substr(0, target.find('?')));
    path_class_ = Metrics::classify(path);
    const Options& o = server_.options();

    response_ = {};
    response_.version(request_.version());
    response_.result(http::status::ok);
    response_.set(http::field::server, "flotilla-hello");
    if (path_class_ == Metrics::kMetrics) {
      response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response_.body() = server_.metrics().render(o, server_.hostname(), server_.start_time());
    } else {
      response_.set(http::field::content_type, "application/json");
      json body = path_class_ == Metrics::kHealth
                      ? json{{"status", "ok"}}
                      : json{{"hostname", server_.hostname()}, {"node", o.node},         {"instance", o.instance},
                             {"service", o.service},           {"time", iso8601_utc(std::chrono::system_clock::now())},
                             {"language", "C++"},              {"path", path}};
      if (path_class_ != Metrics::kHealth && !o.release.empty()) body["release"] = o.release;
      response_.body() = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    response_.keep_alive(request_.keep_alive() && !server_.stopping());
    response_.prepare_payload();
    if (o.log_every_request) {
      std::cout << request_.method_string() << " " << path << " 200\n" << std::flush;
    }
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_write(e); });
  }

  void on_write(beast::error_code ec) {
    if (ec) return close();
    server_.metrics().observe(path_class_, std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    if (!response_.keep_alive() || server_.stopping()) return close();
    read();
  }

  void close() {
    busy_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  Server& server_;
  bool busy_ = false;
  Metrics::PathClass path_class_ = Metrics::kApp;
  std::chrono::steady_clock::time_point started_;
};

void Server::accept() {
  acceptor_.async_accept(io_, [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), *this)->run();
    } else {
      std::cerr << "accept failed: " << ec.message() << std::endl;
    }
    accept();
  });
}

void Server::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (Session* s : sessions_) s->close_if_idle();
  wait_drained(std::chrono::steady_clock::now() + kDrainTimeout);
}

void Server::wait_drained(std::chrono::steady_clock::time_point deadline) {
  if (sessions_.empty()) return;  // nothing left: run() returns
  if (std::chrono::steady_clock::now() >= deadline) {
    io_.stop();
    return;
  }
  drain_timer_.expires_after(20ms);
  drain_timer_.async_wait([this, deadline](const boost::system::error_code& e) {
    if (!e) wait_drained(deadline);
  });
}

constexpr const char* kUsage =
    "Usage: flotilla-hello [--listen ADDR:PORT] [--instance ID] [--node NAME] [--service NAME] [--log-every-request]\n"
    "\n"
    "Answers every HTTP path with JSON naming this instance (and $RELEASE, when set); GET /health answers {\"status\":\"ok\"},\n"
    "GET /metrics serves Prometheus metrics. Exits 0 on SIGTERM after finishing requests in flight.\n"
    "Port 0 picks a free port; the line \"listening on ADDR:PORT\" on stdout names it.\n"
    "\n"
    "Example: flotilla-hello --listen 127.77.0.2:8000 --service hello/v1 --instance 1\n";

}  // namespace

int main(int argc, char** argv) {
  po::options_description desc("Options");
  desc.add_options()("help,h", "show this help")(
      "listen", po::value<std::string>()->default_value("127.0.0.1:8000"), "address and port to listen on")(
      "instance", po::value<std::string>()->default_value(env_or("FLOTILLA_INSTANCE", "")),
      "instance id (default $FLOTILLA_INSTANCE)")("node", po::value<std::string>()->default_value(env_or("FLOTILLA_NODE", "")),
                                                  "node name (default $FLOTILLA_NODE)")(
      "service", po::value<std::string>()->default_value(env_or("FLOTILLA_SERVICE", "")),
      "service name (default $FLOTILLA_SERVICE)")("log-every-request", po::bool_switch(), "print one line per request");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "flotilla-hello: " << e.what() << "\n\n" << kUsage << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << desc;
    return 0;
  }

  Options options;
  const std::string listen_text = vm["listen"].as<std::string>();
  const auto endpoint = parse_listen(listen_text);
  if (!endpoint) {
    std::cerr << "flotilla-hello: --listen `" << listen_text
              << "` is not ADDR:PORT with a numeric address (e.g. 127.0.0.1:8000 or [::1]:8000)\n";
    return 2;
  }
  options.listen = *endpoint;
  options.instance = vm["instance"].as<std::string>();
  options.node = vm["node"].as<std::string>();
  options.service = vm["service"].as<std::string>();
  options.release = env_or("RELEASE", "");
  options.log_every_request = vm["log-every-request"].as<bool>();

  try {
    asio::io_context io(1);
    Server server(io, options);
    if (const auto err = server.listen()) {
      std::cerr << "flotilla-hello: cannot listen on " << listen_text << ": " << *err
                << "; pick another port or stop what uses it\n";
      return 1;
    }
    std::cout << "listening on " << endpoint_text(server.bound()) << std::endl;
    io.run();
    std::cout << "stopped" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "flotilla-hello: " << e.what() << "\n";
    return 1;
  }
}
