// Lines per second through the syslog addon's pipeline (imfile -> omrelp -> imrelp ->
// flotilla-logstore -> store), from one node and from three, against appending the same lines
// to a local file in the same run. Real rsyslogd instances, configs from the addon's renderers.
//
//   bench_log_pipeline [--lines N] [--logstore PATH]
//
// N lines (default 100000) are written per node as fast as possible; the clock runs from the
// first write until the store holds every line, so the figure is the pipeline's end-to-end
// throughput, not the writer's.
#include "addon_syslog/rsyslog_config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace sa = flotilla::syslog_addon;
using Clock = std::chrono::steady_clock;
constexpr int kPort = 2514;

/// A child in its own process group; the group is stopped (TERM, then KILL) on destruction.
class Proc {
 public:
  Proc(const std::vector<std::string>& argv, const fs::path& log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int in = ::open("/dev/null", O_RDONLY);
      ::dup2(in, 0);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
  }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() {
    ::kill(-pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ::kill(-pid_, SIGKILL);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }

 private:
  pid_t pid_ = -1;
};

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "flotilla-bench-logs-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

bool can_bind(const std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa_in{};
  sa_in.sin_family = AF_INET;
  sa_in.sin_port = htons(kPort);
  ::inet_pton(AF_INET, address.c_str(), &sa_in.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa_in), sizeof sa_in) == 0;
  ::close(fd);
  return ok;
}

std::string free_address() {
  std::mt19937 rng(std::random_device{}());
  for (int i = 0; i < 100; ++i) {
    const std::string a = "127.81.19" + std::to_string(rng() % 10) + "." + std::to_string(2 + rng() % 250);
    if (can_bind(a)) return a;
  }
  throw std::runtime_error("no free loopback address");
}

/// The same lines the pipeline runs carry: numbered, about 100 bytes.
std::string line(int node, int i) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "node-%d line %08d GET /hello/v1/items?id=%d 200 OK 1.234ms user-agent=bench-client/1.0\n",
                node, i, i);
  return buf;
}

/// Appends `n` lines with one write(2) per 64 KiB, as a busy service's stdout would.
void write_lines(const fs::path& file, int node, int n) {
  fs::create_directories(file.parent_path());
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + file.string());
  std::string buf;
  for (int i = 0; i < n; ++i) {
    buf += line(node, i);
    if (buf.size() >= 65536 || i + 1 == n) {
      if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) throw std::runtime_error("short write");
      buf.clear();
    }
  }
  ::close(fd);
}

/// Counts the lines in the store, reading only what was appended since the last call.
class StoreCounter {
 public:
  explicit StoreCounter(fs::path store) : store_(std::move(store)) {}
  std::uint64_t count() {
    std::error_code ec;
    if (!fs::exists(store_, ec)) return 0;
    for (const auto& e : fs::recursive_directory_iterator(store_, ec)) {
      if (!e.is_regular_file() || e.path().extension() != ".jsonl") continue;
      struct stat st {};
      if (::stat(e.path().c_str(), &st) != 0) continue;
      auto& [done, lines] = files_[st.st_ino];
      if (static_cast<std::uint64_t>(st.st_size) <= done) continue;
      std::ifstream in(e.path(), std::ios::binary);
      in.seekg(static_cast<std::streamoff>(done));
      char buf[1 << 16];
      while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        for (std::streamsize k = 0; k < in.gcount(); ++k) lines += buf[k] == '\n';
        done += static_cast<std::uint64_t>(in.gcount());
      }
    }
    std::uint64_t total = 0;
    for (const auto& [_, f] : files_) total += f.second;
    return total;
  }

 private:
  fs::path store_;
  std::map<ino_t, std::pair<std::uint64_t, std::uint64_t>> files_;
};

