// The collector's store: wire parsing, origin of a line, dedupe, rotation, retention, and the
// flotilla-logstore program speaking rsyslog's omprog protocol.
#include "addon_syslog/log_store.hpp"
#include "flotilla/support/encoding.hpp"
#include "rsyslog_lab.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <poll.h>

namespace sa = flotilla::syslog_addon;
using flotilla::test::TempDir;

namespace {

std::string wire(const std::string& node, const std::string& file, std::uint64_t offset, const std::string& msg_json_escaped,
                 const std::string& ts = "2026-03-04T05:06:07.123456+00:00") {
  return "{\"node\":\"" + node + "\",\"file\":\"" + file + "\",\"offset\":" + std::to_string(offset) + ",\"ts\":\"" + ts +
         "\",\"service\":\"\",\"instance\":\"\",\"stream\":\"\",\"msg\":\"" + msg_json_escaped + "\"}";
}

std::vector<nlohmann::json> stored_lines(const std::filesystem::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file, std::ios::binary);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("wire records decode to raw bytes, including invalid UTF-8 and escaped controls", "[syslog]") {
  const std::string line = wire("swarm-1", "\\/w\\/workloads\\/service-hello-v1-3\\/stderr.log", 42,
                                std::string("a\\tb\\u0001 \\\"q\\\" \\\\ \xff\xfe \\ud83d\\ude00"));
  const auto l = sa::parse_wire(line, {});
  REQUIRE(l);
  CHECK(l->node == "swarm-1");
  CHECK(l->file == "/w/workloads/service-hello-v1-3/stderr.log");
  CHECK(l->offset == 42);
  CHECK(l->msg == std::string("a\tb\x01 \"q\" \\ \xff\xfe \xf0\x9f\x98\x80"));
  CHECK(l->ts == "2026-03-04T05:06:07.123456Z");
  CHECK(l->origin.service == "hello-v1");
  CHECK(l->origin.instance == "3");
  CHECK(l->origin.stream == "stderr");
  CHECK(l->key == "swarm-1:/w/workloads/service-hello-v1-3/stderr.log:42");
}

TEST_CASE("lines without node, file or offset are not wire records", "[syslog]") {
  CHECK_FALSE(sa::parse_wire("hello", {}));
  CHECK_FALSE(sa::parse_wire("{\"node\":\"a\",\"msg\":\"x\"}", {}));
  CHECK_FALSE(sa::parse_wire("{\"node\":\"a\",\"file\":\"/f\",\"offset\":\"x1\"}", {}));
  CHECK_FALSE(sa::parse_wire("{\"node\":\"a\",\"file\":\"/f\",\"offset\":1,\"msg\":\"unterminated}", {}));
}

TEST_CASE("the origin of a line comes from its workload's directory name", "[syslog]") {
  const std::vector<std::string> addons{"prometheus-cadvisor", "prometheus", "syslog"};
  auto o = sa::derive_origin("/n/workloads/service-hello-v1-12/stdout.log", addons);
  CHECK((o.service == "hello-v1" && o.instance == "12" && o.stream == "stdout"));
  o = sa::derive_origin("/n/workloads/addon-prometheus-cadvisor-node-exporter/stderr.log", addons);
  CHECK((o.service == "addon-prometheus-cadvisor" && o.instance == "node-exporter" && o.stream == "stderr"));
  o = sa::derive_origin("/n/workloads/addon-prometheus-server/stdout.log", addons);
  CHECK((o.service == "addon-prometheus" && o.instance == "server"));
  o = sa::derive_origin("/n/workloads/something/stdout.log", addons);
  CHECK((o.service == "something" && o.instance.empty()));
  o = sa::derive_origin("/n/workloads/service-odd-name/stdout.log", addons);
  CHECK(o.service == "service-odd-name");
  o = sa::derive_origin("/var/log/app.log", addons);
  CHECK((o.service == "files" && o.instance == "app.log" && o.stream == "app"));
  CHECK(sa::safe_dir_name("Hello/V1") == "hello_v1");
  CHECK(sa::safe_dir_name("..") == "_..");
}

TEST_CASE("timestamps are normalised to UTC with microseconds", "[syslog]") {
  CHECK(sa::normalize_ts("2026-11-25T14:38:51.743351+00:00") == "2026-11-25T14:38:51.743351Z");
  CHECK(sa::normalize_ts("2026-11-25T23:30:00.5+02:00") == "2026-11-25T21:30:00.500000Z");
  CHECK(sa::normalize_ts("2026-12-31T23:30:00-01:00") == "2027-01-01T00:30:00.000000Z");
  CHECK_FALSE(sa::normalize_ts("yesterday"));
}

TEST_CASE("dedupe drops resends in any arrival order and keeps one range per steady file", "[syslog]") {
  sa::Dedupe d;
  // Lines of 9 bytes + newline: offsets 0, 10, 20, ...
  CHECK(d.accept("n:/f", 0, 9, 100) == 0u);
  CHECK(d.accept("n:/f", 10, 9, 110) == 0u);
  CHECK_FALSE(d.accept("n:/f", 10, 9, 110));  // resend
  CHECK(d.accept("n:/g", 10, 9, 110));        // another file
  CHECK(d.accept("n:/f", 40, 9, 140));        // newer lines first (a spooled queue comes later)
  CHECK(d.accept("n:/f", 30, 9, 130));
  CHECK(d.ranges("n:/f") == 2);
  CHECK(d.accept("n:/f", 20, 9, 120));        // the gap closes
  CHECK(d.ranges("n:/f") == 1);
  for (std::uint64_t o : {0, 10, 20, 30, 40}) CHECK_FALSE(d.accept("n:/f", o, 9, 100 + o));
  CHECK(d.accept("n:/f", 51, 4, 151));        // after an empty line (offset 50), still one range
  CHECK(d.ranges("n:/f") == 1);
  bool all_new = true;
  for (std::uint64_t o = 56; o < 56 + 100000 * 10; o += 10) all_new = all_new && d.accept("n:/f", o, 9, o).has_value();
  CHECK(all_new);
  CHECK(d.ranges("n:/f") == 1);
  CHECK_FALSE(d.accept("n:/f", 0, 9, 100));   // a resend long after: still known
}

TEST_CASE("dedupe starts a new generation when a file is recreated at the same path", "[syslog]") {
  sa::Dedupe d(3);
  for (std::uint64_t o = 0; o < 100; o += 10) REQUIRE(d.accept("n:/f", o, 9, 1000 + o));
  // The recreated file's first line differs from the old one's.
  CHECK(d.accept("n:/f", 0, 9, 7) == 1u);
  CHECK_FALSE(d.accept("n:/f", 0, 9, 7));
  CHECK(d.accept("n:/f", 10, 9, 8) == 1u);
  // A recent offset with other text also tells it.
  for (std::uint64_t o = 20; o < 60; o += 10) REQUIRE(d.accept("n:/f", o, 9, o));
  CHECK(d.accept("n:/f", 50, 9, 999) == 2u);
  // Replaying a store keeps only the newest generation's ranges.
  sa::Dedupe r;
  r.replay("n:/f", 0, 9, 1, 0);
  r.replay("n:/f", 10, 9, 2, 0);
  r.replay("n:/f", 0, 9, 3, 1);
  r.replay("n:/f", 10, 9, 2, 0);  // an old generation's line read later: ignored
  CHECK_FALSE(r.accept("n:/f", 0, 9, 3));
  CHECK(r.accept("n:/f", 10, 9, 4) == 1u);
}

TEST_CASE("a file that reaches max_file_size is rotated to numbered parts", "[syslog]") {
  TempDir dir;
  sa::StoreWriter w(dir.path(), 4096, 0);
  const std::string record(1000, 'x');
  for (int i = 0; i < 10; ++i) w.append("svc", "2026-01-02", record);
  w.close_all();
  const auto files = sa::list_store_files(dir / "svc");
  REQUIRE(files.size() == 3);
  CHECK(files[0].path.filename() == "2026-01-02.1.jsonl");
  CHECK(files[1].path.filename() == "2026-01-02.2.jsonl");
  CHECK(files[2].path.filename() == "2026-01-02.jsonl");
  std::uintmax_t total = 0;
  for (const auto& f : files) {
    CHECK(std::filesystem::file_size(f.path) <= 4096);
    total += std::filesystem::file_size(f.path);
  }
  CHECK(total == 10 * 1001);
}

TEST_CASE("retention deletes the files of days past it", "[syslog]") {
  TempDir dir;
  sa::StoreWriter w(dir.path(), 1 << 20, 2);
  const auto now = std::chrono::system_clock::now();
  auto day = [&](int days_ago) {
    const std::time_t t = std::chrono::system_clock::to_time_t(now - std::chrono::hours(24 * days_ago));
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return std::string(buf);
  };
  for (int d : {0, 1, 2, 3, 10}) w.append("svc", day(d), "{}");
  w.append("old", day(5), "{}");
  CHECK(w.enforce_retention(now) == 3);
  CHECK(std::filesystem::exists(dir / "svc" / (day(0) + ".jsonl")));
  CHECK(std::filesystem::exists(dir / "svc" / (day(2) + ".jsonl")));
  CHECK_FALSE(std::filesystem::exists(dir / "svc" / (day(3) + ".jsonl")));
  CHECK_FALSE(std::filesystem::exists(dir / "old"));
}

TEST_CASE("stored lines keep the exact bytes of invalid UTF-8 next to a readable text", "[syslog]") {
  TempDir dir;
  sa::LogStore store({dir.path(), 1 << 20, 0, {}});
  store.open();
  CHECK(store.ingest(wire("n1", "/w/workloads/service-a-1/stdout.log", 0, "ok \xff end")) == sa::LogStore::Outcome::stored);
  CHECK(store.ingest(wire("n1", "/w/workloads/service-a-1/stdout.log", 0, "ok \xff end")) == sa::LogStore::Outcome::duplicate);
  CHECK(store.ingest("not a record") == sa::LogStore::Outcome::unparsed);
  store.close();
  const auto lines = stored_lines(dir / "a" / "2026-03-04.jsonl");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["msg"] == "ok \xef\xbf\xbd end");
  CHECK(lines[0]["msg_b64"] == flotilla::support::base64_encode("ok \xff end"));
  CHECK(lines[0]["node"] == "n1");
  CHECK(lines[0]["instance"] == "1");
  CHECK(lines[0]["offset"] == 0);
  CHECK(lines[0]["len"] == 8);
  CHECK(lines[0]["gen"] == 0);
  CHECK(std::filesystem::exists(dir / "_unparsed"));
}

