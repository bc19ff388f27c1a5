// The syslog addon's config renderers, checked as text and by rsyslogd's own config check.
#include "addon_syslog/rsyslog_config.hpp"
#include "rsyslog_lab.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

namespace sa = flotilla::syslog_addon;
using flotilla::test::TempDir;

namespace {

sa::ShipperConfig sample_shipper(const std::filesystem::path& root) {
  sa::ShipperConfig c;
  c.node = "swarm-2";
  c.node_workdir = root / "nodes" / "swarm-2";
  c.work_dir = root / "shipper-work";
  c.collector_address = "127.81.201.1";
  c.collector_port = 2599;
  c.exclude_prefix = "addon-syslog-";
  return c;
}

sa::CollectorConfig sample_collector(const std::filesystem::path& root) {
  sa::CollectorConfig c;
  c.address = "127.81.201.1";
  c.port = 2599;
  c.work_dir = root / "collector-work";
  c.logstore = "/opt/flotilla/bin/flotilla-logstore";
  c.store_dir = root / "store";
  c.max_file_size = 1 << 20;
  c.retention_days = 3;
  c.addon_names = {"prometheus-cadvisor", "syslog"};
  return c;
}

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

/// Runs `rsyslogd -N1 -f conf` and returns its exit status and output.
std::pair<int, std::string> rsyslog_check(const std::filesystem::path& conf, const std::filesystem::path& out) {
  const std::string cmd = std::string(sa::kRsyslogd) + " -N1 -f '" + conf.string() + "' > '" + out.string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  return {rc, flotilla::test::read_text(out)};
}

}  // namespace

