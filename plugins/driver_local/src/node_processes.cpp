#include "driver_local/node_processes.hpp"

#include "flotilla/support/process.hpp"
#include "flotilla/support/request.hpp"
#include "flotilla/support/wait.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <system_error>

namespace flotilla::local {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool alive(const NodeProcess& p) {
  return flotilla::support::is_running({p.pid, p.start_time});
}

bool inside(const fs::path& dir, const fs::path& root) {
  auto d = dir.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++d) {
    if (r->empty()) continue;  // a trailing separator
    if (d == dir.end() || *d != *r) return false;
  }
  return true;
}

// A pidfd pins the process while it is checked and signalled, so a pid reused in between is
// never hit.
void signal_group(const NodeProcess& p, int sig) {
  const int pidfd = flotilla::support::pidfd_open(p.pid, 0);
  if (pidfd < 0) return;
  if (alive(p)) ::kill(-p.pid, sig);
  ::close(pidfd);
}

bool wait_gone(const std::vector<NodeProcess>& found, std::chrono::milliseconds limit, const std::function<bool()>& cancelled) {
  return flotilla::support::wait_until(limit, 20ms, [&] { return std::none_of(found.begin(), found.end(), alive); }, cancelled);
}

}  // namespace

std::vector<NodeProcess> node_processes(const fs::path& workdir) {
  std::vector<NodeProcess> out;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(workdir, ec);
  if (ec) return out;
  const pid_t self = ::getpid();
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.empty() || !std::all_of(file.begin(), file.end(), ::isdigit)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(file));
    if (pid == self) continue;
    const auto stat = flotilla::support::read_proc_stat(pid);
    if (!stat || stat->sid != pid || stat->tty_nr != 0 || stat->state == 'Z') continue;
    std::error_code cwd_ec;
    const fs::path cwd = fs::read_symlink(entry.path() / "cwd", cwd_ec);  // fails for others' processes: not ours to end
    if (cwd_ec || !inside(cwd, root)) continue;
    out.push_back({pid, stat->start_time, stat->comm});
  }
  return out;
}

bool end_processes(const std::vector<NodeProcess>& found, std::chrono::milliseconds grace, const std::function<bool()>& cancelled) {
  for (const auto& p : found) signal_group(p, SIGTERM);
  if (wait_gone(found, grace, cancelled)) return true;
  for (const auto& p : found) signal_group(p, SIGKILL);
  return wait_gone(found, 5s, {});
}

}  // namespace flotilla::local
