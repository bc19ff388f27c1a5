// The log pipeline with real rsyslogd instances and no engine: shippers tail workload log files
// laid out as the process runtime writes them, a collector stores through flotilla-logstore,
// and `flotilla logs`' reader reads the store.
#include "addon_syslog/rsyslog_config.hpp"
#include "runtime_process/process_group.hpp"
#include "logs.hpp"
#include "rsyslog_lab.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"
#include "syslog_query.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <poll.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace sa = flotilla::syslog_addon;
namespace fs = std::filesystem;
using flotilla::test::ChildProcess;
using flotilla::test::TempDir;
using flotilla::test::wait_until;
using namespace std::chrono_literals;

namespace {

/// A collector and shippers for named nodes, each node a directory like a process-runtime node.
class PipelineLab {
 public:
  PipelineLab() = default;

  [[nodiscard]] fs::path workdir(const std::string& node) const { return dir_ / "nodes" / node; }
  [[nodiscard]] fs::path log(const std::string& node, const std::string& workload, const std::string& stream) const {
    return workdir(node) / "workloads" / workload / (stream + ".log");
  }
  [[nodiscard]] fs::path store() const { return dir_ / "store"; }
  [[nodiscard]] const std::string& address() const { return address_; }

  void start_collector(fs::path logstore = {}) {
    INFO("build the flotilla-logstore target first");
    REQUIRE(fs::exists(flotilla::test::logstore_binary()));
    if (logstore.empty()) logstore = flotilla::test::logstore_binary();
    sa::CollectorConfig c;
    c.address = address_;
    c.port = kPort;
    c.work_dir = dir_ / "collector-work";
    c.logstore = logstore;
    c.store_dir = store();
    c.max_file_size = 64ull << 20;
    c.retention_days = 0;
    c.addon_names = {"other", "syslog"};
    fs::create_directories(c.work_dir);
    const fs::path conf = dir_ / "collector.conf";
    std::ofstream(conf) << sa::render_collector(c);
    collector_.start(sa::rsyslogd_command(conf, dir_ / "collector.pid"), dir_ / "collector.out", dir_ / "collector.err");
    const bool up = wait_until(
        [&] { return !flotilla::test::can_bind(address_, kPort) || !collector_.running(); }, 10s);
    INFO(flotilla::test::read_text(dir_ / "collector.err"));
    REQUIRE(up);
    REQUIRE(collector_.running());
  }
  /// Stops the collector as the process runtime stops the addon's collector workload
  /// (`stop_mode = "leader"`): TERM to rsyslogd, which ends flotilla-logstore itself.
  void stop_collector() {
    const pid_t pid = collector_.pid();
    if (pid <= 0) return;
    if (const auto st = flotilla::support::read_proc_stat(pid))
      (void)flotilla::process_runtime::terminate_groups({{pid, st->start_time}}, 15.0, flotilla::process_runtime::StopMode::leader);
    collector_.reap();
  }
  void kill_collector() { collector_.kill(); }

  /// The live child of the collector's rsyslogd whose command name starts with `comm`.
  [[nodiscard]] pid_t collector_child(const std::string& comm) const {
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const pid_t pid = std::stoi(name);
      const auto stat = flotilla::test::proc::read_stat(pid);
      if (stat && stat->ppid == collector_.pid() && flotilla::test::read_text(entry.path() / "comm").rfind(comm, 0) == 0) return pid;
    }
    return -1;
  }

  /// Stops flotilla-logstore (SIGSTOP), the collector's store program, so that lines pile up in
  /// front of it; false if the collector has none running.
  bool pause_store() {
    const pid_t pid = collector_child("flotilla-logsto");
    return pid > 0 && ::kill(pid, SIGSTOP) == 0;
  }

