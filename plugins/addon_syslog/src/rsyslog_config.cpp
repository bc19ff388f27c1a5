#include "addon_syslog/rsyslog_config.hpp"

#include <climits>
#include <cstdio>

namespace flotilla::syslog_addon {

std::string rs_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string unit = text.substr(i);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b') && unit.size() > 1) unit.pop_back();
  int shift = 0;
  if (unit.empty()) shift = 0;
  else if (unit == "k" || unit == "K") shift = 10;
  else if (unit == "m" || unit == "M") shift = 20;
  else if (unit == "g" || unit == "G") shift = 30;
  else return std::nullopt;
  if (shift > 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::string wire_template(const std::string& node) {
  std::string t;
  t += "template(name=\"flotilla_wire\" type=\"list\") {\n";
  // The node name is a topology name ([a-z0-9-]), safe inside a JSON string.
  t += "  constant(value=" + rs_quote("{\"node\":\"" + node + "\",\"file\":\"") + ")\n";
  t += "  property(name=\"$!metadata!filename\" format=\"json\")\n";
  t += "  constant(value=" + rs_quote("\",\"offset\":") + ")\n";
  t += "  property(name=\"$!metadata!fileoffset\")\n";
  t += "  constant(value=" + rs_quote(",\"ts\":\"") + ")\n";
  t += "  property(name=\"timegenerated\" dateFormat=\"rfc3339\" date.inUTC=\"on\")\n";
  t += "  constant(value=" + rs_quote("\",\"service\":\"") + ")\n";
  t += "  property(name=\"$!flt_service\" format=\"json\")\n";
  t += "  constant(value=" + rs_quote("\",\"instance\":\"") + ")\n";
  t += "  property(name=\"$!flt_instance\" format=\"json\")\n";
  t += "  constant(value=" + rs_quote("\",\"stream\":\"") + ")\n";
  t += "  property(name=\"$!flt_stream\" format=\"json\")\n";
  t += "  constant(value=" + rs_quote("\",\"msg\":\"") + ")\n";
  t += "  property(name=\"msg\" format=\"json\")\n";
  t += "  constant(value=" + rs_quote("\"}") + ")\n";
  t += "}\n";
  return t;
}

std::string render_shipper(const ShipperConfig& c) {
  if (c.node.empty()) throw std::invalid_argument("shipper config needs a node name");
  if (c.collector_address.empty()) throw std::invalid_argument("shipper config needs the collector's address");
  const std::filesystem::path workloads = c.node_workdir / "workloads";
  std::string s;
  s += "# Shipper of node " + c.node + ", rendered by the Flotilla syslog addon; `flotilla up` rewrites it.\n";
  s += "# Tails every workload's stdout.log/stderr.log and forwards each line over RELP.\n";
  // Control characters stay as they are: the wire template escapes them as JSON.
  s += "global(workDirectory=" + rs_quote(c.work_dir.string()) + " maxMessageSize=\"" + kShipperMaxMessageSize +
       "\" parser.escapeControlCharactersOnReceive=\"off\")\n";
  // One worker keeps each file's lines in order. The queue lives in memory only: the workload's
  // log files are the shipper's buffer. When the collector is unreachable the forward retries
  // without end, the queue fills, and imfile (a delayable input) waits at the queue's full-delay
  // mark instead of reading on, so nothing is dropped however long the outage. A shipper that
  // stops drops its queue and reads its files again from the start (see shipper_command); the
  // collector drops what it already has. No disk queue: rsyslog's disk-assisted queues lost
  // lines when they spilled while the collector restarted under load.
  s += "main_queue(queue.type=\"LinkedList\" queue.workerThreads=\"1\" queue.size=\"20000\")\n";
  s += "module(load=\"imfile\" mode=\"inotify\")\n";
  s += "module(load=\"omrelp\")\n";
  s += wire_template(c.node);
  s += "ruleset(name=\"flotilla_ship\") {\n";
  if (!c.exclude_prefix.empty())
    s += "  if $!metadata!filename startswith " + rs_quote((workloads / c.exclude_prefix).string()) + " then stop\n";
  // The RELP window bounds the frames in flight per session; the default of 128 stalls on TCP's
  // delayed acknowledgement (about 3,500 lines/s here, 65,000+ with 1,024). Frames in flight
  // when a session breaks are sent again, and the collector drops them as resends.
  s += "  action(type=\"omrelp\" name=\"to_collector\" target=" + rs_quote(c.collector_address) + " port=\"" +
       std::to_string(c.collector_port) + "\" template=\"flotilla_wire\" windowSize=\"4096\"\n";
  s += "         action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\" action.resumeIntervalMax=\"5\")\n";
  s += "}\n";
  for (const char* stream : {"stdout", "stderr"}) {
    s += "input(type=\"imfile\" file=" + rs_quote((workloads / "*" / (std::string(stream) + ".log")).string()) +
         " tag=\"" + stream + "\" addMetadata=\"on\" reopenOnTruncate=\"on\" ruleset=\"flotilla_ship\")\n";
  }
  int i = 0;
  for (const ExtraFile& f : c.extra_files) {
    const std::string rs = "flotilla_extra_" + std::to_string(i++);
    s += "ruleset(name=\"" + rs + "\") {\n";
    s += "  set $!flt_service = " + rs_quote(f.service) + ";\n";
    s += "  set $!flt_instance = " + rs_quote(f.instance) + ";\n";
    s += "  set $!flt_stream = " + rs_quote(f.stream) + ";\n";
    s += "  call flotilla_ship\n";
    s += "}\n";
    s += "input(type=\"imfile\" file=" + rs_quote(f.path) + " tag=\"extra\" addMetadata=\"on\" reopenOnTruncate=\"on\" ruleset=\"" +
         rs + "\")\n";
  }
  s += "# rsyslogd's own messages (a suspended forward, a bad file) go to this workload's stderr.log.\n";
  s += "action(type=\"omfile\" file=\"/dev/stderr\")\n";
  return s;
}

std::string logstore_command(const CollectorConfig& c) {
  std::string addons;
  for (const auto& a : c.addon_names) addons += (addons.empty() ? "" : ",") + a;
  std::string cmd = c.logstore.string() + " --store " + c.store_dir.string() + " --max-file-size " +
                    std::to_string(c.max_file_size) + " --retention-days " + std::to_string(c.retention_days);
  if (!addons.empty()) cmd += " --addons " + addons;
  return cmd;
}

std::optional<std::string> collector_config_problem(const CollectorConfig& c) {
  auto has_space = [](const std::string& s) { return s.find_first_of(" \t\n\r\"") != std::string::npos; };
  if (has_space(c.logstore.string()))
    return "the path of flotilla-logstore (" + c.logstore.string() + ") contains whitespace or a quote; rsyslog's omprog cannot run it";
  if (has_space(c.store_dir.string()))
    return "the log store directory " + c.store_dir.string() + " contains whitespace or a quote; rsyslog's omprog cannot pass it";
  for (const auto& a : c.addon_names)
    if (has_space(a) || a.find(',') != std::string::npos) return "addon name `" + a + "` contains whitespace, a quote or a comma";
  return std::nullopt;
}

std::string render_collector(const CollectorConfig& c) {
  if (auto problem = collector_config_problem(c)) throw std::invalid_argument(*problem);
  if (c.address.empty()) throw std::invalid_argument("collector config needs an address");
  std::string s;
  s += "# Log collector, rendered by the Flotilla syslog addon; `flotilla up` rewrites it.\n";
  s += "# Receives the shippers' lines over RELP and hands each to flotilla-logstore, which writes\n";
  s += "# " + c.store_dir.string() + "/<service>/<YYYY-MM-DD>.jsonl, drops duplicates and rotates.\n";
  s += "global(workDirectory=" + rs_quote(c.work_dir.string()) + " maxMessageSize=\"" + kCollectorMaxMessageSize +
       "\" parser.escapeControlCharactersOnReceive=\"off\")\n";
  // imrelp acknowledges a frame once it has been submitted. With a direct main queue, submitting
  // runs the store action in imrelp's own thread, so a RELP acknowledgement means "flotilla-logstore
  // has stored it": nothing acknowledged waits in a queue that a stop or a kill could lose
  // (a queued collector lost a whole dequeued batch now and then when stopped mid-stream). A line
  // stored but not yet acknowledged is sent again and dropped as a resend. While the store fails,
  // imrelp stops acknowledging and the shippers' own queues hold the lines.
  s += "main_queue(queue.type=\"Direct\")\n";
  s += "module(load=\"imrelp\")\n";
  s += "module(load=\"omprog\")\n";
  s += "template(name=\"flotilla_store\" type=\"string\" string=\"%rawmsg%\\n\")\n";
  s += "ruleset(name=\"flotilla_store\") {\n";
  s += "  action(type=\"omprog\" name=\"logstore\" binary=" + rs_quote(logstore_command(c)) + " template=\"flotilla_store\"\n";
  // closeTimeout: how long a stopping rsyslogd waits for the program's output to end. It tears
  // the output capture down before it closes the program's input, so the whole wait was spent
  // on every stop (5 s by default); the program is never killed for it and ends on its own.
  s += "         confirmMessages=\"on\" confirmTimeout=\"120000\" reportFailures=\"on\" output=\"/dev/stderr\" closeTimeout=\"500\"\n";
  s += "         action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\" action.resumeIntervalMax=\"5\")\n";
  s += "}\n";
  s += "input(type=\"imrelp\" name=\"from_shippers\" address=" + rs_quote(c.address) + " port=\"" + std::to_string(c.port) +
       "\" maxDataSize=\"16777216\" ruleset=\"flotilla_store\")\n";
  s += "# rsyslogd's own messages go to this workload's stderr.log.\n";
  s += "action(type=\"omfile\" file=\"/dev/stderr\")\n";
  return s;
}

std::vector<std::string> rsyslogd_command(const std::filesystem::path& conf, const std::filesystem::path& pid_file) {
  return {kRsyslogd, "-n", "-f", conf.string(), "-i", pid_file.string()};
}

std::vector<std::string> shipper_command(const std::filesystem::path& work_dir, const std::filesystem::path& conf,
                                                const std::filesystem::path& pid_file) {
  return {"/bin/sh", "-c", std::string("rm -f \"$0\"/imfile-state:* && exec ") + kRsyslogd + " -n -f \"$1\" -i \"$2\"",
          work_dir.string(), conf.string(), pid_file.string()};
}

}  // namespace flotilla::syslog_addon
