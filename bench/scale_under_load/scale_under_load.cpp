// scale_under_load: steady keep-alive HTTP load through the ingress while something else
// (run.sh: `flotilla scale`) changes the number of instances. Measures what a client sees
// (requests, non-2xx answers, socket errors), how long a new instance waits for its first
// request after it reports healthy, and the ingress's throughput against one instance's.
//
// Method for "healthy -> first routed request": a poller asks every candidate instance address
// (the nodes' addresses times the service's port range) for /health every --poll-ms. The moment
// a port first answers 200 after not answering is the instance's "reported healthy" time; a GET /
// then tells which instance it is (flotilla-hello names itself in every answer). The load
// threads note the first answer through the ingress that names that instance. The difference is
// the latency; it includes the engine's own health-check interval and the addon's apply, and it
// overstates nothing by more than the poll period (the poller sees health at most that late).
//
// Phases, all in one run: --direct-s seconds straight to one instance (--direct), then
// --duration-s through the ingress; the first --steady-s of those give the ingress throughput
// compared with the direct one (run.sh scales only after that). SIGINT or SIGTERM ends the load
// early; the report covers what ran.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;

struct Endpoint {
  std::string address;
  int port = 0;
  [[nodiscard]] std::string str() const { return address + ":" + std::to_string(port); }
};

Endpoint parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("expected ADDRESS:PORT, got " + text);
  return {text.substr(0, colon), std::atoi(text.c_str() + colon + 1)};
}

/// One keep-alive HTTP/1.1 connection; reopened after the server closes it with `Connection: close`.
class Connection {
 public:
  Connection(Endpoint ep, std::chrono::milliseconds timeout) : ep_(std::move(ep)), timeout_(timeout) {}
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// GET `path`: the status and body, or nullopt on a socket error (reset, EOF, timeout).
  std::optional<std::pair<int, std::string>> get(const std::string& path, bool keep_alive = true) {
    if (fd_ < 0 && !open()) return std::nullopt;
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + ep_.address + (keep_alive ? "" : "\r\nConnection: close") + "\r\n\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return fail();
    std::string buf;
    std::size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more(buf)) return fail();
    }
    if (buf.size() < 12 || buf.compare(0, 7, "HTTP/1.") != 0) return fail();
    const int status = std::atoi(buf.c_str() + 9);
    std::string head = buf.substr(0, head_end);
    for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto cl = head.find("\r\ncontent-length:");
    if (cl == std::string::npos) return fail();  // every server measured here sends a length
    const std::size_t want = head_end + 4 + std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    while (buf.size() < want) {
      if (!read_more(buf)) return fail();
    }
    if (!keep_alive || head.find("\r\nconnection: close") != std::string::npos) close();
    return std::make_pair(status, buf.substr(head_end + 4, want - head_end - 4));
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool open() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(ep_.port));
    ::inet_pton(AF_INET, ep_.address.c_str(), &sa.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      close();
      return false;
    }
    return true;
  }
  bool read_more(std::string& buf) {
    char chunk[8192];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  std::nullopt_t fail() {
    close();
    return std::nullopt;
  }

  Endpoint ep_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
};

/// "hello/v1#3" from a flotilla-hello answer, or "".
std::string instance_of(const std::string& body) {
  static const std::string key = "\"instance\":\"";
  const auto at = body.find(key);
  if (at == std::string::npos) return {};
  const auto end = body.find('"', at + key.size());
  return end == std::string::npos ? std::string() : body.substr(at + key.size(), end - at - key.size());
}

/// One life of an instance on one address: from its first healthy answer to its going away.
struct Generation {
  std::string instance;
  std::string endpoint;
  double healthy_s = 0;                  // seconds since the run started
  std::optional<double> first_routed_s;  // first answer through the ingress naming it
  std::optional<double> gone_s;          // the port stopped answering
};

class Recorder {
 public:
  explicit Recorder(Clock::time_point t0) : t0_(t0) {}
  [[nodiscard]] double now() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