  void start_shipper(const std::string& node) {
    sa::ShipperConfig c;
    c.node = node;
    c.node_workdir = workdir(node);
    c.work_dir = dir_ / ("shipper-work-" + node);
    c.collector_address = address_;
    c.collector_port = kPort;
    c.exclude_prefix = "addon-syslog-";
    fs::create_directories(c.work_dir);
    fs::create_directories(workdir(node) / "workloads");
    const fs::path conf = dir_ / ("shipper-" + node + ".conf");
    std::ofstream(conf) << sa::render_shipper(c);
    auto& p = shippers_[node];
    if (!p) p = std::make_unique<ChildProcess>();
    const fs::path pid_file = dir_ / ("shipper-" + node + ".pid");
    fs::remove(pid_file);
    p->start(sa::shipper_command(c.work_dir, conf, pid_file), dir_ / ("shipper-" + node + ".out"), dir_ / ("shipper-" + node + ".err"));
    // rsyslogd writes its pid file once it has read its configuration and started its inputs.
    const bool up = wait_until([&] { return fs::exists(pid_file) || !p->running(); }, 10s);
    INFO("awaited: the shipper of " << node << " writing " << pid_file << "; its stderr: "
                                    << flotilla::test::read_text(dir_ / ("shipper-" + node + ".err")));
    REQUIRE(up);
    REQUIRE(p->running());
  }
  void stop_shipper(const std::string& node) { shippers_.at(node)->stop(); }

  /// Everything `flotilla logs --output json` prints for `service` (all services if empty).
  [[nodiscard]] std::vector<nlohmann::json> read(const std::string& service = {}) const {
    flotilla::LogsOptions o;
    o.service = service;
    o.json = true;
    std::ostringstream out, err;
    if (!fs::exists(store())) return {};
    (void)flotilla::run_logs_command(o, flotilla::test::ask_syslog(dir_.path()), out, err);
    std::vector<nlohmann::json> lines;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
    return lines;
  }

  /// Waits until the store holds `n` lines (all services); returns what it holds then.
  std::vector<nlohmann::json> wait_for(std::size_t n, std::chrono::seconds timeout) const {
    std::vector<nlohmann::json> got;
    wait_until([&] {
      got = read();
      return got.size() >= n;
    }, std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    return got;
  }

  /// The diagnostics of every rsyslogd, for failure messages.
  [[nodiscard]] std::string diagnostics() const {
    std::string s = "collector: " + flotilla::test::read_text(dir_ / "collector.err");
    for (const auto& [node, _] : shippers_) s += "\nshipper " + node + ": " + flotilla::test::read_text(dir_ / ("shipper-" + node + ".err"));
    return s;
  }

 private:
  // The port the syslog addon gives its collector; free here because the subnet is this lab's.
  static constexpr int kPort = 2514;
  TempDir dir_{"flotilla-pipeline"};
  flotilla::test::resources::Subnet subnet_ = flotilla::test::resources::reserve_subnet();
  std::string address_ = subnet_.address(1);
  // Declared after dir_, so they stop before the directory goes.
  ChildProcess collector_;
  std::map<std::string, std::unique_ptr<ChildProcess>> shippers_;
};

void write_numbered(const fs::path& file, const std::string& prefix, int from, int to) {
  std::string text;
  for (int i = from; i < to; ++i) text += prefix + std::to_string(i) + "\n";
  flotilla::test::append_text(file, text);
}

std::string raw_text(const nlohmann::json& j) {
  if (j.contains("msg_b64")) {
    // Decoded by the reader's own rules: compare with what the human output would show.
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : j["msg_b64"].get<std::string>()) {
      if (c == '=') break;
      acc = (acc << 6) | static_cast<std::uint32_t>(alphabet.find(c));
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    return out;
  }
  return j["msg"].get<std::string>();
}

/// Keys of every line in the store's files, counted (the store itself, not the reader).
std::map<std::string, int> stored_keys(const fs::path& store) {
  std::map<std::string, int> keys;
  for (const auto& entry : fs::recursive_directory_iterator(store)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".jsonl") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    for (std::string l; std::getline(in, l);) ++keys[nlohmann::json::parse(l).value("key", std::string("?"))];
  }
  return keys;
}

/// "missing: 100-147, 3000" for lines prefix<N> absent from `lines`, for failure messages.
std::string missing_ranges(const std::vector<nlohmann::json>& lines, const std::string& prefix, int n) {
  std::vector<int> count(static_cast<std::size_t>(n), 0);
  for (const auto& j : lines) {
    const std::string m = j["msg"].get<std::string>();
    if (m.rfind(prefix, 0) != 0) continue;
    const int i = std::stoi(m.substr(prefix.size()));
    if (i >= 0 && i < n) ++count[static_cast<std::size_t>(i)];
  }
  std::string out = "missing:";
  for (int i = 0; i < n;) {
    if (count[static_cast<std::size_t>(i)] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < n && count[static_cast<std::size_t>(j + 1)] == 0) ++j;
    out += " " + std::to_string(i) + (j > i ? "-" + std::to_string(j) : "");
    i = j + 1;
  }
  return out;
}

