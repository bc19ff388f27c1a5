// A client for HAProxy's runtime API (the admin `stats socket`) and master CLI (`-S`), both
// unix sockets. One command per connection: write it, half-close, read to EOF. The half-close
// matters on the master CLI, which otherwise keeps the connection open after answering.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace flotilla::haproxy {

/// The socket could not be reached, did not answer in time, or refused a command.
class RuntimeApiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One row of `show stat` (a server, frontend or backend), by column name.
struct StatRow {
  std::map<std::string, std::string, std::less<>> fields;
  /// The column's value, or "" when HAProxy did not send it.
  [[nodiscard]] std::string get(std::string_view column) const {
    const auto it = fields.find(column);
    return it == fields.end() ? std::string() : it->second;
  }
};

/// One server of `show servers state`: the membership HAProxy actually has.
struct ServerState {
  std::string backend;
  std::string name;
  std::string address;
  int port = 0;
  int admin_state = 0;  // bit field: 0x01 forced maint, 0x08 forced drain, ...
};

/// One process of the master CLI's `show proc`.
struct ProcInfo {
  int pid = 0;
  std::string type;  // "master" or "worker"
  bool old = false;  // a worker of a previous generation, finishing its connections
};

/// The master's `show proc`: its reload counters and the current processes.
struct ProcTable {
  int reloads = 0;
  int failed_reloads = 0;
  std::vector<ProcInfo> processes;
  /// Pid of the current (not old) worker, or 0.
  [[nodiscard]] int current_worker() const {
    for (const auto& p : processes) {
      if (p.type == "worker" && !p.old) return p.pid;
    }
    return 0;
  }
};

/// Talks to one HAProxy unix socket. Cheap to copy; opens a connection per command.
class RuntimeApi {
 public:
  /// `socket_path` is the admin socket or the master socket; every wait is bounded by `timeout`.
  explicit RuntimeApi(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(5))
      : path_(std::move(socket_path)), timeout_(timeout) {}

  [[nodiscard]] const std::string& path() const { return path_; }

  /// Sends one command and returns the whole answer. Throws RuntimeApiError if the socket
  /// cannot be reached or answers late, and refuses a command holding a newline or ';' (both
  /// would let one string carry a second command).
  [[nodiscard]] std::string send(std::string_view command) const {
    if (command.find_first_of("\n\r;") != std::string_view::npos) {
      throw RuntimeApiError("refusing to send a runtime API command with a newline or ';'");
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof(addr.sun_path)) {
      throw RuntimeApiError("socket path " + path_ + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) +
                            " bytes; use a shorter state directory");
    }
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

