#include "addon_haproxy/haproxy_binary.hpp"

#include "flotilla/support/files.hpp"
#include "flotilla/support/process.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <system_error>

namespace flotilla::haproxy {

namespace {
constexpr std::size_t kMaxOutput = 65536;
}  // namespace

std::optional<std::filesystem::path> find_haproxy() {
  if (auto found = support::find_executable("haproxy", {.first = {}, .path = std::nullopt, .sbin = false}))
    return found;
  return support::find_executable("haproxy", {.first = {}, .path = "/usr/sbin:/usr/local/sbin:/sbin", .sbin = false});
}

ConfigCheck check_config(const std::filesystem::path& binary, const std::filesystem::path& file,
                         std::chrono::milliseconds timeout) {
  // HAProxy's messages go to a file beside the config (stdout and stderr both appended to it).
  const std::filesystem::path log = file.string() + ".check";
  std::error_code ec;
  std::filesystem::remove(log, ec);
  support::SpawnOptions run;
  run.argv = {binary.string(), "-c", "-f", file.string()};
  run.stdout_path = log;
  run.stderr_path = log;
  const support::ProcessId child = support::spawn(run);
  std::optional<int> status = support::reap_child(child.pid, timeout);
  const bool timed_out = !status;
  if (timed_out) {
    support::signal_process(child, SIGKILL);
    status = support::reap_child(child.pid, std::chrono::seconds(5));
  }
  ConfigCheck result;
  result.valid = !timed_out && status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
  std::string output = support::read_file_if_exists(log).value_or("");
  std::filesystem::remove(log, ec);
  if (output.size() > kMaxOutput) output.resize(kMaxOutput);
  // `-q` would hide the alerts too; drop only the version notices instead.
  std::size_t start = 0;
  while (start < output.size()) {
    auto end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    const std::string_view line(output.data() + start, end - start);
    if (line.find("[NOTICE]") == std::string_view::npos && !line.empty()) result.output.append(line).append("\n");
    start = end + 1;
  }
  if (timed_out) result.output += "\nhaproxy -c did not finish within " + std::to_string(timeout.count()) + " ms";
  return result;
}

}  // namespace flotilla::haproxy