/// Just enough of a RELP client (RFC-style frames: TXNR SP COMMAND SP DATALEN [SP DATA] LF) to
/// see which lines the collector acknowledges, which omrelp does not tell.
class RelpClient {
 public:
  RelpClient(const std::string& address, int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("cannot connect to the collector at " + address);
    send("open", "relp_version=0\nrelp_software=flotilla-test\ncommands=syslog");
    const auto open = read_response(5000ms);
    if (!open || open->second.rfind("200", 0) != 0) throw std::runtime_error("the collector refused the RELP session");
  }
  ~RelpClient() { ::close(fd_); }
  RelpClient(const RelpClient&) = delete;
  RelpClient& operator=(const RelpClient&) = delete;

  /// Sends a syslog frame; its transaction number.
  int send(const std::string& command, const std::string& data) {
    const int txnr = next_++;
    std::string frame = std::to_string(txnr) + " " + command + " " + std::to_string(data.size());
    if (!data.empty()) frame += " " + data;
    frame += "\n";
    for (std::size_t done = 0; done < frame.size();) {
      const ssize_t n = ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("the collector closed the RELP session");
      done += static_cast<std::size_t>(n);
    }
    return txnr;
  }

  /// The next response frame (transaction number, data), or nullopt if none came within `timeout`.
  std::optional<std::pair<int, std::string>> read_response(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      // A frame: TXNR rsp LEN DATA\n, where DATA may hold newlines: parse by length.
      std::istringstream head(buf_);
      int txnr = 0;
      std::string cmd;
      std::size_t len = 0;
      if (head >> txnr >> cmd >> len) {
        const auto data_at = static_cast<std::size_t>(head.tellg()) + (len > 0 ? 1 : 0);
        if (buf_.size() >= data_at + len + 1) {
          std::string data = buf_.substr(data_at, len);
          buf_.erase(0, data_at + len + 1);
          return std::make_pair(txnr, data);
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  int next_ = 1;
  std::string buf_;
};

/// The shipper's wire record for line `i` of one file, as its template renders it.
std::string wire_record(const std::string& file, int i, std::uint64_t& offset) {
  const std::string msg = "relp-" + std::to_string(i);
  const std::string record = R"({"node":"lab-1","file":")" + file + R"(","offset":)" + std::to_string(offset) +
                             R"(,"ts":"2026-01-01T00:00:00Z","msg":")" + msg + R"("})";
  offset += msg.size() + 1;
  return record;
}

/// The acknowledged lines (numbers of wire_record lines) that the store does not hold once it
/// has had time to hold them all: " 3 17", or "" when none is lost.
std::string lost_lines(const PipelineLab& lab, const std::set<int>& acked) {
  std::set<std::string> have;
  for (const auto& j : lab.wait_for(acked.size(), 20s)) have.insert(j["msg"].get<std::string>());
  std::string lost;
  for (const int i : acked)
    if (have.count("relp-" + std::to_string(i)) == 0) lost += " " + std::to_string(i);
  return lost;
}

}  // namespace

TEST_CASE("every line reaches the store with its node, instance and stream, in order per instance", "[syslog][rsyslog][integration]") {
  PipelineLab lab;
  // Lines written before anything runs, as when the addon is added to a running cluster.
  write_numbered(lab.log("lab-1", "service-hello-v1-1", "stdout"), "h1-out-", 0, 100);
  write_numbered(lab.log("lab-1", "service-hello-v1-1", "stderr"), "h1-err-", 0, 50);
  write_numbered(lab.log("lab-2", "service-hello-v1-2", "stdout"), "h2-out-", 0, 100);
  flotilla::test::append_text(lab.log("lab-1", "addon-syslog-shipper", "stderr"), "the addon's own output is not shipped\n");
  write_numbered(lab.log("lab-2", "addon-other-web", "stdout"), "web-", 0, 10);

  lab.start_collector();
  lab.start_shipper("lab-1");
  lab.start_shipper("lab-2");

  // Lines written while it runs, including a workload that appears afterwards.
  for (int chunk = 0; chunk < 5; ++chunk) {
    write_numbered(lab.log("lab-1", "service-hello-v1-1", "stdout"), "h1-out-", 100 + chunk * 20, 120 + chunk * 20);
    write_numbered(lab.log("lab-2", "service-hello-v1-2", "stdout"), "h2-out-", 100 + chunk * 20, 120 + chunk * 20);
    std::this_thread::sleep_for(50ms);  // the scenario: appends spread over time, not a wait for a state
  }
  write_numbered(lab.log("lab-2", "service-late-1", "stdout"), "late-", 0, 30);

  const std::size_t expected = 200 + 50 + 200 + 10 + 30;
  const auto all = lab.wait_for(expected, 30s);
  INFO(lab.diagnostics());
  REQUIRE(all.size() == expected);

  // Per source: node, service, instance, stream and the numbers in order.
  std::map<std::string, std::vector<std::string>> seen;
  for (const auto& j : all) {
    const std::string id = j["node"].get<std::string>() + " " + j["service"].get<std::string>() + "#" +
                           j["instance"].get<std::string>() + " " + j["stream"].get<std::string>();
    seen[id].push_back(j["msg"].get<std::string>());
  }
  auto numbered = [](const std::string& prefix, int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
    return v;
  };
  CHECK(seen.size() == 5);
  CHECK(seen["lab-1 hello-v1#1 stdout"] == numbered("h1-out-", 200));
  CHECK(seen["lab-1 hello-v1#1 stderr"] == numbered("h1-err-", 50));
  CHECK(seen["lab-2 hello-v1#2 stdout"] == numbered("h2-out-", 200));
  CHECK(seen["lab-2 late#1 stdout"] == numbered("late-", 30));
  CHECK(seen["lab-2 addon-other#web stdout"] == numbered("web-", 10));

  // The reader's per-service view and the store's layout.
  CHECK(lab.read("hello/v1").size() == 450);
  CHECK(fs::is_directory(lab.store() / "hello-v1"));
  CHECK_FALSE(fs::exists(lab.store() / "addon-syslog"));
  CHECK(stored_keys(lab.store()).size() == expected);
}

TEST_CASE("no line is lost or doubled while the collector is down and a shipper restarts", "[syslog][rsyslog][integration]") {
  PipelineLab lab;
  const fs::path out = lab.log("lab-1", "service-load-1", "stdout");
  fs::create_directories(out.parent_path());
  lab.start_collector();
  lab.start_shipper("lab-1");
  write_numbered(out, "load-", 0, 100);
  REQUIRE(lab.wait_for(100, 20s).size() == 100);

  lab.stop_collector();
  for (int i = 100; i < 5100; i += 500) {
    write_numbered(out, "load-", i, i + 500);
    std::this_thread::sleep_for(20ms);  // the scenario: appends spread over the outage, not a wait for a state
  }
  // Stopped during the outage, the shipper drops its memory queue; it reads its files again
  // when it starts and the collector drops what it has.
  lab.stop_shipper("lab-1");
  for (int i = 5100; i < 10100; i += 500) write_numbered(out, "load-", i, i + 500);
  lab.start_shipper("lab-1");  // returns once the shipper runs and reads its files
  CHECK(lab.read().size() == 100);  // nothing can arrive while the collector is down
  lab.start_collector();

  const auto all = lab.wait_for(10100, 120s);
  INFO(missing_ranges(all, "load-", 10100));
  INFO(lab.diagnostics());
  REQUIRE(all.size() == 10100);
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i]["msg"] != "load-" + std::to_string(i)) {
      FAIL("line " << i << " is " << all[i]["msg"]);
    }
  }
  // Exactly once in the store itself, not only after the reader's dedupe.
  const auto keys = stored_keys(lab.store());
  CHECK(keys.size() == 10100);
  int doubled = 0;
  for (const auto& [key, n] : keys) doubled += n > 1;
  CHECK(doubled == 0);
}

