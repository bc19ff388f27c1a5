// The state journal: the engine's in-memory copy of the recorded state, changed by steps
// running in parallel and saved through a StateStore with group commit.
#pragma once

#include "state_store.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace flotilla {

class StateJournal {
 public:
  /// `stamp` is applied to the state before every save (format version, serial, cluster...).
  StateJournal(StateStore& store, std::function<void(json&)> stamp) : store_(store), stamp_(std::move(stamp)) {}

  /// Loads the recorded state from the store, passes it through `migrate` (when given) and
  /// makes it the journal's copy.
  [[nodiscard]] Result<json> load(const std::function<json(json)>& migrate = {});
  /// A copy of the current state (including changes not yet on disk).
  [[nodiscard]] json snapshot();
  /// Runs `fn` on the current state in place, under the journal's lock: for a caller that
  /// needs a few records, where a snapshot would copy the whole state. `fn` must not commit.
  void read(const std::function<void(const json&)>& fn);
  /// Applies `fn` to the state, stamps it and returns once a save holding the change has
  /// reached the store; fails with that save's error when it did not.
  [[nodiscard]] Result<void> commit(const std::function<void(json&)>& fn);
  /// commit, for a change that may turn out to be none: `fn` returns whether it changed the
  /// state. When it did not, no save is made for it; the call still returns only once the state
  /// it saw is on disk (a save of an earlier change may be under way).
  [[nodiscard]] Result<void> commit_if(const std::function<bool(json&)>& fn);

 private:
  /// With mu_ held: saves (or waits for a save of) every change up to `mine`.
  [[nodiscard]] Result<void> saved_through(std::unique_lock<std::mutex>& lock, std::uint64_t mine);

  StateStore& store_;
  std::function<void(json&)> stamp_;
  std::mutex mu_;
  json state_ = json::object();
  // Group commit, guarded by mu_: changes made, changes saved, and the last failed save,
  // which fails the commits whose changes it held.
  std::condition_variable saved_cv_;
  std::uint64_t changes_ = 0;
  std::uint64_t saved_ = 0;
  std::uint64_t failed_ = 0;
  Error save_error_;
  bool saving_ = false;
};

}  // namespace flotilla
