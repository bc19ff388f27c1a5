// flotilla-logstore: the collector rsyslog's output program (omprog with confirmMessages).
//
// rsyslog writes one wire record per line to stdin and waits for "OK" on stdout before it
// sends the next, so a line counts as delivered only once it is in the store (or recognised
// as a resend). Anything else on stdout makes rsyslog keep the line and retry it later. The
// first "OK" says the store is open and the dedupe table rebuilt.
#include "addon_syslog/log_store.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using flotilla::syslog_addon::LogStore;

constexpr auto kHousekeepingInterval = std::chrono::minutes(10);
constexpr int kIdlePollMs = 60'000;

int usage(const char* why) {
  std::fprintf(stderr,
               "flotilla-logstore: %s\n"
               "usage: flotilla-logstore --store DIR [--max-file-size BYTES] [--retention-days N] [--addons a,b]\n"
               "Reads the syslog addon's wire records on stdin and answers OK per line (rsyslog omprog protocol).\n",
               why);
  return 2;
}

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads lines of any length from a descriptor; a line without its newline at EOF is dropped,
/// since rsyslog always ends a record with one.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  /// 1: a line, 0: EOF, -1: nothing within timeout_ms.
  int next(std::string& line, int timeout_ms) {
    for (;;) {
      if (const auto nl = buf_.find('\n', scanned_); nl != std::string::npos) {
        line.assign(buf_, 0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        return 1;
      }
      scanned_ = buf_.size();
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return -1;
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return 0;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
  std::size_t scanned_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);  // rsyslog gone: the next write fails and we exit
  // The collector's rsyslogd owns this process: a stop signalled to the whole process group must
  // not cut a batch short. rsyslogd finishes its batch, then closes stdin, and we exit on EOF.
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  LogStore::Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(usage(("missing value after " + a).c_str()));
      return argv[++i];
    };
    try {
      if (a == "--store") opts.dir = value();
      else if (a == "--max-file-size") opts.max_file_size = std::stoull(value());
      else if (a == "--retention-days") opts.retention_days = std::stoi(value());
      else if (a == "--addons") {
        std::stringstream list(value());
        for (std::string name; std::getline(list, name, ',');)
          if (!name.empty()) opts.addons.push_back(name);
      } else if (a == "--help" || a == "-h") {
        usage("help");
        return 0;
      } else {
        return usage(("unknown argument " + a).c_str());
      }
    } catch (const std::exception&) {
      return usage(("bad value for " + a).c_str());
    }
  }
  if (opts.dir.empty()) return usage("--store is required");
  if (opts.max_file_size < 4096) return usage("--max-file-size must be at least 4096");

  LogStore store(opts);
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const auto known = store.open();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "flotilla-logstore: store %s open, %llu stored lines indexed in %lld ms\n", opts.dir.c_str(),
                 static_cast<unsigned long long>(known), static_cast<long long>(ms));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flotilla-logstore: %s\n", e.what());
    return 1;
  }
  if (!write_all(1, "OK\n")) return 1;

  LineReader in(0);
  std::string line;
  auto next_housekeeping = std::chrono::steady_clock::now() + kHousekeepingInterval;
  for (;;) {
    const int r = in.next(line, kIdlePollMs);
    if (r == 0) break;
    if (std::chrono::steady_clock::now() >= next_housekeeping) {
      store.enforce_retention(std::chrono::system_clock::now());
      next_housekeeping = std::chrono::steady_clock::now() + kHousekeepingInterval;
    }
    if (r < 0) continue;
    std::string answer = "OK\n";
    try {
      store.ingest(line);
    } catch (const std::exception& e) {
      // Not OK: rsyslog keeps the line in its queue and offers it again after resumeInterval.
      std::fprintf(stderr, "flotilla-logstore: %s; rsyslog will retry the line\n", e.what());
      std::string what = e.what();
      for (char& c : what)
        if (c == '\n' || c == '\r') c = ' ';
      answer = "ERROR " + what + "\n";
    }
    if (!write_all(1, answer)) break;
  }
  store.close();
  return 0;
}