TEST_CASE("no line is lost or doubled when the collector restarts or is killed while lines flow", "[syslog][rsyslog][integration]") {
  PipelineLab lab;
  const fs::path out = lab.log("lab-1", "service-flow-1", "stdout");
  const fs::path err = lab.log("lab-1", "service-flow-2", "stderr");
  fs::create_directories(out.parent_path());
  lab.start_collector();
  lab.start_shipper("lab-1");
  constexpr int kLines = 20000;
  // A jthread: a failed REQUIRE below unwinds through its join, never through std::terminate
  // (which would leave the rsyslogd instances running).
  std::jthread writer([&] {
    for (int i = 0; i < kLines; i += 100) {
      write_numbered(out, "flow-", i, i + 100);
      write_numbered(err, "err-", i, i + 100);
      std::this_thread::sleep_for(5ms);  // the scenario: a steady flow, not a wait for a state
    }
  });
  // Stopped in order three times and killed once while its store stalls: a line the collector
  // acknowledged is already stored, so even SIGKILL of rsyslogd and flotilla-logstore loses
  // nothing. The first and last stops come as soon as the collector runs, while its store
  // program may still be starting; the others once it has stored lines of its own.
  for (int restart = 0; restart < 4; ++restart) {
    if (restart == 1 || restart == 2) {
      const std::size_t before = lab.read().size();
      REQUIRE(wait_until([&] { return lab.read().size() > before; }, 20s));
    }
    if (restart == 1) {
      // The store stalls first, so lines the collector has taken but not stored would be lost.
      REQUIRE(wait_until([&] { return lab.pause_store(); }, 10s));
      std::this_thread::sleep_for(300ms);  // the scenario: lines pile up in front of the stalled store
      lab.kill_collector();
    } else {
      lab.stop_collector();
    }
    lab.start_collector();
  }
  writer.join();
  const auto all = lab.wait_for(2 * kLines, 120s);
  INFO(missing_ranges(all, "flow-", kLines));
  INFO(lab.diagnostics());
  REQUIRE(all.size() == 2 * kLines);
  int flow = 0, errs = 0;
  for (const auto& j : all) {
    const std::string m = j["msg"].get<std::string>();
    if (m.rfind("flow-", 0) == 0) CHECK(m == "flow-" + std::to_string(flow++));
    else CHECK(m == "err-" + std::to_string(errs++));
  }
  CHECK(flow == kLines);
  const auto keys = stored_keys(lab.store());
  CHECK(keys.size() == 2 * kLines);
  CHECK(std::count_if(keys.begin(), keys.end(), [](const auto& kv) { return kv.second > 1; }) == 0);
}

