// A client for HAProxy's runtime API (the admin `stats socket`: a unix socket, or TCP
// "ADDRESS:PORT" for an HAProxy in a container) and master CLI (`-S`). One command per
// connection through support::stream_exchange: write it, half-close, read to EOF. The
// half-close matters on the master CLI, which otherwise keeps the connection open after answering.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
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
  [[nodiscard]] std::string get(std::string_view column) const;
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
  [[nodiscard]] int current_worker() const;
};

/// Talks to one HAProxy unix socket. Cheap to copy; opens a connection per command.
class RuntimeApi {
 public:
  /// `socket_path` is the admin socket or the master socket (a path, or "ADDRESS:PORT" for
  /// TCP); every wait is bounded by `timeout`.
  explicit RuntimeApi(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(5))
      : path_(std::move(socket_path)), timeout_(timeout) {}

  [[nodiscard]] const std::string& path() const { return path_; }

  /// Sends one command and returns the whole answer. Throws RuntimeApiError if the socket
  /// cannot be reached or answers late, and refuses a command holding a newline or ';' (both
  /// would let one string carry a second command).
  [[nodiscard]] std::string send(std::string_view command) const;

  /// Sends a command that answers with nothing on success, or with `success` (e.g. "Server
  /// deleted."). Any other answer is HAProxy's error and is thrown.
  void run(std::string_view command, std::string_view success = {}) const;

  /// True when the socket accepts a connection and answers `show info`.
  [[nodiscard]] bool ready() const;

  /// The worker's pid from `show info`, or 0.
  [[nodiscard]] int worker_pid() const;

  /// `show stat` for servers (of `backend` only, when given).
  [[nodiscard]] std::vector<StatRow> show_stat(std::string_view backend = {}) const;

  /// `show servers state`: every server of every backend, with its address and admin state.
  [[nodiscard]] std::vector<ServerState> show_servers_state() const { return parse_servers_state(send("show servers state")); }

  /// The master CLI's `show proc` (send it on the master socket).
  [[nodiscard]] ProcTable show_proc() const { return parse_proc(send("show proc")); }

  /// Parses `show stat` CSV: a "# col,col,..." header, then one row per proxy or server.
  static std::vector<StatRow> parse_stat(std::string_view text);

  /// Parses `show servers state` (format version 1: a version line, a "# be_id be_name ..."
  /// header, then space-separated rows). Columns are found by name from the header.
  static std::vector<ServerState> parse_servers_state(std::string_view text);

  /// Parses the master's `show proc`:
  ///   "#<PID> <type> <reloads> <uptime> <version>", the master's row ("1162 master 2 [failed: 0] ..."),
  ///   "# workers" rows, then "# old workers" rows.
  static ProcTable parse_proc(std::string_view text);

 private:
  static std::string trim(std::string_view s);

  static std::vector<std::string> lines(std::string_view text);

  /// Splits on `sep`; for ' ' runs of spaces count as one.
  static std::vector<std::string> split(std::string_view text, char sep);

  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace flotilla::haproxy
