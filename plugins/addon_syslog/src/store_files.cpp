#include "addon_syslog/store_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>

namespace flotilla::syslog_addon {

std::optional<StoreFile> parse_store_file_name(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.size() < 16 || name.compare(name.size() - 6, 6, ".jsonl") != 0) return std::nullopt;
  const std::string day = name.substr(0, 10);
  for (std::size_t i = 0; i < 10; ++i) {
    const bool digit = day[i] >= '0' && day[i] <= '9';
    if ((i == 4 || i == 7) ? day[i] != '-' : !digit) return std::nullopt;
  }
  const std::string middle = name.substr(10, name.size() - 16);
  StoreFile f{path, day, 0};
  if (middle.empty()) return f;
  if (middle.size() < 2 || middle[0] != '.' ||
      !std::all_of(middle.begin() + 1, middle.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  f.part = std::stoi(middle.substr(1));
  return f.part > 0 ? std::optional<StoreFile>(f) : std::nullopt;
}

std::vector<StoreFile> list_store_files(const std::filesystem::path& service_dir) {
  std::vector<StoreFile> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(service_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto f = parse_store_file_name(it->path())) files.push_back(*f);
  }
  std::sort(files.begin(), files.end(), [](const StoreFile& a, const StoreFile& b) {
    if (a.day != b.day) return a.day < b.day;
    const long pa = a.part == 0 ? LONG_MAX : a.part, pb = b.part == 0 ? LONG_MAX : b.part;
    return pa < pb;
  });
  return files;
}

void StoreWriter::append(const std::string& service, const std::string& day, const std::string& record) {
  const std::filesystem::path path = dir_ / service / (day + ".jsonl");
  Open* f = &open(path);
  const std::uint64_t need = record.size() + 1;
  if (f->size > 0 && f->size + need > max_file_size_) {
    rotate(path);
    f = &open(path);
  }
  std::string buf;
  buf.reserve(need);
  buf += record;
  buf += '\n';
  std::size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(f->fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close_one(path);
      throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(e));
    }
    done += static_cast<std::size_t>(n);
  }
  f->size += buf.size();
}

int StoreWriter::enforce_retention(std::chrono::system_clock::time_point now) {
  if (retention_days_ <= 0) return 0;
  const std::time_t cutoff_t = std::chrono::system_clock::to_time_t(now) - static_cast<std::time_t>(retention_days_) * 86400;
  std::tm tm{};
  ::gmtime_r(&cutoff_t, &tm);
  char cutoff[48];
  std::snprintf(cutoff, sizeof cutoff, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  int removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory()) continue;
    for (const StoreFile& f : list_store_files(it->path())) {
      if (f.day >= cutoff) continue;
      close_one(f.path);
      std::error_code rm;
      if (std::filesystem::remove(f.path, rm)) ++removed;
    }
    std::error_code rm;
    if (std::filesystem::is_empty(it->path(), rm)) std::filesystem::remove(it->path(), rm);
  }
  return removed;
}

void StoreWriter::close_all() {
  for (auto& [path, f] : open_) ::close(f.fd);
  open_.clear();
}

StoreWriter::Open& StoreWriter::open(const std::filesystem::path& path) {
  if (auto it = open_.find(path.string()); it != open_.end()) return it->second;
  if (open_.size() >= kMaxOpen) close_all();  // rare: many services or days at once
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  return open_[path.string()] = Open{fd, static_cast<std::uint64_t>(st.st_size)};
}

void StoreWriter::close_one(const std::filesystem::path& path) {
  if (auto it = open_.find(path.string()); it != open_.end()) {
    ::close(it->second.fd);
    open_.erase(it);
  }
}

void StoreWriter::rotate(const std::filesystem::path& path) {
  close_one(path);
  const std::string day = path.stem().string();
  int next = 1;
  for (const StoreFile& f : list_store_files(path.parent_path()))
    if (f.day == day && f.part >= next) next = f.part + 1;
  const std::filesystem::path target = path.parent_path() / (day + "." + std::to_string(next) + ".jsonl");
  std::error_code ec;
  std::filesystem::rename(path, target, ec);
  if (ec) throw std::runtime_error("cannot rotate " + path.string() + " to " + target.string() + ": " + ec.message());
}

}  // namespace flotilla::syslog_addon