TEST_CASE("a line the collector acknowledged is already stored, so a kill while its store stalls loses nothing", "[syslog][rsyslog][integration]") {
  PipelineLab lab;
  lab.start_collector();
  const std::string file = (lab.workdir("lab-1") / "workloads" / "service-relp-1" / "stdout.log").string();
  std::uint64_t offset = 0;
  std::set<int> acked;
  {
    RelpClient relp(lab.address(), 2514);
    std::map<int, int> line_of;  // transaction number -> line
    for (int i = 0; i < 100; ++i) {
      line_of[relp.send("syslog", wire_record(file, i, offset))] = i;
      const auto rsp = relp.read_response(10s);
      REQUIRE(rsp);
      CHECK(rsp->second.rfind("200", 0) == 0);
      acked.insert(line_of.at(rsp->first));
    }
    REQUIRE(lab.wait_for(100, 20s).size() == 100);

    // The store stalls; lines keep coming. Whatever the collector acknowledges now must survive
    // a SIGKILL of rsyslogd and flotilla-logstore together.
    REQUIRE(wait_until([&] { return lab.pause_store(); }, 10s));
    for (int i = 100; i < 400; ++i) line_of[relp.send("syslog", wire_record(file, i, offset))] = i;
    while (const auto rsp = relp.read_response(1500ms)) {
      if (rsp->second.rfind("200", 0) == 0 && line_of.count(rsp->first) != 0) acked.insert(line_of.at(rsp->first));
    }
    lab.kill_collector();
  }
  lab.start_collector();
  const std::string lost = lost_lines(lab, acked);
  INFO("acknowledged " << acked.size() << " lines; lost:" << lost);
  INFO(lab.diagnostics());
  CHECK(lost.empty());
  // Nothing can be stored while the store is stopped, so nothing is acknowledged either.
  CHECK(acked.size() == 100);
}