    Socket sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (sock.fd < 0) throw RuntimeApiError("cannot create a unix socket: " + errno_text());
    if (::connect(sock.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw RuntimeApiError("cannot connect to HAProxy at " + path_ + ": " + errno_text());
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    const std::string line = std::string(command) + "\n";
    std::size_t sent = 0;
    while (sent < line.size()) {
      wait_for(sock.fd, POLLOUT, deadline, command);
      const ssize_t n = ::send(sock.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw RuntimeApiError("cannot send '" + std::string(command) + "' to " + path_ + ": " + errno_text());
      sent += static_cast<std::size_t>(n);
    }
    ::shutdown(sock.fd, SHUT_WR);
    std::string answer;
    char buf[16384];
    for (;;) {
      wait_for(sock.fd, POLLIN, deadline, command);
      const ssize_t n = ::recv(sock.fd, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw RuntimeApiError("cannot read the answer to '" + std::string(command) + "': " + errno_text());
      if (n == 0) break;
      answer.append(buf, static_cast<std::size_t>(n));
    }
    return answer;
  }

  /// Sends a command that answers with nothing on success, or with `success` (e.g. "Server
  /// deleted."). Any other answer is HAProxy's error and is thrown.
  void run(std::string_view command, std::string_view success = {}) const {
    const std::string answer = send(command);
    const std::string text = trim(answer);
    if (text.empty() && success.empty()) return;
    if (!success.empty() && text.starts_with(success)) return;
    throw RuntimeApiError("HAProxy refused '" + std::string(command) + "': " + (text.empty() ? "no answer" : text));
  }

  /// True when the socket accepts a connection and answers `show info`.
  [[nodiscard]] bool ready() const {
    try {
      return send("show info").find("Pid:") != std::string::npos;
    } catch (const RuntimeApiError&) {
      return false;
    }
  }

  /// The worker's pid from `show info`, or 0.
  [[nodiscard]] int worker_pid() const {
    std::istringstream in(send("show info"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("Pid: ")) return std::atoi(line.c_str() + 5);
    }
    return 0;
  }

  /// `show stat` for servers (of `backend` only, when given).
  [[nodiscard]] std::vector<StatRow> show_stat(std::string_view backend = {}) const {
    const std::string cmd = backend.empty() ? "show stat -1 4 -1" : "show stat " + std::string(backend) + " 4 -1";
    return parse_stat(send(cmd));
  }

  /// `show servers state`: every server of every backend, with its address and admin state.
  [[nodiscard]] std::vector<ServerState> show_servers_state() const { return parse_servers_state(send("show servers state")); }

  /// The master CLI's `show proc` (send it on the master socket).
  [[nodiscard]] ProcTable show_proc() const { return parse_proc(send("show proc")); }

  /// Parses `show stat` CSV: a "# col,col,..." header, then one row per proxy or server.
  static std::vector<StatRow> parse_stat(std::string_view text) {
    std::vector<StatRow> rows;
    std::vector<std::string> columns;
    for (const std::string& line : lines(text)) {
      if (line.starts_with("# ")) {
        columns = split(line.substr(2), ',');
        continue;
      }
      if (line.empty() || columns.empty()) continue;
      const auto values = split(line, ',');
      StatRow row;
      for (std::size_t i = 0; i < columns.size() && i < values.size(); ++i) {
        if (!columns[i].empty()) row.fields[columns[i]] = values[i];
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  /// Parses `show servers state` (format version 1: a version line, a "# be_id be_name ..."
  /// header, then space-separated rows). Columns are found by name from the header.
  static std::vector<ServerState> parse_servers_state(std::string_view text) {
    std::vector<ServerState> out;
    std::map<std::string, std::size_t> col;
    for (const std::string& line : lines(text)) {
      if (line.starts_with("# ")) {
        const auto names = split(line.substr(2), ' ');
        for (std::size_t i = 0; i < names.size(); ++i) col[names[i]] = i;
        continue;
      }
      if (col.empty() || line.empty()) continue;
      const auto f = split(line, ' ');
      auto at = [&](const char* name) -> std::string {
        const auto it = col.find(name);
        return it != col.end() && it->second < f.size() ? f[it->second] : std::string();
      };
      ServerState s;
      s.backend = at("be_name");
      s.name = at("srv_name");
      s.address = at("srv_addr");
      s.port = std::atoi(at("srv_port").c_str());
      s.admin_state = std::atoi(at("srv_admin_state").c_str());
      if (!s.backend.empty() && !s.name.empty()) out.push_back(std::move(s));
    }
    return out;
  }

  /// Parses the master's `show proc`:
  ///   "#<PID> <type> <reloads> <uptime> <version>", the master's row ("1162 master 2 [failed: 0] ..."),
  ///   "# workers" rows, then "# old workers" rows.
  static ProcTable parse_proc(std::string_view text) {
    ProcTable table;
    bool old = false;
    for (const std::string& line : lines(text)) {
      if (line.starts_with("# old workers")) old = true;
      else if (line.starts_with("# workers") || line.starts_with("# programs")) old = false;
      if (line.empty() || line.front() == '#') continue;
      std::istringstream in(line);
      ProcInfo p;
      std::string reloads;
      in >> p.pid >> p.type >> reloads;
      if (!in || p.pid <= 0) continue;
      p.old = old;
      if (p.type == "master") {
        table.reloads = std::atoi(reloads.c_str());
        const auto failed = line.find("[failed: ");
        if (failed != std::string::npos) table.failed_reloads = std::atoi(line.c_str() + failed + 9);
      }
      table.processes.push_back(p);
    }
    return table;
  }

 private:
  struct Socket {
    int fd;
    explicit Socket(int f) : fd(f) {}
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() {
      if (fd >= 0) ::close(fd);
    }
  };

  static std::string errno_text() { return std::error_code(errno, std::generic_category()).message(); }

  void wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline, std::string_view command) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        throw RuntimeApiError("HAProxy at " + path_ + " did not answer '" + std::string(command) + "' within " +
                              std::to_string(timeout_.count()) + " ms");
      }
      pollfd p{fd, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n > 0) return;
      if (n < 0 && errno != EINTR) throw RuntimeApiError("poll on " + path_ + " failed: " + errno_text());
    }
  }

  static std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
  }

  static std::vector<std::string> lines(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
      const auto end = text.find('\n', start);
      const auto piece = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      out.emplace_back(trim(piece));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    return out;
  }

  /// Splits on `sep`; for ' ' runs of spaces count as one.
  static std::vector<std::string> split(std::string_view text, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (const char c : text) {
      if (c == sep) {
        if (sep != ' ' || !cur.empty()) out.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (sep != ' ' || !cur.empty()) out.push_back(std::move(cur));
    return out;
  }

  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace flotilla::haproxy
