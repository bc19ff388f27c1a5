// One line of the log store: the shipper's wire record it comes from, where it came from
// (service, instance, stream), and the JSON line it is stored as. docs/addons/syslog.md
// documents the stored format; the reader and the writer both go through here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace flotilla::syslog_addon {

/// Where a line came from, as stored.
struct Origin {
  std::string service;
  std::string instance;
  std::string stream;
};

/// A name usable as one directory: [a-z0-9._-] kept, anything else becomes '_'.
std::string safe_dir_name(std::string_view name);

/// Service, instance and stream of a workload log file <...>/workloads/<workload>/<stream>.log:
/// "service-hello-v1-3" is service hello-v1, instance 3; "addon-<addon>-<component>" is service
/// addon-<addon>, instance <component> (the longest known addon name wins); anything else is
/// its own service.
Origin derive_origin(const std::string& file, const std::vector<std::string>& addons);

/// Converts an RFC 3339 time ("2026-11-25T14:38:51.743351+00:00") to UTC with six fractional
/// digits and a Z ("2026-11-25T14:38:51.743351Z"); nullopt if it is not one.
std::optional<std::string> normalize_ts(std::string_view ts);

/// The current UTC time in the store's format.
std::string now_ts();

/// A line as stored, before it is written.
struct StoredLine {
  std::string key;  // "<node>:<file>:<offset>"
  std::uint64_t hash = 0;
  std::string ts;
  std::string node;
  Origin origin;
  std::string file;
  std::uint64_t offset = 0;
  std::uint32_t gen = 0;  // generation of the file at this path (see Dedupe)
  std::string msg;        // raw bytes
};

/// The store's JSON line (without the newline). `key`, `hash`, `len` and `gen` come first so a
/// restart can rebuild the dedupe table without decoding the text of every line.
std::string render_stored(const StoredLine& l);

/// Parses the shipper's wire record into a StoredLine; nullopt if it lacks node, file or offset.
/// `origins`, when given, remembers each file's origin (deriving it is the costly part).
std::optional<StoredLine> parse_wire(std::string_view line, const std::vector<std::string>& addons,
                                     std::unordered_map<std::string, Origin>* origins = nullptr);

/// What a restart needs of a stored line, read from its start without decoding the text.
struct StoredPrefix {
  std::string key;
  std::uint64_t hash = 0;
  std::uint64_t len = 0;
  std::uint32_t gen = 0;
};

/// The prefix of a stored line; nullopt when the line does not start the way render_stored
/// writes it.
std::optional<StoredPrefix> stored_prefix(std::string_view line);

/// Splits a key "<node>:<file>:<offset>" into its source ("<node>:<file>") and offset.
std::optional<std::pair<std::string, std::uint64_t>> split_key(const std::string& key);

}  // namespace flotilla::syslog_addon