TEST_CASE("rs_quote escapes backslashes and quotes for RainerScript", "[syslog]") {
  CHECK(sa::rs_quote("plain") == "\"plain\"");
  CHECK(sa::rs_quote(R"(a"b\c)") == R"("a\"b\\c")");
}

TEST_CASE("parse_size reads bytes and K/M/G suffixes", "[syslog]") {
  CHECK(sa::parse_size("4096") == 4096u);
  CHECK(sa::parse_size("64K") == 65536u);
  CHECK(sa::parse_size("100M") == 100ull << 20);
  CHECK(sa::parse_size("1g") == 1ull << 30);
  CHECK(sa::parse_size("2MB") == 2ull << 20);
  CHECK_FALSE(sa::parse_size(""));
  CHECK_FALSE(sa::parse_size("M"));
  CHECK_FALSE(sa::parse_size("10X"));
  CHECK_FALSE(sa::parse_size("-5"));
  CHECK_FALSE(sa::parse_size("99999999999999999999G"));
}

TEST_CASE("the shipper tails every workload's streams by wildcard and forwards over RELP with a disk queue", "[syslog]") {
  TempDir dir;
  const auto c = sample_shipper(dir.path());
  const std::string conf = sa::render_shipper(c);
  const std::string workloads = (c.node_workdir / "workloads").string();
  CHECK(contains(conf, "file=\"" + workloads + "/*/stdout.log\""));
  CHECK(contains(conf, "file=\"" + workloads + "/*/stderr.log\""));
  CHECK(contains(conf, "addMetadata=\"on\""));
  CHECK(contains(conf, "module(load=\"imfile\" mode=\"inotify\")"));
  CHECK(contains(conf, "target=\"127.81.201.1\" port=\"2599\""));
  // Memory only, no action queue of its own: the log files are the buffer.
  CHECK(contains(conf, "main_queue(queue.type=\"LinkedList\" queue.workerThreads=\"1\" queue.size=\"20000\")"));
  CHECK_FALSE(contains(conf, "queue.filename"));
  CHECK_FALSE(contains(conf, "saveOnShutdown"));
  CHECK(contains(conf, "action.resumeRetryCount=\"-1\""));
  CHECK(contains(conf, "maxMessageSize=\"2m\""));
  CHECK(contains(conf, "workDirectory=\"" + c.work_dir.string() + "\""));
  CHECK(contains(conf, "{\\\"node\\\":\\\"swarm-2\\\",\\\"file\\\":\\\""));
  CHECK(contains(conf, "if $!metadata!filename startswith \"" + workloads + "/addon-syslog-\" then stop"));
  CHECK_FALSE(contains(conf, "imuxsock"));
  CHECK_FALSE(contains(conf, "flotilla_extra_"));
}

TEST_CASE("extra files from other addons get their own inputs with fixed metadata", "[syslog]") {
  TempDir dir;
  auto c = sample_shipper(dir.path());
  c.extra_files.push_back({"/var/tmp/haproxy \"x\".log", "addon-haproxy", "swarm-2", "access"});
  const std::string conf = sa::render_shipper(c);
  CHECK(contains(conf, "ruleset(name=\"flotilla_extra_0\")"));
  CHECK(contains(conf, "set $!flt_service = \"addon-haproxy\";"));
  CHECK(contains(conf, "set $!flt_stream = \"access\";"));
  CHECK(contains(conf, R"(file="/var/tmp/haproxy \"x\".log")"));
  CHECK(contains(conf, "call flotilla_ship"));
}

TEST_CASE("the collector receives RELP on its address and stores through flotilla-logstore with confirmations", "[syslog]") {
  TempDir dir;
  const auto c = sample_collector(dir.path());
  const std::string conf = sa::render_collector(c);
  CHECK(contains(conf, "input(type=\"imrelp\" name=\"from_shippers\" address=\"127.81.201.1\" port=\"2599\""));
  CHECK(contains(conf, "binary=\"/opt/flotilla/bin/flotilla-logstore --store " + (dir.path() / "store").string() +
                           " --max-file-size 1048576 --retention-days 3 --addons prometheus-cadvisor,syslog\""));
  CHECK(contains(conf, "confirmMessages=\"on\""));
  // Acknowledged means stored: no queue between imrelp and the store.
  CHECK(contains(conf, "main_queue(queue.type=\"Direct\")"));
  CHECK_FALSE(contains(conf, "LinkedList"));
  CHECK(contains(conf, "maxMessageSize=\"16m\""));
  CHECK(contains(conf, "template(name=\"flotilla_store\" type=\"string\" string=\"%rawmsg%\\n\")"));
}

TEST_CASE("a collector path with whitespace is refused with a reason", "[syslog]") {
  TempDir dir;
  auto c = sample_collector(dir.path());
  c.store_dir = dir.path() / "my store";
  const auto problem = sa::collector_config_problem(c);
  REQUIRE(problem);
  CHECK(contains(*problem, "my store"));
  CHECK_THROWS_AS(sa::render_collector(c), std::invalid_argument);
}

TEST_CASE("rsyslogd accepts both rendered configs", "[syslog]") {
  TempDir dir;
  auto s = sample_shipper(dir.path());
  s.extra_files.push_back({(dir.path() / "extra.log").string(), "files", "x", "file"});
  auto c = sample_collector(dir.path());
  c.logstore = "/bin/cat";
  std::filesystem::create_directories(s.work_dir);
  std::filesystem::create_directories(c.work_dir);
  flotilla::test::append_text(dir / "shipper.conf", sa::render_shipper(s));
  flotilla::test::append_text(dir / "collector.conf", sa::render_collector(c));
  const auto [src, sout] = rsyslog_check(dir / "shipper.conf", dir / "shipper.out");
  INFO(sout);
  CHECK(src == 0);
  CHECK_FALSE(contains(sout, "error"));
  const auto [crc, cout] = rsyslog_check(dir / "collector.conf", dir / "collector.out");
  INFO(cout);
  CHECK(crc == 0);
  CHECK_FALSE(contains(cout, "error"));
}

TEST_CASE("rsyslogd runs in the foreground with its own config and pid file", "[syslog]") {
  const auto cmd = sa::rsyslogd_command("/w/files/syslog/shipper.conf", "/w/files/syslog/shipper.pid");
  CHECK(cmd == std::vector<std::string>{"/usr/sbin/rsyslogd", "-n", "-f", "/w/files/syslog/shipper.conf", "-i", "/w/files/syslog/shipper.pid"});
}

TEST_CASE("the shipper forgets imfile's offsets before it starts, so it reads its files again", "[syslog]") {
  const auto cmd = sa::shipper_command("/w/files/syslog/shipper-work", "/w/files/syslog/shipper.conf", "/w/shipper.pid");
  REQUIRE(cmd.size() == 6);
  CHECK(cmd[0] == "/bin/sh");
  CHECK(cmd[2] == "rm -f \"$0\"/imfile-state:* && exec /usr/sbin/rsyslogd -n -f \"$1\" -i \"$2\"");
  CHECK(cmd[3] == "/w/files/syslog/shipper-work");
  CHECK(cmd[4] == "/w/files/syslog/shipper.conf");
}
