// `flotilla logs` end to end without the binary: stores written by the collector's own writer,
// read by the real syslog plugin answering the `logs` question (flotilla.query/1), printed by
// the engine's side of the command.
#include "addon_syslog/log_reader.hpp"
#include "addon_syslog/log_store.hpp"
#include "flotilla/support/encoding.hpp"
#include "rsyslog_lab.hpp"
#include "syslog_query.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

namespace sa = flotilla::syslog_addon;
using flotilla::LogsOptions;
using flotilla::test::TempDir;
using flotilla::test::ask_syslog;
using flotilla::test::syslog_plugin;
using json = nlohmann::json;

namespace {

sa::StoredLine line(const std::string& node, const std::string& service, const std::string& instance, const std::string& stream,
                    std::uint64_t offset, const std::string& ts, const std::string& msg) {
  sa::StoredLine l;
  l.node = node;
  l.origin = {service, instance, stream};
  l.file = "/n/" + node + "/workloads/service-" + service + "-" + instance + "/" + stream + ".log";
  l.offset = offset;
  l.key = node + ":" + l.file + ":" + std::to_string(offset);
  l.ts = ts;
  l.msg = msg;
  l.hash = flotilla::support::fnv1a64(msg);
  return l;
}

void store(sa::StoreWriter& w, const sa::StoredLine& l) { w.append(l.origin.service, l.ts.substr(0, 10), sa::render_stored(l)); }

std::string now_minus(std::chrono::seconds s) {
  const auto t = std::chrono::system_clock::now() - s;
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
  return buf;
}

/// An output another thread may read while `logs --follow` writes to it.
class SharedText final : public std::streambuf {
 public:
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      std::lock_guard lock(mu_);
      text_.push_back(traits_type::to_char_type(c));
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* p, std::streamsize n) override {
    std::lock_guard lock(mu_);
    text_.append(p, static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

struct Run {
  int rc;
  std::string out;
  std::string err;
};

Run run(const LogsOptions& o, const std::filesystem::path& addon_dir) {
  std::ostringstream out, err;
  const int rc = flotilla::run_logs_command(o, ask_syslog(addon_dir), out, err);
  return {rc, out.str(), err.str()};
}

}  // namespace

TEST_CASE("logs merge instances by time, keep each instance's order and drop lines stored twice", "[logs]") {
  TempDir dir;
  {
    sa::StoreWriter w(dir / "store", 600, 0);  // small files: the lines span rotated parts
    store(w, line("swarm-1", "hello-v1", "1", "stdout", 0, "2026-05-01T10:00:00.000001Z", "a0"));
    store(w, line("swarm-2", "hello-v1", "2", "stdout", 0, "2026-05-01T10:00:00.000002Z", "b0"));
    store(w, line("swarm-1", "hello-v1", "1", "stdout", 3, "2026-05-01T10:00:00.000003Z", "a1"));
    store(w, line("swarm-1", "hello-v1", "1", "stdout", 3, "2026-05-01T10:00:00.000003Z", "a1"));  // stored twice
    store(w, line("swarm-2", "hello-v1", "2", "stdout", 3, "2026-05-01T10:00:00.000004Z", "b1"));
    // A clock step back on swarm-1: its order wins over the timestamp.
    store(w, line("swarm-1", "hello-v1", "1", "stdout", 6, "2026-05-01T09:59:59.000000Z", "a2"));
    store(w, line("swarm-1", "hello-v1", "1", "stderr", 0, "2026-05-01T10:00:00.000005Z", "a-err"));
    store(w, line("swarm-1", "web", "1", "stdout", 0, "2026-05-01T10:00:00.000000Z", "w0"));
    store(w, line("swarm-1", "hello-v1", "1", "stdout", 9, "2026-05-02T00:00:00.000000Z", "a3 next day"));
  }
  REQUIRE(std::filesystem::exists(dir / "store" / "hello-v1" / "2026-05-01.1.jsonl"));

  LogsOptions o;
  o.service = "hello/v1";
  auto r = run(o, dir.path());
  CHECK(r.rc == 0);
  const auto out = lines_of(r.out);
  REQUIRE(out.size() == 7);
  CHECK(out[0] == "2026-05-01T10:00:00.000Z swarm-1 hello-v1#1 stdout | a0");
  CHECK(out[1] == "2026-05-01T10:00:00.000Z swarm-2 hello-v1#2 stdout | b0");
  CHECK(out[2] == "2026-05-01T10:00:00.000Z swarm-1 hello-v1#1 stdout | a1");
  CHECK(out[3] == "2026-05-01T09:59:59.000Z swarm-1 hello-v1#1 stdout | a2");
  CHECK(out[4] == "2026-05-01T10:00:00.000Z swarm-2 hello-v1#2 stdout | b1");
  CHECK(out[5] == "2026-05-01T10:00:00.000Z swarm-1 hello-v1#1 stderr | a-err");
  CHECK(out[6] == "2026-05-02T00:00:00.000Z swarm-1 hello-v1#1 stdout | a3 next day");

  o.service.clear();
  CHECK(lines_of(run(o, dir.path()).out).size() == 8);  // with web

  o.node = "swarm-2";
  CHECK(lines_of(run(o, dir.path()).out).size() == 2);
  o.node.clear();
  o.grep = "err";
  r = run(o, dir.path());
  REQUIRE(lines_of(r.out).size() == 1);
  CHECK(r.out.find("a-err") != std::string::npos);
}

TEST_CASE("logs --output json prints one stable object per line with the exact bytes", "[logs]") {
  TempDir dir;
  {
    sa::StoreWriter w(dir / "store", 1 << 20, 0);
    store(w, line("n1", "svc", "4", "stderr", 7, "2026-05-01T10:00:00.000001Z", "bad \xff and \x01"));
  }
  LogsOptions o;
  o.json = true;
  auto r = run(o, dir.path());
  const auto out = lines_of(r.out);
  REQUIRE(out.size() == 1);
  const auto j = nlohmann::json::parse(out[0]);
  CHECK(j["ts"] == "2026-05-01T10:00:00.000001Z");
  CHECK(j["node"] == "n1");
  CHECK(j["service"] == "svc");
  CHECK(j["instance"] == "4");
  CHECK(j["stream"] == "stderr");
  CHECK(j["offset"] == 7);
  CHECK(j["key"] == "n1:/n/n1/workloads/service-svc-4/stderr.log:7");
  CHECK(j["msg"] == "bad \xef\xbf\xbd and \x01");
  CHECK(j["msg_b64"] == flotilla::support::base64_encode("bad \xff and \x01"));
  CHECK_FALSE(j.contains("hash"));
  o.json = false;
  CHECK(run(o, dir.path()).out == "2026-05-01T10:00:00.000Z n1 svc#4 stderr | bad \\xff and \\x01\n");
}

TEST_CASE("logs --since keeps only younger lines", "[logs]") {
  TempDir dir;
  {
    sa::StoreWriter w(dir / "store", 1 << 20, 0);
    store(w, line("n1", "svc", "1", "stdout", 0, now_minus(std::chrono::hours(50)), "two days ago"));
    store(w, line("n1", "svc", "1", "stdout", 1, now_minus(std::chrono::minutes(30)), "half an hour ago"));
    store(w, line("n1", "svc", "1", "stdout", 2, now_minus(std::chrono::seconds(5)), "just now"));
  }
  LogsOptions o;
  o.since = std::chrono::minutes(10);
  auto out = lines_of(run(o, dir.path()).out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].find("just now") != std::string::npos);
  o.since = std::chrono::hours(1);
  CHECK(lines_of(run(o, dir.path()).out).size() == 2);
  o.since = std::chrono::hours(24 * 3);
  CHECK(lines_of(run(o, dir.path()).out).size() == 3);
}

TEST_CASE("logs explains a missing store and an unknown service", "[logs]") {
  TempDir dir;
  LogsOptions o;
  auto r = run(o, dir / "nothing-here");
  CHECK(r.rc == flotilla::kLogsFailed);
  CHECK(r.err.find("no log store at") != std::string::npos);
  CHECK(r.err.find("flotilla up") != std::string::npos);

  {
    sa::StoreWriter w(dir / "store", 1 << 20, 0);
    store(w, line("n1", "svc", "1", "stdout", 0, "2026-05-01T10:00:00.000001Z", "x"));
  }
  o.service = "nope";
  r = run(o, dir.path());
  CHECK(r.rc == flotilla::kLogsOk);
  CHECK(r.out.empty());
  CHECK(r.err.find("no logs stored for service `nope`") != std::string::npos);
  CHECK(r.err.find("svc") != std::string::npos);
}

TEST_CASE("logs --follow prints new lines as they are stored, across a rotation, until stopped", "[logs]") {
  TempDir dir;
  sa::StoreWriter w(dir / "store", 700, 0);
  for (int i = 0; i < 3; ++i) store(w, line("n1", "svc", "1", "stdout", static_cast<std::uint64_t>(i), sa::now_ts(), "first-" + std::to_string(i)));

  std::atomic<bool> stop{false};
  LogsOptions o;
  o.service = "svc";
  o.follow = true;
  o.stop = [&] { return stop.load(); };
  SharedText printed;
  std::ostream out(&printed);
  std::ostringstream err;
  std::atomic<int> rc{-1};
  std::thread reader([&] { rc = flotilla::run_logs_command(o, ask_syslog(dir.path()), out, err); });
  const auto await_printed = [&](std::size_t n) {
    const bool done = flotilla::test::wait_until([&] { return lines_of(printed.text()).size() >= n; }, std::chrono::seconds(10));
    INFO("awaited: " << n << " lines printed by logs --follow; printed so far:\n" << printed.text());
    CHECK(done);
  };
  await_printed(3);  // what was stored before: printed, and the reader now follows
  for (int i = 3; i < 12; ++i) {
    store(w, line("n1", "svc", "1", "stdout", static_cast<std::uint64_t>(i), sa::now_ts(), "more-" + std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the scenario: lines stored one by one while followed
  }
  w.close_all();
  await_printed(12);
  stop = true;
  reader.join();
  CHECK(rc == 0);
  const auto got = lines_of(printed.text());
  REQUIRE(got.size() == 12);
  for (int i = 0; i < 12; ++i) CHECK(got[static_cast<std::size_t>(i)].find((i < 3 ? "first-" : "more-") + std::to_string(i)) != std::string::npos);
  CHECK(sa::list_store_files(dir / "store" / "svc").size() > 1);  // it did rotate while followed
}

TEST_CASE("a poll that meets a rotation between listing the files and reading them gives the lines in order", "[logs]") {
  // What a loaded machine can do to `logs --follow`: the reader lists the store files, then,
  // before it reads them, the writer adds lines until the current file rotates and puts the
  // next line in a new current file. The lister below does exactly that after its listing.
  TempDir dir;
  sa::StoreWriter w(dir / "store", 700, 0);
  int next = 0;
  const auto put = [&] {
    store(w, line("n1", "svc", "1", "stdout", static_cast<std::uint64_t>(next), sa::now_ts(), "l-" + std::to_string(next)));
    ++next;
  };
  put();
  bool rotate_after_listing = false;
  sa::StoreReader reader(dir / "store", sa::ReadFilter{.service = "svc"}, [&](const std::filesystem::path& d) {
    auto files = sa::list_store_files(d);
    if (rotate_after_listing) {
      rotate_after_listing = false;
      const std::size_t before = files.size();
      while (sa::list_store_files(d).size() == before) put();
    }
    return files;
  });
  const auto poll = [&] {
    bool missing = false;
    std::vector<std::string> got;
    for (const auto& l : reader.poll([](const std::string& text) { FAIL("warning: " << text); }, missing))
      got.push_back(l.record.value("msg", ""));
    CHECK_FALSE(missing);
    return got;
  };
  CHECK(poll() == std::vector<std::string>{"l-0"});
  rotate_after_listing = true;
  const auto during = poll();
  REQUIRE(next >= 3);  // at least one line before the rotation and the one after it
  std::vector<std::string> expected;
  for (int i = 1; i < next; ++i) expected.push_back("l-" + std::to_string(i));
  CHECK(during == expected);  // all of them, in the order written, not the new file's first
  CHECK(poll().empty());
  CHECK(sa::list_store_files(dir / "store" / "svc").size() == 2);
}

TEST_CASE("the syslog plugin answers `logs` and nothing else", "[logs]") {
  const flotilla::Plugin& p = syslog_plugin();
  CHECK(p.answers() == std::vector<std::string>{"logs"});
  const auto r = flotilla::call_query(p, {{"question", "weather"}, {"args", json::object()}}, flotilla::CallHooks{}, [](std::string_view) {});
  CHECK(r.status == FLT_NOT_SUPPORTED);
  CHECK_THAT(r.error, Catch::Contains("answers `logs`"));
}