TEST_CASE("invalid UTF-8, control characters and a 1 MB line are stored exactly and shown escaped", "[syslog][rsyslog][integration]") {
  PipelineLab lab;
  const std::vector<std::string> weird = {
      "bad utf8 \xff\xfe\xc3 end",
      "controls a\x01" "b\x1b[31mred\x7f tab\there",
      std::string("nul \0 inside", 12),
      "   leading and trailing spaces  ",
      R"(quotes " and backslash \ and {"json":1})",
      "emoji \xf0\x9f\x98\x80 and caf\xc3\xa9",
      "one-mb " + std::string(1024 * 1024, 'x') + " end",
      "escapes-6x " + std::string(256 * 1024, '\x01') + " end",
      "last line",
  };
  std::string text;
  for (const auto& w : weird) text += w + "\n";
  flotilla::test::append_text(lab.log("lab-1", "service-weird-1", "stdout"), text);

  lab.start_collector();
  lab.start_shipper("lab-1");
  const auto all = lab.wait_for(weird.size(), 30s);
  INFO(lab.diagnostics());
  REQUIRE(all.size() == weird.size());
  for (std::size_t i = 0; i < weird.size(); ++i) {
    INFO("line " << i);
    CHECK(raw_text(all[i]) == weird[i]);
  }
  CHECK(all[0].contains("msg_b64"));
  CHECK_FALSE(all[5].contains("msg_b64"));

  flotilla::LogsOptions o;
  o.service = "weird";
  o.grep = "end";
  std::ostringstream human, err;
  REQUIRE(flotilla::run_logs_command(o, flotilla::test::ask_syslog(lab.store().parent_path()), human, err) == 0);
  const std::string shown = human.str();
  CHECK(shown.find("| bad utf8 \\xff\\xfe\\xc3 end\n") != std::string::npos);
  CHECK(shown.find("escapes-6x \\x01\\x01") != std::string::npos);
  CHECK(shown.find(std::string(1024 * 1024, 'x')) != std::string::npos);
  const auto raw_controls =
      std::count_if(shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\n'; });
  CHECK(raw_controls == 0);
}


TEST_CASE("a collector stopped while its store program starts acknowledges only what it stored", "[syslog][rsyslog][integration]") {
  // A store program that takes a second to start (a large store to index, a loaded machine).
  // A TERM reaching it in that second, before it ignores TERM, made rsyslogd drop the line it
  // was storing while it stopped, and librelp acknowledged that line anyway: lost. Stopped as
  // the runtime stops the collector, only rsyslogd gets the TERM.
  PipelineLab lab;
  const fs::path slow_store = lab.store().parent_path() / "slow-store";
  std::ofstream(slow_store) << "#!/bin/sh\nsleep 1\nexec " << flotilla::test::logstore_binary().string() << " \"$@\"\n";
  fs::permissions(slow_store, fs::perms::owner_all);
  lab.start_collector(slow_store);
  const std::string file = (lab.workdir("lab-1") / "workloads" / "service-relp-1" / "stdout.log").string();
  std::uint64_t offset = 0;
  std::set<int> acked;
  {
    RelpClient relp(lab.address(), 2514);
    std::map<int, int> line_of;
    for (int i = 0; i < 5; ++i) line_of[relp.send("syslog", wire_record(file, i, offset))] = i;
    // The first line makes rsyslogd start its store program; stop while it is starting.
    REQUIRE(wait_until([&] { return lab.collector_child("slow-store") > 0; }, 10s));
    std::jthread stopper([&] { lab.stop_collector(); });
    while (const auto rsp = relp.read_response(10s)) {
      if (rsp->second.rfind("200", 0) == 0 && line_of.count(rsp->first) != 0) acked.insert(line_of.at(rsp->first));
    }
  }
  const std::string stopping = lab.diagnostics();
  INFO(stopping);
  // The store program was left to rsyslogd: no signal ended it while rsyslogd stopped.
  CHECK(stopping.find("terminated by signal") == std::string::npos);

  lab.start_collector();
  const std::string lost = lost_lines(lab, acked);
  INFO("acknowledged " << acked.size() << " lines; lost:" << lost);
  CHECK(lost.empty());
}
