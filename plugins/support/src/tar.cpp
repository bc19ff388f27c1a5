#include "flotilla/support/tar.hpp"

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

}  // namespace

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