/// One pipeline run: a collector, `nodes` shippers, `lines` lines per node. Returns lines/s.
double pipeline_run(const fs::path& logstore, int nodes, int lines) {
  TempDir dir;
  const std::string address = free_address();
  sa::CollectorConfig c;
  c.address = address;
  c.port = kPort;
  c.work_dir = dir.path() / "collector-work";
  c.logstore = logstore;
  c.store_dir = dir.path() / "store";
  c.max_file_size = 1ull << 30;
  c.retention_days = 0;
  fs::create_directories(c.work_dir);
  std::ofstream(dir.path() / "collector.conf") << sa::render_collector(c);
  std::vector<std::unique_ptr<Proc>> procs;
  procs.push_back(std::make_unique<Proc>(sa::rsyslogd_command(dir.path() / "collector.conf", dir.path() / "collector.pid"),
                                         dir.path() / "collector.log"));
  for (int i = 0; i < 100 && can_bind(address); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (can_bind(address)) throw std::runtime_error("the collector did not start; see its log");
  for (int n = 1; n <= nodes; ++n) {
    sa::ShipperConfig s;
    s.node = "node-" + std::to_string(n);
    s.node_workdir = dir.path() / "nodes" / s.node;
    s.work_dir = dir.path() / ("shipper-work-" + std::to_string(n));
    s.collector_address = address;
    s.collector_port = kPort;
    fs::create_directories(s.work_dir);
    fs::create_directories(s.node_workdir / "workloads");
    const fs::path conf = dir.path() / ("shipper-" + std::to_string(n) + ".conf");
    std::ofstream(conf) << sa::render_shipper(s);
    procs.push_back(std::make_unique<Proc>(sa::shipper_command(s.work_dir, conf, dir.path() / ("shipper-" + std::to_string(n) + ".pid")),
                                           dir.path() / ("shipper-" + std::to_string(n) + ".log")));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // inotify watches in place

  const auto t0 = Clock::now();
  std::vector<std::thread> writers;
  for (int n = 1; n <= nodes; ++n)
    writers.emplace_back([&, n] {
      write_lines(dir.path() / "nodes" / ("node-" + std::to_string(n)) / "workloads" / "service-bench-1" / "stdout.log", n, lines);
    });
  for (auto& w : writers) w.join();
  StoreCounter counter(c.store_dir);
  const std::uint64_t want = static_cast<std::uint64_t>(nodes) * static_cast<std::uint64_t>(lines);
  const auto deadline = t0 + std::chrono::seconds(180);
  std::uint64_t have = 0;
  while ((have = counter.count()) < want && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (have < want)
    throw std::runtime_error("only " + std::to_string(have) + " of " + std::to_string(want) + " lines stored within 180 s");
  return static_cast<double>(want) / secs;
}

/// The baseline: the same lines appended to a local file by the same writer, into the page
/// cache as the store is written (no fsync on either side). A run takes milliseconds, so this is
/// the median of five.
double local_file_run(int lines) {
  std::vector<double> rates;
  for (int run = 0; run < 5; ++run) {
    TempDir dir;
    const auto t0 = Clock::now();
    write_lines(dir.path() / "local.log", 1, lines);
    rates.push_back(lines / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int lines = 100000;
  fs::path logstore = fs::path(argv[0]).parent_path() / "flotilla-logstore";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--lines" && i + 1 < argc) lines = std::atoi(argv[++i]);
    else if (a == "--logstore" && i + 1 < argc) logstore = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--lines N] [--logstore PATH]\n", argv[0]);
      return 2;
    }
  }
  // rsyslog runs its output program from another directory: the path must be absolute.
  logstore = fs::absolute(logstore);
  if (lines <= 0 || !fs::exists(logstore)) {
    std::fprintf(stderr, "need --lines > 0 and flotilla-logstore at %s (build target flotilla-logstore)\n", logstore.c_str());
    return 2;
  }
  try {
    const double local = local_file_run(lines);
    std::printf("local file      : %10.0f lines/s (%d lines)\n", local, lines);
    const double one = pipeline_run(logstore, 1, lines);
    std::printf("pipeline 1 node : %10.0f lines/s (%d lines)   ratio to local file %.4f\n", one, lines, one / local);
    const double three = pipeline_run(logstore, 3, lines);
    std::printf("pipeline 3 nodes: %10.0f lines/s (%d lines)   ratio to local file %.4f, to 1 node %.2f\n", three, 3 * lines,
                three / local, three / one);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_log_pipeline: %s\n", e.what());
    return 1;
  }
  return 0;
}
