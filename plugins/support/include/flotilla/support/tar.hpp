// Tar archives built in memory (POSIX ustar), for placing files into containers through the
// Engine API's archive upload without running `tar`.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace flotilla::support {

/// One member of an archive: a regular file, a directory when `directory` is set, or a
/// symbolic link to `link_target` when that is not empty.
struct TarEntry {
  std::string path;     ///< relative, '/'-separated, e.g. "etc/haproxy/haproxy.cfg"
  std::string content;  ///< a file's bytes (ignored for a directory)
  mode_t mode = 0644;
  unsigned uid = 0;
  unsigned gid = 0;
  bool directory = false;
  std::string link_target;  ///< at most 100 bytes
};

/// The archive holding `entries` in order, ending with the two zero blocks. Throws
/// std::invalid_argument naming the path when one is empty, absolute, contains "..", or is
/// too long for ustar (a name of at most 100 bytes after a prefix of at most 155).
[[nodiscard]] std::string make_tar(const std::vector<TarEntry>& entries);

/// The regular files, directories and symbolic links of a ustar or GNU/PAX archive (as the
/// Engine API's GET /containers/{id}/archive answers), in order; a PAX `path` or a GNU long
/// name replaces the next member's name, other extended records are skipped. Throws
/// std::invalid_argument when a header's checksum is wrong or a member runs past the end.
[[nodiscard]] std::vector<TarEntry> read_tar(std::string_view archive);

}  // namespace flotilla::support
