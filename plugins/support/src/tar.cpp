#include "flotilla/support/tar.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace flotilla::support {
namespace {

constexpr size_t kBlock = 512;

/// Writes `value` as a zero-padded octal number of `width - 1` digits and a NUL; throws when
/// it does not fit.
void put_octal(char* field, size_t width, unsigned long long value) {
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  if (value != 0) throw std::invalid_argument("tar member: a size or id is too large for a ustar header");
}

void check_path(const std::string& path) {
  if (path.empty() || path.front() == '/')
    throw std::invalid_argument("tar member \"" + path + "\": the path must be relative and not empty");
  size_t at = 0;
  while (at <= path.size()) {
    const size_t slash = path.find('/', at);
    const std::string part = path.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
    if (part == "..") throw std::invalid_argument("tar member \"" + path + "\": \"..\" is not allowed in a path");
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
}

/// Splits `path` into ustar's prefix (<= 155 bytes) and name (<= 100 bytes).
std::pair<std::string, std::string> split_name(const std::string& path) {
  if (path.size() <= 100) return {"", path};
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (slash <= 155 && path.size() - slash - 1 <= 100 && path.size() - slash - 1 > 0) return {path.substr(0, slash), path.substr(slash + 1)};
  }
  throw std::invalid_argument("tar member \"" + path + "\": the path is too long for a ustar archive");
}

std::string header(const TarEntry& entry, const std::string& path) {
  char h[kBlock];
  std::memset(h, 0, sizeof h);
  const auto [prefix, name] = split_name(path);
  std::memcpy(h, name.data(), name.size());
  put_octal(h + 100, 8, entry.mode & 07777);
  put_octal(h + 108, 8, entry.uid);
  put_octal(h + 116, 8, entry.gid);
  const bool link = !entry.link_target.empty();
  if (entry.link_target.size() > 100) throw std::invalid_argument("tar member \"" + path + "\": the link target is too long for ustar");
  std::memcpy(h + 157, entry.link_target.data(), entry.link_target.size());
  put_octal(h + 124, 12, entry.directory || link ? 0 : entry.content.size());
  put_octal(h + 136, 12, 0);  // mtime: fixed, so the same files make the same archive
  h[156] = entry.directory ? '5' : link ? '2' : '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), prefix.size());
  // The checksum is computed with its own field taken as eight spaces.
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put_octal(h + 148, 7, sum);
  h[155] = ' ';
  return std::string(h, sizeof h);
}

/// The octal (or, for large values, base-256) number in a header field.
unsigned long long get_number(const char* field, size_t width) {
  if (static_cast<unsigned char>(field[0]) & 0x80) {
    unsigned long long v = static_cast<unsigned char>(field[0]) & 0x7f;
    for (size_t i = 1; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(field[i]);
    return v;
  }
  unsigned long long v = 0;
  for (size_t i = 0; i < width && field[i] != '\0'; ++i) {
    if (field[i] == ' ') continue;
    if (field[i] < '0' || field[i] > '7') throw std::invalid_argument("tar archive: a header holds a malformed number");
    v = (v << 3) | static_cast<unsigned>(field[i] - '0');
  }
  return v;
}

std::string get_text(const char* field, size_t width) { return std::string(field, strnlen(field, width)); }

/// The `path` record of a PAX extended header ("LEN path=VALUE\n" records), or "".
std::string pax_path(std::string_view records) {
  while (!records.empty()) {
    const size_t space = records.find(' ');
    if (space == std::string_view::npos) break;
    const size_t len = std::stoul(std::string(records.substr(0, space)));
    if (len <= space || len > records.size()) break;
    const std::string_view record = records.substr(space + 1, len - space - 2);  // without the newline
    if (record.starts_with("path=")) return std::string(record.substr(5));
    records.remove_prefix(len);
  }
  return {};
}

}  // namespace

std::vector<TarEntry> read_tar(std::string_view archive) {
  std::vector<TarEntry> out;
  std::string next_name;
  for (size_t at = 0; at + kBlock <= archive.size();) {
    const char* h = archive.data() + at;
    if (std::all_of(h, h + kBlock, [](char c) { return c == '\0'; })) break;
    unsigned sum = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    if (sum != get_number(h + 148, 8)) throw std::invalid_argument("tar archive: a header's checksum is wrong at offset " + std::to_string(at));
    const size_t size = get_number(h + 124, 12);
    const size_t data = at + kBlock;
    if (data + size > archive.size()) throw std::invalid_argument("tar archive: a member runs past the end of the archive");
    const std::string_view content = archive.substr(data, size);
    at = data + (size + kBlock - 1) / kBlock * kBlock;
    const char type = h[156];
    if (type == 'x') {
      next_name = pax_path(content);
      continue;
    }
    if (type == 'L') {
      next_name = std::string(content.substr(0, content.find('\0')));
      continue;
    }
    if (type == 'g' || (type != '0' && type != '\0' && type != '5' && type != '2')) continue;
    TarEntry e;
    const std::string prefix = std::memcmp(h + 257, "ustar", 5) == 0 ? get_text(h + 345, 155) : std::string();
    e.path = !next_name.empty() ? next_name : prefix.empty() ? get_text(h, 100) : prefix + "/" + get_text(h, 100);
    next_name.clear();
    e.mode = static_cast<mode_t>(get_number(h + 100, 8) & 07777);
    e.uid = static_cast<unsigned>(get_number(h + 108, 8));
    e.gid = static_cast<unsigned>(get_number(h + 116, 8));
    e.directory = type == '5';
    if (type == '2') e.link_target = get_text(h + 157, 100);
    else if (!e.directory) e.content = std::string(content);
    if (e.directory && e.path.ends_with('/')) e.path.pop_back();
    out.push_back(std::move(e));
  }
  return out;
}

std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string out;
  for (const TarEntry& entry : entries) {
    check_path(entry.path);
    std::string path = entry.path;
    if (entry.directory && path.back() != '/') path += '/';
    out += header(entry, path);
    if (entry.directory || !entry.link_target.empty()) continue;
    out += entry.content;
    out.append((kBlock - entry.content.size() % kBlock) % kBlock, '\0');
  }
  out.append(2 * kBlock, '\0');
  return out;
}

}  // namespace flotilla::support
