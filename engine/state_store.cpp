#include "state_store.hpp"

#include "clock.hpp"
#include "input_limits.hpp"

#include "flotilla/support/files.hpp"
#include "flotilla/support/wait.hpp"
#include "state_records.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace flotilla {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHeaderPrefix = "flotilla-state ";
constexpr int kStateFileMode = 0600;
constexpr int kStateDirMode = 0700;

std::string errno_text(int e) { return std::generic_category().message(e); }

std::string quoted(const fs::path& p) { return p.string(); }

// Temp-file names must not collide between threads and processes writing the same directory;
// O_EXCL makes a collision an error rather than a shared file, and the counter avoids retries.
std::string unique_suffix() {
  static std::atomic<unsigned long> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

// Creates `dir` and its missing parents with `mode` (existing ones keep theirs). Returns errno.
int make_dirs(const fs::path& dir, mode_t mode) {
  fs::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (part.empty() || part == "/") continue;
    if (::mkdir(prefix.c_str(), mode) == 0) continue;
    const int e = errno;
    if (e != EEXIST) return e;
    struct stat st {};
    if (::stat(prefix.c_str(), &st) != 0) return errno;
    if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  }
  return 0;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool read_all(int fd, std::string& out) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// The file's content, nullopt if it does not exist, or an errno.
std::optional<std::string> read_file(const fs::path& path, int& error) {
  error = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) error = errno;
    return std::nullopt;
  }
  std::string content;
  if (!read_all(fd, content)) {
    error = errno;
    ::close(fd);
    return std::nullopt;
  }
  ::close(fd);
  return content;
}

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// Whether `path` still names the file open as `fd` (a lock may be replaced while we look at it).
bool still_named(int fd, const fs::path& path) {
  struct stat open_st {}, named_st {};
  return ::fstat(fd, &open_st) == 0 && ::stat(path.c_str(), &named_st) == 0 && same_file(open_st, named_st);
}

// nlohmann's text starts with an exception id and positions relative to the JSON text; keep
// only the description, since the line reported is counted in the whole file.
std::string parse_detail(const std::string& what) {
  auto at = what.find("column ");
  if (at != std::string::npos) {
    auto colon = what.find(": ", at);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  auto bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

std::string user_name() {
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 && found != nullptr) return found->pw_name;
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') return user;
  return "uid " + std::to_string(::geteuid());
}

// What is known about an existing lock file.
struct LockInfo {
  bool exists = false;
  bool alive = false;    // someone holds the flock
  bool changed = false;  // the file was replaced or removed while we looked
  json holder;           // the parsed JSON object, or null
  std::string damage;    // why `holder` is null
};

LockInfo parse_holder(LockInfo info, const std::string& content) {
  try {
    json parsed = json::parse(content);
    if (parsed.is_object()) {
      info.holder = std::move(parsed);
    } else {
      info.damage = "it holds JSON that is not an object";
    }
  } catch (const json::exception& e) {
    info.damage = content.empty() ? "it is empty" : "it is not valid JSON: " + parse_detail(e.what());
  }
  return info;
}

// Opens the lock file and probes the holder's flock with `probe` (LOCK_SH to only look,
// LOCK_EX to clear). The descriptor stays open in `fd` on success so the caller can act while
// still holding what the probe got.
Result<LockInfo> probe_lock(const fs::path& path, int probe, int& fd) {
  LockInfo info;
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return info;
    return fail("cannot read lock file " + quoted(path) + ": " + errno_text(e));
  }
  info.exists = true;
  if (::flock(fd, probe | LOCK_NB) == 0) {
    info.changed = !still_named(fd, path);
  } else if (errno == EWOULDBLOCK) {
    info.alive = true;
  } else {
    const int e = errno;
    ::close(fd);
    fd = -1;
    return fail("cannot check lock file " + quoted(path) + ": flock failed: " + errno_text(e));
  }
  std::string content;
  if (!read_all(fd, content)) {
    const int e = errno;
    ::close(fd);
    fd = -1;
    return fail("cannot read lock file " + quoted(path) + ": " + errno_text(e));
  }
  return parse_holder(std::move(info), content);
}

Result<LockInfo> probe_lock(const fs::path& path) {
  int fd = -1;
  auto info = probe_lock(path, LOCK_SH, fd);
  if (fd >= 0) ::close(fd);
  return info;
}

