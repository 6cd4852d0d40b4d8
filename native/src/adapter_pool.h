// The tiered adapter pool: disk (registered PEFT folders) → host tier (parsed f32 adapters under a
// byte budget, LRU) → backend tier (a fixed arena of equal-size pages in backend memory; adapters
// of any rank share it without fragmentation: rows are packed into pages, a row never straddles a
// page). Loads run on a loader thread; the engine thread only pins, unpins and polls.
//
// Pages: page_floats = the longest LoRA row of the model (max of hidden, intermediate, q and kv
// widths), rounded up to 16 floats. An adapter's A rows (proj_in floats each) and Bt rows
// (proj_out floats each) are packed in module order; its page count is known at registration.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend.h"
#include "longtail/runtime.h"
#include "model_internal.h"

namespace longtail {

struct AdapterPoolOptions {
  size_t pool_bytes = 0;  // backend tier; rounded down to whole pages (at least one adapter's worth is not required)
  size_t host_bytes = 0;  // host tier budget (Adapter::bytes() of each parsed adapter)
};

struct AdapterPoolImpl;

class AdapterPool {
 public:
  AdapterPool(const Model& model, Backend& backend, AdapterPoolOptions options);
  ~AdapterPool();  // waits for the load in flight, frees the arena

  // Any thread. Validates by loading the folder (throws the loader's Error), keeps the parsed
  // adapter in the host tier if it fits. Throws if `name` is taken or the adapter needs more
  // pages than the whole pool has.
  AdapterId add(const std::string& name, const std::string& dir);
  // Any thread. Throws Error if the adapter is pinned; waits for its load in flight; frees pages.
  void remove(AdapterId id);
  // Any thread. -1 when unknown.
  AdapterId find(const std::string& name) const;

  // Engine thread. Resident: pins it (pin count + 1), marks it most recently used, returns its
  // view. Not resident: returns nullptr, and unless a load is already under way starts one,
  // first evicting least-recently-used unpinned resident adapters until its pages fit (if even
  // that cannot free enough pages, nothing starts; call again later).
  // With start_load = false a miss only returns nullptr (the scheduler limits how many loads it
  // starts per step, so a long queue cannot evict what the head of the queue is about to use).
  // `started` (when given) says whether this call queued a load.
  const AdapterView* acquire(AdapterId id, bool start_load = true, bool* started = nullptr);
  // Engine thread. True while a load of `id` is queued or running.
  bool loading(AdapterId id) const;
  void release(AdapterId id);  // unpin
  // Engine thread. True (and the message) when the last load of `id` failed (e.g. the folder
  // changed on disk after registration); clears the failure so a later acquire retries.
  bool take_failure(AdapterId id, std::string* message);
  bool loads_pending() const;

  // Fills the adapter fields of `s` (registered, resident, in_use, pages, host bytes, evictions,
  // bytes loaded, load time percentiles per tier). Hits and misses are counted by the caller.
  void fill_stats(RuntimeStats& s) const;
  size_t page_floats() const;
  size_t pages_needed(AdapterId id) const;

 private:
  std::unique_ptr<AdapterPoolImpl> impl_;
};

}  // namespace longtail