TEST_CASE("flotilla-logstore answers rsyslog's omprog protocol and keeps dedupe across restarts", "[syslog]") {
  const auto bin = flotilla::test::logstore_binary();
  INFO("build the flotilla-logstore target first: " << bin);
  REQUIRE(std::filesystem::exists(bin));
  TempDir dir;
  const auto store = dir / "store";

  // Runs the program over pipes, sends `lines` one at a time as rsyslog does, and returns the
  // answers (the first is the readiness OK).
  auto run = [&](const std::vector<std::string>& lines) {
    int in[2], out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      ::execl(bin.c_str(), bin.c_str(), "--store", store.c_str(), "--max-file-size", "1048576", "--retention-days", "0",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    std::vector<std::string> answers;
    std::string buf;
    auto read_answer = [&]() {
      for (int i = 0; i < 100; ++i) {
        if (const auto nl = buf.find('\n'); nl != std::string::npos) {
          answers.push_back(buf.substr(0, nl));
          buf.erase(0, nl + 1);
          return;
        }
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 100) == 1) {
          char chunk[256];
          const ssize_t n = ::read(out[0], chunk, sizeof chunk);
          if (n <= 0) return;
          buf.append(chunk, static_cast<std::size_t>(n));
        }
      }
    };
    read_answer();
    for (const auto& l : lines) {
      const std::string framed = l + "\n";
      REQUIRE(::write(in[1], framed.data(), framed.size()) == static_cast<ssize_t>(framed.size()));
      read_answer();
    }
    ::close(in[1]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out[0]);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return answers;
  };

  const std::string f = "/w/workloads/service-web-1/stdout.log";
  auto answers = run({wire("n1", f, 0, "zero"), wire("n1", f, 5, "five"), wire("n1", f, 5, "five")});
  CHECK(answers == std::vector<std::string>{"OK", "OK", "OK", "OK"});
  // A new process (a restarted collector) still knows what is stored.
  answers = run({wire("n1", f, 5, "five"), wire("n1", f, 10, "ten")});
  CHECK(answers == std::vector<std::string>{"OK", "OK", "OK"});
  const auto lines = stored_lines(store / "web" / "2026-03-04.jsonl");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["msg"] == "zero");
  CHECK(lines[1]["msg"] == "five");
  CHECK(lines[2]["msg"] == "ten");
}