std::string field(const json& holder, const char* key) {
  auto it = holder.find(key);
  if (it == holder.end() || it->is_null()) return "?";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string held_message(const fs::path& dir, const fs::path& path, const LockInfo& info,
                         const std::string& unlock_command) {
  const std::string where = "cluster state in " + quoted(dir);
  if (info.holder.is_null()) {
    // A damaged lock file whose flock is free is taken over, so its holder is alive.
    return where + " is locked by a running process, but its lock file " + quoted(path) + " cannot be read (" +
           info.damage + "); wait for it to finish";
  }
  const json& h = info.holder;
  if (info.alive) {
    return where + " is locked by pid " + field(h, "pid") + " (`" + field(h, "command") + "`) on " + field(h, "host") +
           " since " + field(h, "since") + "; wait for it to finish";
  }
  // Only a holder on another host gets here: a dead one on this host is taken over.
  return where + " is locked by pid " + field(h, "pid") + " (`" + field(h, "command") + "`) on host " + field(h, "host") +
         " since " + field(h, "since") + ", which this host cannot check (the state directory is shared); once you are " +
         "sure that run has ended, run `" + unlock_command + "` to clear it";
}

/// True when the lock's holder ran on another host, where its flock says nothing (a state
/// directory on a shared filesystem): such a lock is never taken over.
bool held_elsewhere(const LockInfo& info) {
  if (!info.holder.is_object()) return false;
  const auto it = info.holder.find("host");
  return it != info.holder.end() && it->is_string() && it->get<std::string>() != host_name();
}

/// Whether the holder named in the file is a process of this host that no longer exists.
bool holder_gone_here(const LockInfo& info) {
  if (!info.holder.is_object() || held_elsewhere(info)) return false;
  const auto it = info.holder.find("pid");
  if (it == info.holder.end() || !it->is_number_integer()) return false;
  const auto pid = it->get<long long>();
  return pid > 0 && pid <= INT32_MAX && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

/// The one line a run prints when it took over the lock of a run that died.
std::string takeover_note(const fs::path& dir, const LockInfo& info) {
  const std::string who = info.holder.is_null()
                              ? "a damaged lock file (" + info.damage + ")"
                              : "the lock of pid " + field(info.holder, "pid") + " (`" + field(info.holder, "command") +
                                    "`, since " + field(info.holder, "since") + ")";
  return "took over " + who + " on the cluster state in " + quoted(dir) + ": that run is no longer alive";
}

void release_lock(const fs::path& path, int& fd) noexcept {
  if (fd < 0) return;
  // Only our own file: after a forced unlock another run may hold a new lock under this name.
  if (still_named(fd, path)) ::unlink(path.c_str());
  ::close(fd);
  fd = -1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Atomic file replacement

Result<void> write_file_atomic(const fs::path& path, const std::string& content, int mode) {
  try {
    support::write_file_atomic(path, content, static_cast<mode_t>(mode));
    return {};
  } catch (const std::system_error& e) {
    // support's message names the step and the file it failed on; say which file this was for.
    return fail("cannot write " + quoted(path) + ": " + e.what() + "; check that its directory exists, is writable and has space");
  }
}

// ---------------------------------------------------------------------------------------------
// FileStateStore

namespace {

// The state file's bytes, nullopt when it does not exist. Read with the support library's
// bound, so a FIFO, a device or a huge file is refused rather than read.
Result<std::optional<std::string>> read_bounded(const fs::path& path, const std::string& remedy) {
  try {
    return std::optional<std::string>(support::read_regular_file(path, kMaxStateFileBytes));
  } catch (const std::system_error& e) {
    switch (e.code().value()) {
      case ENOENT: return std::optional<std::string>{};
      case EISDIR: return fail("state file " + quoted(path) + " is a directory, not a file; " + remedy);
      case ENODEV: return fail("state file " + quoted(path) + " is not a regular file; " + remedy);
      case EFBIG: {
        std::error_code ec;
        const auto size = fs::file_size(path, ec);
        return fail("state file " + quoted(path) + " is " + (ec ? std::string("larger") : std::to_string(size) + " bytes,") +
                    " more than the " + size_text(kMaxStateFileBytes) +
                    " a state file may hold: it is damaged or not a flotilla state file; " + remedy);
      }
      default:
        return fail("cannot read state file " + quoted(path) + ": " + errno_text(e.code().value()) + "; check its permissions");
    }
  }
}

// The version of the "flotilla-state N" line, or an error.
Result<int> header_version(const fs::path& path, std::string_view header, const std::string& remedy) {
  bool ok = header.starts_with(kHeaderPrefix) && header.size() > kHeaderPrefix.size();
  if (ok) {
    const auto digits = header.substr(kHeaderPrefix.size());
    ok = std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) && digits.size() < 9;
    if (ok) {
      const int version = std::stoi(std::string(digits));
      const std::string reads = "this flotilla reads versions " + std::to_string(kOldestStateFormatVersion) + " to " +
                                std::to_string(kStateFormatVersion);
      if (version > kStateFormatVersion)
        return fail("state file " + quoted(path) + " has format version " + std::to_string(version) + "; " + reads +
                    ": upgrade flotilla");
      if (version < kOldestStateFormatVersion)
        return fail("state file " + quoted(path) + " has format version " + std::to_string(version) +
                    ", which no flotilla release wrote; " + reads + "; " + remedy);
      return version;
    }
  }
  return fail("state file " + quoted(path) + " does not start with \"flotilla-state <version>\": it is damaged or " +
              "not a flotilla state file; " + remedy);
}

// The engine's JSON writer and comparisons recurse, so a state nested without bound (in a
// driver's or runtime's record, which the engine does not look into) must never load.
constexpr int kMaxStateDepth = 128;

std::string plural(std::size_t n, const char* one, const char* many) { return std::to_string(n) + " " + (n == 1 ? one : many); }

std::size_t section_size(const json& state, const char* key) {
  const auto it = state.find(key);
  return it != state.end() && it->is_object() ? it->size() : 0;
}

}  // namespace

Result<std::optional<json>> read_state_file(const fs::path& path, const std::string& remedy) {
  auto content = read_bounded(path, remedy);
  if (!content) return std::unexpected(content.error());
  if (!*content) return std::optional<json>{};
  const std::string& text = **content;
  const auto newline = text.find('\n');
  auto version = header_version(path, std::string_view(text).substr(0, newline), remedy);
  if (!version) return std::unexpected(version.error());

  const std::string_view body = newline == std::string::npos ? std::string_view{} : std::string_view(text).substr(newline + 1);
  if (const auto at = json_too_deep(body, kMaxStateDepth))
    return fail("state file " + quoted(path) + " line " + std::to_string(at->line + 1) + ": nested deeper than " +
                std::to_string(kMaxStateDepth) + " levels, which flotilla never writes; " + remedy);
  json state;
  try {
    state = json::parse(body);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based and points at the offending character; the JSON starts on line 2.
    const auto upto = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, body.size());
    const auto line = 2 + std::count(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(upto), '\n');
    return fail("state file " + quoted(path) + " is corrupt at line " + std::to_string(line) + ": " +
                parse_detail(e.what()) + "; " + remedy);
  } catch (const json::exception& e) {
    // Valid syntax the parser still refuses, such as a number too large for a double.
    return fail("state file " + quoted(path) + " is corrupt: " + parse_detail(e.what()) + "; " + remedy);
  }
  if (!state.is_object()) {
    return fail("state file " + quoted(path) + " line 2: the state must be a JSON object, found " +
                std::string(state.type_name()) + "; " + remedy);
  }
  if (auto shape = check_state_shape(state); !shape)
    return fail("state file " + quoted(path) + ": " + shape.error().message + "; " + remedy);
  // The version line is the file's format; the engine migrates older ones (see migrate_state).
  if (*version != kStateFormatVersion) state["format_version"] = *version;
  return std::optional<json>(std::move(state));
}

std::string state_summary(const json& state) {
  std::string out;
  if (const auto c = state.find("cluster"); c != state.end() && c->is_string()) out = "cluster \"" + c->get<std::string>() + "\", ";
  if (const auto s = state.find("serial"); s != state.end() && s->is_number()) out += "serial " + s->dump() + ", ";
  return out + plural(section_size(state, "nodes"), "node", "nodes") + ", " +
         plural(section_size(state, "instances"), "instance", "instances") + ", " +
         plural(section_size(state, "addons"), "addon", "addons");
}

Result<json> FileStateStore::load() {
  const fs::path path = file();
  const fs::path bak = backup();
  std::error_code ec;
  const bool has_backup = fs::exists(fs::symlink_status(bak, ec));
  const std::string remedy = has_backup ? "the previous state is in " + quoted(bak) + ": restore it with `" + restore_command_ +
                                              "`, or fix the file by hand"
                                        : "there is no backup (" + quoted(bak) +
                                              "); fix the file by hand (removing it makes flotilla forget what the cluster runs)";
  auto state = read_state_file(path, remedy);
  if (!state) return std::unexpected(state.error());
  if (*state) return std::move(**state);
  if (!has_backup) return json::object();
  // The state file is gone but its backup is here: the cluster may well be running.
  auto previous = read_state_file(bak, "fix it by hand");
  const std::string what = !previous  ? " (it is damaged too: " + previous.error().message + ")"
                           : *previous ? " (" + state_summary(**previous) + ")"
                                       : "";
  return fail("state file " + quoted(path) + " is missing, but its backup " + quoted(bak) + " exists" + what +
              ": the cluster may still be running; restore the state with `" + restore_command_ +
              "`, or remove the backup if you know the cluster is gone");
}

Result<void> FileStateStore::save(const json& state) {
  if (const int e = make_dirs(dir_, kStateDirMode); e != 0) {
    return fail("cannot create state directory " + quoted(dir_) + ": " + errno_text(e));
  }
  const fs::path path = file();
  fs::path bak = path;
  bak += ".bak";

  std::string content(kHeaderPrefix);
  content += std::to_string(kStateFormatVersion) + "\n";
  try {
    content += state.dump(2) + "\n";
  } catch (const json::exception& e) {
    return fail("cannot save state to " + quoted(path) + ": " + parse_detail(e.what()));
  }

  // Keep the previous version: a hard link costs nothing and survives the rename below.
  if (::unlink(bak.c_str()) != 0 && errno != ENOENT) {
    const int e = errno;
    return fail("cannot replace state backup " + quoted(bak) + ": " + errno_text(e));
  }
  if (::link(path.c_str(), bak.c_str()) != 0 && errno != ENOENT) {
    const int link_errno = errno;
    int read_error = 0;
    auto previous = read_file(path, read_error);
    if (!previous) {
      return fail("cannot back up state file " + quoted(path) + " to " + quoted(bak) + ": " +
                  errno_text(read_error != 0 ? read_error : link_errno));
    }
    if (auto copied = write_file_atomic(bak, *previous, kStateFileMode); !copied) return copied;
  }
  return write_file_atomic(path, content, kStateFileMode);
}

Result<json> MemoryStateStore::load() {
  std::lock_guard lock(mu_);
  if (auto shape = check_state_shape(state_); !shape) return fail("state in memory: " + shape.error().message);
  return state_;
}

Result<void> MemoryStateStore::save(const json& state) {
  std::lock_guard lock(mu_);
  if (fail_) return std::unexpected(*fail_);
  state_ = state;
  ++saves_;
  return {};
}

void MemoryStateStore::fail_saves(std::optional<Error> error) {
  std::lock_guard lock(mu_);
  fail_ = std::move(error);
}

int MemoryStateStore::saves() const {
  std::lock_guard lock(mu_);
  return saves_;
}

// ---------------------------------------------------------------------------------------------
// StateLock

StateLock::StateLock(StateLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), took_over_(std::move(other.took_over_)) {}

StateLock& StateLock::operator=(StateLock&& other) noexcept {
  if (this != &other) {
    release_lock(path_, fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    took_over_ = std::move(other.took_over_);
  }
  return *this;
}

StateLock::~StateLock() { release_lock(path_, fd_); }

Result<StateLock> StateLock::acquire(const fs::path& dir, const std::string& command,
                                     const std::string& unlock_command) {
  if (const int e = make_dirs(dir, kStateDirMode); e != 0) {
    return fail("cannot create state directory " + quoted(dir) + ": " + errno_text(e));
  }
  const fs::path path = dir / "lock";
  const json holder = {{"pid", ::getpid()},
                       {"host", host_name()},
                       {"user", user_name()},
                       {"command", command},
                       {"since", iso_now()}};
  const std::string content = holder.dump(2) + "\n";
  std::string took_over;
  bool waited_for_orphan = false;

  // The lock file is written and flocked under a private name, then linked into place: link
  // fails if `lock` exists, like O_EXCL, and nobody ever sees a lock file that is half written
  // or not yet flocked (which would look like a dead holder).
  for (int round = 0; round < 10; ++round) {
    std::string name = ".lock.tmp-";
    name += unique_suffix();
    const fs::path tmp = dir / name;
    const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, kStateFileMode);
    if (fd < 0) {
      const int e = errno;
      if (e == EEXIST) continue;
      return fail("cannot create lock file in " + quoted(dir) + ": " + errno_text(e));
    }
    const auto abandon = [&](const char* step, int e) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail("cannot create lock file " + quoted(path) + ": " + step + " failed: " + errno_text(e));
    };
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return abandon("flock", errno);
    if (!write_all(fd, content)) return abandon("write", errno);
    if (::fsync(fd) != 0) return abandon("fsync", errno);
    if (::link(tmp.c_str(), path.c_str()) == 0) {
      ::unlink(tmp.c_str());
      StateLock lock(path, fd);
      lock.took_over_ = std::move(took_over);
      return lock;
    }
    const int link_errno = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    if (link_errno != EEXIST) {
      return fail("cannot create lock file " + quoted(path) + ": " + errno_text(link_errno));
    }

    // Probed with LOCK_EX: while we hold it, the holder cannot be alive. A free flock means the
    // holder has died (the kernel released its flock), so its lock is taken over, like a crash
    // never happened: its file goes while we hold its flock, and the next round links ours.
    int old_fd = -1;
    auto info = probe_lock(path, LOCK_EX, old_fd);
    if (!info) return std::unexpected(info.error());
    const bool dead_here = info->exists && !info->changed && !info->alive && !held_elsewhere(*info);
    if (dead_here && still_named(old_fd, path)) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        const int e = errno;
        ::close(old_fd);
        return fail("cannot take over the lock " + quoted(path) + " of a run that is no longer alive: " + errno_text(e) +
                    "; check the permissions of " + quoted(dir));
      }
      took_over = takeover_note(dir, *info);
    }
    if (old_fd >= 0) ::close(old_fd);
    if (!info->exists || info->changed || dead_here) continue;  // gone, replaced or taken over: link ours
    // The holder is dead but its flock is not free: a process it had just forked still has the
    // descriptor, and lets go of it within moments (it never exec's without its parent). Wait
    // for that once rather than send the user to `unlock` for a run that is gone.
    if (info->alive && !waited_for_orphan && holder_gone_here(*info)) {
      waited_for_orphan = true;
      (void)support::wait_until(std::chrono::seconds(3), std::chrono::milliseconds(20), [&] {
        auto again = probe_lock(path);
        return !again || !again->alive;
      });
      continue;
    }
    Error held{held_message(dir, path, *info, unlock_command)};
    held.locked = true;
    return std::unexpected(std::move(held));
  }
  Error busy{"cannot take the lock " + quoted(path) + ": other runs kept taking and releasing it; try again"};
  busy.locked = true;
  return std::unexpected(std::move(busy));
}