  void healthy(const std::string& instance, const std::string& endpoint, double at) {
    std::lock_guard lock(mu_);
    Generation g{instance, endpoint, at, std::nullopt, std::nullopt};
    if (auto p = early_.find(instance); p != early_.end()) {
      g.first_routed_s = p->second;  // routed before the poller saw it healthy
      early_.erase(p);
    }
    open_[instance] = generations_.size();
    generations_.push_back(g);
  }
  void gone(const std::string& instance, double at) {
    std::lock_guard lock(mu_);
    if (auto it = open_.find(instance); it != open_.end()) {
      generations_[it->second].gone_s = at;
      open_.erase(it);
    }
  }
  void routed(const std::string& instance, double at) {
    std::lock_guard lock(mu_);
    if (auto it = open_.find(instance); it != open_.end()) {
      auto& g = generations_[it->second];
      if (!g.first_routed_s) g.first_routed_s = at;
    } else if (!early_.contains(instance)) {
      early_[instance] = at;
    }
  }
  std::vector<Generation> generations() {
    std::lock_guard lock(mu_);
    return generations_;
  }

 private:
  Clock::time_point t0_;
  std::mutex mu_;
  std::vector<Generation> generations_;
  std::map<std::string, std::size_t> open_;
  std::map<std::string, double> early_;
};

/// Set by SIGINT or SIGTERM: the load ends early and the report is printed for what ran.
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

struct Counters {
  std::atomic<long> sent{0}, ok{0}, non_2xx{0}, errors{0};
};

struct Options {
  Endpoint ingress;
  Endpoint direct;
  std::string path = "/hello/v1/";
  std::vector<Endpoint> candidates;
  int threads = 4;
  int direct_s = 3;
  int steady_s = 3;
  int duration_s = 36;
  int poll_ms = 20;
  long max_requests = 20'000'000;  // a bound on the loop whatever the speed
};

