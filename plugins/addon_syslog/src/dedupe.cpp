#include "addon_syslog/dedupe.hpp"

#include <algorithm>
#include <iterator>

namespace flotilla::syslog_addon {

std::optional<std::uint32_t> Dedupe::accept(const std::string& source, std::uint64_t offset, std::uint64_t length, std::uint64_t hash) {
  Source& src = sources_[source];
  if (covered(src, offset)) {
    const auto it = src.recent_hash.find(offset);
    const bool other_text = (it != src.recent_hash.end() && it->second != hash) ||
                            (it == src.recent_hash.end() && offset == 0 && src.has_first && src.first_hash != hash);
    if (!other_text) return std::nullopt;
    start_generation(src, src.gen + 1);
  }
  remember(src, offset, length, hash);
  return src.gen;
}

void Dedupe::replay(const std::string& source, std::uint64_t offset, std::uint64_t length, std::uint64_t hash, std::uint32_t gen) {
  Source& src = sources_[source];
  if (gen < src.gen) return;
  if (gen > src.gen) start_generation(src, gen);
  if (!covered(src, offset)) remember(src, offset, length, hash);
}

std::size_t Dedupe::ranges(const std::string& source) const {
  const auto it = sources_.find(source);
  return it == sources_.end() ? 0 : it->second.ranges.size();
}

bool Dedupe::covered(const Source& s, std::uint64_t offset) {
  auto it = s.ranges.upper_bound(offset);
  if (it == s.ranges.begin()) return false;
  --it;
  return offset < it->second;
}

void Dedupe::start_generation(Source& s, std::uint32_t gen) {
  s = Source{};
  s.gen = gen;
}

void Dedupe::remember(Source& s, std::uint64_t offset, std::uint64_t length, std::uint64_t hash) {
  std::uint64_t start = offset, end = offset + length + 1;
  // A gap of one byte between ranges is an empty line, which imfile never ships: close it.
  auto next = s.ranges.lower_bound(start);
  if (next != s.ranges.end() && next->first <= end + 1) {
    end = std::max(end, next->second);
    next = s.ranges.erase(next);
  }
  if (next != s.ranges.begin()) {
    auto prev = std::prev(next);
    if (prev->second + 1 >= start) {
      start = prev->first;
      end = std::max(end, prev->second);
      s.ranges.erase(prev);
    }
  }
  s.ranges[start] = end;
  if (offset == 0) {
    s.first_hash = hash;
    s.has_first = true;
  }
  if (s.recent_hash.emplace(offset, hash).second) s.recent.push_back(offset);
  while (s.recent.size() > window_) {
    s.recent_hash.erase(s.recent.front());
    s.recent.pop_front();
  }
}

}  // namespace flotilla::syslog_addon
