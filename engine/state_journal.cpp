#include "state_journal.hpp"

namespace flotilla {

Result<json> StateJournal::load(const std::function<json(json)>& migrate) {
  auto s = store_.load();
  if (!s) return s;
  if (migrate) *s = migrate(std::move(*s));
  std::lock_guard lock(mu_);
  state_ = *s;
  return s;
}

json StateJournal::snapshot() {
  std::lock_guard lock(mu_);
  return state_;
}

void StateJournal::read(const std::function<void(const json&)>& fn) {
  std::lock_guard lock(mu_);
  fn(state_);
}

Result<void> StateJournal::commit(const std::function<void(json&)>& fn) {
  return commit_if([&](json& s) {
    fn(s);
    return true;
  });
}

Result<void> StateJournal::commit_if(const std::function<bool(json&)>& fn) {
  std::unique_lock lock(mu_);
  if (!fn(state_)) return saved_through(lock, changes_);
  if (stamp_) stamp_(state_);
  return saved_through(lock, ++changes_);
}

Result<void> StateJournal::saved_through(std::unique_lock<std::mutex>& lock, std::uint64_t mine) {
  // Group commit: one caller saves the newest state for every change made so far, and the
  // callers whose changes it holds return with it. Parallel steps thus share one fsync instead
  // of queueing for one each, and still return only once their change is on disk. A step
  // that reads a change not yet saved cannot act on it before its own commit returns, and
  // that save holds the earlier change too.
  while (saved_ < mine) {
    if (failed_ >= mine) return std::unexpected(save_error_);
    if (saving_) {
      saved_cv_.wait(lock);
      continue;
    }
    saving_ = true;
    const std::uint64_t upto = changes_;
    const json snapshot = state_;
    lock.unlock();
    auto ok = store_.save(snapshot);
    lock.lock();
    saving_ = false;
    if (ok) saved_ = upto;
    else {
      failed_ = upto;
      save_error_ = ok.error();
    }
    saved_cv_.notify_all();
  }
  return {};
}

}  // namespace flotilla