void usage() {
  std::cerr << "Usage: scale_under_load --ingress ADDR:PORT --direct ADDR:PORT --candidates ADDR:PORT,... [--path P]\n"
               "                        [--threads N] [--direct-s S] [--steady-s S] [--duration-s S] [--poll-ms MS]\n"
               "Prints a JSON report on stdout. run.sh sets up a cluster, scales it during the run, and tears it down.\n";
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--ingress") o.ingress = parse_endpoint(next());
    else if (a == "--direct") o.direct = parse_endpoint(next());
    else if (a == "--path") o.path = next();
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--direct-s") o.direct_s = std::stoi(next());
    else if (a == "--steady-s") o.steady_s = std::stoi(next());
    else if (a == "--duration-s") o.duration_s = std::stoi(next());
    else if (a == "--poll-ms") o.poll_ms = std::stoi(next());
    else if (a == "--candidates") {
      std::string list = next();
      std::size_t start = 0;
      while (start < list.size()) {
        const auto comma = list.find(',', start);
        o.candidates.push_back(parse_endpoint(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      throw std::runtime_error("unknown argument " + a);
    }
  }
  if (o.ingress.port == 0 || o.direct.port == 0 || o.candidates.empty()) throw std::runtime_error("--ingress, --direct and --candidates are required");
  if (o.threads < 1 || o.threads > 64 || o.duration_s < 1 || o.duration_s > 600) throw std::runtime_error("threads 1-64, duration 1-600 s");
  return o;
}

/// Runs `threads` load loops against `target` until `until`; every answer goes to `on_answer`.
template <class OnAnswer>
void load(const Options& o, const Endpoint& target, Clock::time_point until, Counters& c, OnAnswer on_answer) {
  std::vector<std::thread> pool;
  for (int t = 0; t < o.threads; ++t) {
    pool.emplace_back([&] {
      Connection conn(target, 2000ms);
      while (!g_stop && Clock::now() < until && c.sent.load() < o.max_requests) {
        ++c.sent;
        const auto r = conn.get(o.path);
        if (!r) {
          ++c.errors;
          continue;
        }
        if (r->first >= 200 && r->first < 300) ++c.ok;
        else ++c.non_2xx;
        on_answer(r->second);
      }
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "scale_under_load: " << e.what() << "\n";
    usage();
    return 2;
  }

  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  // Phase 1: straight to one instance.
  Counters direct;
  const auto d0 = Clock::now();
  load(o, o.direct, d0 + std::chrono::seconds(o.direct_s), direct, [](const std::string&) {});
  const double direct_rps = static_cast<double>(direct.ok.load()) / std::chrono::duration<double>(Clock::now() - d0).count();

  // Phase 2: through the ingress, with the health poller running.
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::seconds(o.duration_s);
  Recorder rec(t0);
  std::atomic<bool> stop_poll{false};
  std::thread poller([&] {
    std::map<std::string, std::string> up;  // endpoint -> instance currently answering there
    while (!stop_poll) {
      for (const auto& ep : o.candidates) {
        Connection c(ep, 500ms);
        const auto h = c.get("/health", false);
        const bool healthy = h && h->first == 200;
        const auto it = up.find(ep.str());
        if (healthy && it == up.end()) {
          const double at = rec.now();
          Connection id(ep, 500ms);
          const auto who = id.get("/", false);
          const std::string instance = who ? instance_of(who->second) : std::string();
          if (!instance.empty()) {
            up[ep.str()] = instance;
            rec.healthy(instance, ep.str(), at);
          }
        } else if (!healthy && it != up.end()) {
          rec.gone(it->second, rec.now());
          up.erase(it);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
    }
  });

  Counters steady_counters;  // the first steady_s seconds, before run.sh scales
  Counters ingress;
  const auto steady_end = t0 + std::chrono::seconds(o.steady_s);
  load(o, o.ingress, end, ingress, [&](const std::string& body) {
    const double at = rec.now();
    if (Clock::now() < steady_end) ++steady_counters.ok;
    const std::string instance = instance_of(body);
    if (!instance.empty()) rec.routed(instance, at);
  });
  const double ingress_s = std::chrono::duration<double>(Clock::now() - t0).count();
  stop_poll = true;
  poller.join();

  const double steady_rps = static_cast<double>(steady_counters.ok.load()) / o.steady_s;
  // Instances that became healthy after the ingress phase began are the ones scaling added.
  json added = json::array();
  std::vector<double> latencies;
  int never_routed = 0;
  for (const auto& g : rec.generations()) {
    if (g.healthy_s < 0.5) continue;  // already there when the run started
    json row = {{"instance", g.instance}, {"endpoint", g.endpoint}, {"healthy_s", g.healthy_s}};
    if (g.first_routed_s) {
      const double ms = (*g.first_routed_s - g.healthy_s) * 1000.0;
      row["first_routed_s"] = *g.first_routed_s;
      row["latency_ms"] = ms;
      latencies.push_back(ms);
    } else {
      ++never_routed;
    }
    if (g.gone_s) row["gone_s"] = *g.gone_s;
    added.push_back(row);
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) { return latencies.empty() ? 0.0 : latencies[static_cast<std::size_t>(p * (latencies.size() - 1))]; };

  const json report = {
      {"ingress",
       {{"seconds", ingress_s},
        {"requests", ingress.sent.load()},
        {"responses_2xx", ingress.ok.load()},
        {"non_2xx", ingress.non_2xx.load()},
        {"socket_errors", ingress.errors.load()},
        {"requests_per_s", static_cast<double>(ingress.ok.load()) / ingress_s},
        {"steady_requests_per_s", steady_rps}}},
      {"direct", {{"seconds", o.direct_s}, {"requests", direct.sent.load()}, {"socket_errors", direct.errors.load()},
                  {"non_2xx", direct.non_2xx.load()}, {"requests_per_s", direct_rps}}},
      {"ingress_over_direct_throughput", direct_rps > 0 ? steady_rps / direct_rps : 0.0},
      {"healthy_to_first_routed_ms",
       {{"instances", latencies.size()}, {"never_routed", never_routed}, {"p50", pct(0.5)}, {"max", latencies.empty() ? 0.0 : latencies.back()},
        {"over_1s", std::count_if(latencies.begin(), latencies.end(), [](double ms) { return ms > 1000.0; })}}},
      {"added_instances", added},
      {"threads", o.threads},
      {"poll_ms", o.poll_ms}};
  std::cout << report.dump(2) << "\n";
  const bool goals = ingress.non_2xx == 0 && ingress.errors == 0 && never_routed == 0 &&
                     (latencies.empty() || latencies.back() <= 1000.0);
  std::cerr << "requests " << ingress.sent << ", non-2xx " << ingress.non_2xx << ", socket errors " << ingress.errors
            << "; healthy->first routed: " << latencies.size() << " instances, p50 " << pct(0.5) << " ms, max "
            << (latencies.empty() ? 0.0 : latencies.back()) << " ms; ingress/direct throughput "
            << (direct_rps > 0 ? steady_rps / direct_rps : 0.0) << (goals ? "  (goals met)" : "  (GOALS MISSED)") << "\n";
  return goals ? 0 : 1;
}
