#include "addon_syslog/log_store.hpp"

#include "flotilla/support/encoding.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <system_error>

namespace flotilla::syslog_addon {

std::uint64_t rebuild_dedupe(Dedupe& dedupe, const std::filesystem::path& store) {
  std::uint64_t lines = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(store, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory()) continue;
    for (const StoreFile& f : list_store_files(it->path())) {
      std::ifstream in(f.path, std::ios::binary);
      std::string line;
      while (std::getline(in, line)) {
        const auto p = stored_prefix(line);
        if (!p) continue;
        const auto sk = split_key(p->key);
        if (!sk) continue;
        dedupe.replay(sk->first, sk->second, p->len, p->hash, p->gen);
        ++lines;
      }
    }
  }
  return lines;
}

std::uint64_t LogStore::open() {
  std::error_code ec;
  std::filesystem::create_directories(opts_.dir, ec);
  if (ec) throw std::runtime_error("cannot create the log store " + opts_.dir.string() + ": " + ec.message());
  writer_.enforce_retention(std::chrono::system_clock::now());
  return rebuild_dedupe(dedupe_, opts_.dir);
}

LogStore::Outcome LogStore::ingest(std::string_view wire) {
  auto line = parse_wire(wire, opts_.addons, &origins_);
  if (!line) {
    // Kept, not dropped: nothing is lost, and the reader shows it under "_unparsed".
    nlohmann::ordered_json j;
    const std::string ts = now_ts();
    j["ts"] = ts;
    j["msg"] = std::string(wire);
    if (!support::valid_utf8(wire)) j["msg_b64"] = support::base64_encode(wire);
    writer_.append("_unparsed", ts.substr(0, 10), j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
    return Outcome::unparsed;
  }
  const std::string source = line->node + ":" + line->file;
  const auto gen = dedupe_.accept(source, line->offset, line->msg.size(), line->hash);
  if (!gen) return Outcome::duplicate;
  line->gen = *gen;
  try {
    writer_.append(safe_dir_name(line->origin.service), line->ts.substr(0, 10), render_stored(*line));
  } catch (...) {
    // Not stored, so a resend must not look like a duplicate: forget it by starting over
    // from the store (rare: only after an I/O error).
    dedupe_ = Dedupe();
    rebuild_dedupe(dedupe_, opts_.dir);
    throw;
  }
  return Outcome::stored;
}

}  // namespace flotilla::syslog_addon