Result<json> read_lock(const fs::path& dir) {
  const fs::path path = dir / "lock";
  for (int round = 0; round < 10; ++round) {
    auto info = probe_lock(path);
    if (!info) return std::unexpected(info.error());
    if (!info->exists) return json(nullptr);
    if (info->changed) continue;
    json out = info->holder.is_null() ? json{{"damaged", true}} : info->holder;
    out["alive"] = info->alive;
    out["path"] = path.string();
    return out;
  }
  return fail("cannot read lock file " + quoted(path) + ": it kept changing; try again");
}

Result<void> clear_lock(const fs::path& dir, bool force) {
  const fs::path path = dir / "lock";
  for (int round = 0; round < 10; ++round) {
    // LOCK_EX: while we hold it, a holder cannot be alive, so the file we remove is a dead one
    // (unless forced).
    int fd = -1;
    auto info = probe_lock(path, LOCK_EX, fd);
    if (!info) return std::unexpected(info.error());
    if (!info->exists) return {};
    if (info->alive && !force) {
      ::close(fd);
      const std::string holder =
          info->holder.is_null()
              ? "a running process (its lock file cannot be read: " + info->damage + ")"
              : "pid " + field(info->holder, "pid") + " (`" + field(info->holder, "command") + "`) on " +
                    field(info->holder, "host") + " since " + field(info->holder, "since");
      return fail("cannot unlock cluster state in " + quoted(dir) + ": it is held by " + holder +
                  ", which is still running; wait for it to finish or stop it, and force the unlock only if you "
                  "are sure it no longer uses this state");
    }
    const bool ours = !info->changed && still_named(fd, path);
    if (ours && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int e = errno;
      ::close(fd);
      return fail("cannot remove lock file " + quoted(path) + ": " + errno_text(e));
    }
    ::close(fd);
    if (ours) return {};
  }
  return fail("cannot unlock " + quoted(path) + ": the lock file kept changing; try again");
}

}  // namespace flotilla
