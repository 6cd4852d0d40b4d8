// The tiered adapter pool (see adapter_pool.h).
//
// One mutex guards every table (entries, free pages, both LRU lists, the job queue, the
// counters). The engine-thread calls (acquire, release, take_failure, loads_pending) only take it
// for short sections; the slow parts of a load (parsing the folder, copying rows into the arena)
// run on the loader thread without it. While an adapter is loading, its pages are reserved for
// it (listed in its entry and not in the free list) and nobody else reads or writes them.
#include "adapter_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace longtail {

namespace {

constexpr size_t kRowAlign = 16;            // floats: every row starts 64-byte aligned in its page
constexpr size_t kMaxLoadSamples = 100000;  // per tier; percentiles over the most recent ones

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// Load-time samples of one tier: the last kMaxLoadSamples in a ring, plus totals over all loads.
struct LoadSamples {
  std::vector<double> ring;
  size_t next = 0;
  uint64_t count = 0;
  double max_ms = 0;

  void add(double ms) {
    if (ring.size() < kMaxLoadSamples) {
      ring.push_back(ms);
    } else {
      ring[next] = ms;
      next = (next + 1) % kMaxLoadSamples;
    }
    ++count;
    max_ms = std::max(max_ms, ms);
  }

  // Sorts the ring: call it on a copy taken under the lock.
  LoadTimes summarize() {
    LoadTimes t;
    t.count = count;
    t.max_ms = max_ms;
    if (ring.empty()) return t;
    std::vector<double>& v = ring;
    auto pct = [&](double p) {  // nearest rank
      size_t k = size_t(std::ceil(p * double(v.size())));
      k = std::min(std::max<size_t>(k, 1), v.size()) - 1;
      std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
      return v[k];
    };
    t.p50_ms = pct(0.50);
    t.p99_ms = pct(0.99);
    return t;
  }
};

enum class State { kIdle, kLoading, kResident };

// Where one row of an adapter lives: the k-th page of the adapter's page list, at a float offset.
struct Slot {
  uint32_t page = 0;
  uint32_t offset = 0;
};

struct Entry {
  AdapterId id = -1;
  std::string name, dir;
  // Layout, fixed at add(): the rank of every (layer, projection), the index of the module's
  // first row in `slots` (A rows, then Bt rows: the order of AdapterView::rows), and the slots.
  std::vector<std::array<int, kNumProj>> ranks;
  std::vector<std::array<uint32_t, kNumProj>> first_row;
  std::vector<Slot> slots;
  size_t pages_needed = 0;

  State state = State::kIdle;
  std::vector<uint32_t> pages;           // reserved (loading) or held (resident); empty when idle
  std::unique_ptr<AdapterView> view;     // resident only
  int pins = 0;
  std::list<AdapterId>::iterator res_it;  // in res_lru while resident

  std::shared_ptr<const Adapter> host;    // host tier (null when not there)
  std::list<AdapterId>::iterator host_it;

  bool failed = false;
  std::string failure;
};

struct Job {
  AdapterId id = -1;
};

}  // namespace

struct AdapterPoolImpl {
  const Model& model;
  Backend& backend;
  AdapterPoolOptions options;
  size_t page_floats = 0;
  size_t pages_total = 0;
  float* arena = nullptr;

  mutable std::mutex mu;
  std::condition_variable work_cv;  // loader: a job was queued, or stop
  std::condition_variable done_cv;  // remove(): a load finished
  std::unordered_map<AdapterId, std::unique_ptr<Entry>> entries;
  std::unordered_map<std::string, AdapterId> names;
  AdapterId next_id = 0;
  std::vector<uint32_t> free_pages;
  std::list<AdapterId> res_lru;   // resident adapters, least recently used first
  std::list<AdapterId> host_lru;  // host tier, least recently used first
  uint64_t host_used = 0;
  // Adapters dropped from the host tier: released by whoever holds the lock, after unlocking, so
  // freeing megabytes never happens inside the engine thread's critical sections.
  std::vector<std::shared_ptr<const Adapter>> dropped;
  std::deque<Job> queue;
  int loading = 0;  // queued or in flight
  bool stop = false;
  uint64_t evictions = 0;
  uint64_t bytes_loaded = 0;
  LoadSamples from_disk, from_host;
  std::thread loader;

  AdapterPoolImpl(const Model& m, Backend& b, AdapterPoolOptions o) : model(m), backend(b), options(o) {
    const ModelConfig& c = m.config();
    size_t longest = 0;
    for (int p = 0; p < kNumProj; ++p) {
      longest = std::max(longest, size_t(std::max(0, proj_in(c, p))));
      longest = std::max(longest, size_t(std::max(0, proj_out(c, p))));
    }
    page_floats = round_up(std::max<size_t>(longest, 1), kRowAlign);
    pages_total = o.pool_bytes / (page_floats * sizeof(float));
    if (pages_total > UINT32_MAX) pages_total = UINT32_MAX;
    if (pages_total) arena = backend.alloc(pages_total * page_floats);
    if (!arena && pages_total) throw Error("cannot allocate the adapter pool (" + std::to_string(o.pool_bytes) + " bytes)");
    // Host memory: touch every page now, so no load pays first-touch page faults (measured on the
    // ~100M model: a rank-16 load from the host tier took 11 ms into fresh pages, ~2 ms into
    // touched ones).
    if (arena && backend.host_memory()) std::memset(arena, 0, pages_total * page_floats * sizeof(float));
    free_pages.reserve(pages_total);
    for (size_t i = pages_total; i-- > 0;) free_pages.push_back(uint32_t(i));  // page 0 taken first
    loader = std::thread([this] { loader_main(); });
  }

  ~AdapterPoolImpl() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    work_cv.notify_all();
    if (loader.joinable()) loader.join();
    if (arena) backend.free(arena);
  }

  Entry* find_entry(AdapterId id) const {
    auto it = entries.find(id);
    return it == entries.end() ? nullptr : it->second.get();
  }

  Entry& get(AdapterId id) const {
    Entry* e = find_entry(id);
    if (!e) throw Error("unknown adapter id " + std::to_string(id));
    return *e;
  }

  float* page_ptr(uint32_t page) const { return arena + size_t(page) * page_floats; }

  // Packs the rows of `w` into pages: module by module (layer-major, projection order), A rows
  // then Bt rows, each row 16-float aligned, never straddling a page.
  void compute_layout(const AdapterWeights& w, Entry& e) const {
    const ModelConfig& c = model.config();
    e.ranks.assign(w.layers.size(), {});
    e.first_row.assign(w.layers.size(), {});
    e.slots.clear();
    size_t npages = 0, off = page_floats;  // off == page_floats: no page open yet
    auto place = [&](size_t len) {
      if (off + len > page_floats) {
        ++npages;
        off = 0;
      }
      e.slots.push_back({uint32_t(npages - 1), uint32_t(off)});
      off += round_up(len, kRowAlign);
    };
    for (size_t l = 0; l < w.layers.size(); ++l) {
      for (int p = 0; p < kNumProj; ++p) {
        const LoraModule& m = w.layers[l][p];
        e.ranks[l][p] = m.rank;
        e.first_row[l][p] = uint32_t(e.slots.size());
        for (int k = 0; k < m.rank; ++k) place(size_t(proj_in(c, p)));
        for (int k = 0; k < m.rank; ++k) place(size_t(proj_out(c, p)));
      }
    }
    e.pages_needed = npages;
  }

  // --- host tier (callers hold mu) ---

  void host_drop(Entry& e) {
    if (!e.host) return;
    host_used -= e.host->bytes();
    host_lru.erase(e.host_it);
    dropped.push_back(std::move(e.host));
  }

  void host_touch(Entry& e) {
    if (e.host) host_lru.splice(host_lru.end(), host_lru, e.host_it);
  }

  // Keeps `a` for `e` if it fits the budget at all, evicting least-recently-used others.
  void host_insert(Entry& e, const std::shared_ptr<const Adapter>& a) {
    if (e.host) {
      host_touch(e);
      return;
    }
    const uint64_t b = a->bytes();
    if (b > options.host_bytes) return;
    while (host_used + b > options.host_bytes && !host_lru.empty()) host_drop(get(host_lru.front()));
    e.host = a;
    host_used += b;
    e.host_it = host_lru.insert(host_lru.end(), e.id);
  }

  // --- backend tier (callers hold mu) ---

  void give_back_pages(Entry& e) {
    for (uint32_t p : e.pages) free_pages.push_back(p);
    e.pages.clear();
  }

  void evict(Entry& e) {
    res_lru.erase(e.res_it);
    e.view.reset();
    give_back_pages(e);
    e.state = State::kIdle;
  }

  // --- loader thread ---

  void loader_main() {
    // Loads yield to the step loop: on a CPU backend the loader competes with the compute threads
    // for cores, and running sequences must keep stepping while an adapter loads.
    ::setpriority(PRIO_PROCESS, pid_t(::syscall(SYS_gettid)), 10);
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      work_cv.wait(lk, [&] { return stop || !queue.empty(); });
      if (stop) break;
      Job job = queue.front();
      queue.pop_front();
      Entry* e = find_entry(job.id);
      if (!e || e->state != State::kLoading) {  // cannot happen: remove() waits for loads
        --loading;
        done_cv.notify_all();
        continue;
      }
      // Everything the copy needs, read under the lock. The entry stays alive until the load
      // ends (remove() waits for it) and its layout never changes after add().
      std::shared_ptr<const Adapter> host = e->host;
      host_touch(*e);
      const std::string dir = e->dir, name = e->name;
      const std::vector<uint32_t> pages = e->pages;
      lk.unlock();

      std::unique_ptr<AdapterView> view;
      std::shared_ptr<const Adapter> loaded;
      std::string error;
      const bool via_host = host != nullptr;
      double ms = 0;
      try {
        const auto t0 = std::chrono::steady_clock::now();
        if (!host) {
          loaded = load_adapter(dir, model);
          check_layout(*e, loaded->weights());
        }
        const Adapter& a = host ? *host : *loaded;
        view = copy_rows(*e, a, pages);
        ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      } catch (const std::exception& ex) {
        error = "adapter " + name + ": " + ex.what();
      }

      lk.lock();
      if (error.empty()) {
        e->view = std::move(view);
        e->state = State::kResident;
        e->res_it = res_lru.insert(res_lru.end(), e->id);
        const Adapter& a = host ? *host : *loaded;
        bytes_loaded += a.bytes();
        (via_host ? from_host : from_disk).add(ms);
        if (loaded) host_insert(*e, loaded);
      } else {
        give_back_pages(*e);
        e->state = State::kIdle;
        e->failed = true;
        e->failure = error;
      }
      --loading;
      done_cv.notify_all();
      // Drop our references (the last one, if the host tier did not keep the adapter) unlocked.
      std::vector<std::shared_ptr<const Adapter>> dead;
      dead.swap(dropped);
      lk.unlock();
      dead.clear();
      host.reset();
      loaded.reset();
      lk.lock();
    }
    // Stopping: queued jobs are dropped.
    for (const Job& j : queue) {
      if (Entry* e = find_entry(j.id)) {
        give_back_pages(*e);
        e->state = State::kIdle;
      }
      --loading;
    }
    queue.clear();
    done_cv.notify_all();
  }

  // The folder may have changed since add(): the layout must still describe it.
  void check_layout(const Entry& e, const AdapterWeights& w) const {
    if (w.layers.size() != e.ranks.size()) throw Error(e.dir + ": changed on disk since registration (layers)");
    for (size_t l = 0; l < w.layers.size(); ++l)
      for (int p = 0; p < kNumProj; ++p)
        if (w.layers[l][p].rank != e.ranks[l][p]) {
          throw Error(e.dir + ": changed on disk since registration (rank of layer " + std::to_string(l) + " " +
                      proj_name(p) + " is " + std::to_string(w.layers[l][p].rank) + ", was " +
                      std::to_string(e.ranks[l][p]) + ")");
        }
  }

  // Copies every A and Bt row of `a` into its slot and builds the view over the pages.
  std::unique_ptr<AdapterView> copy_rows(const Entry& e, const Adapter& a, const std::vector<uint32_t>& pages) {
    const ModelConfig& c = model.config();
    const AdapterWeights& w = a.weights();
    auto slot_ptr = [&](int l, int p, bool is_b, int k) -> float* {
      const int rank = e.ranks[size_t(l)][size_t(p)];
      const Slot& s = e.slots[e.first_row[size_t(l)][size_t(p)] + (is_b ? size_t(rank) : 0) + size_t(k)];
      return page_ptr(pages[s.page]) + s.offset;
    };
    for (size_t l = 0; l < w.layers.size(); ++l) {
      for (int p = 0; p < kNumProj; ++p) {
        const LoraModule& m = w.layers[l][p];
        const size_t in = size_t(proj_in(c, p)), out = size_t(proj_out(c, p));
        for (int k = 0; k < m.rank; ++k) {
          backend.upload(slot_ptr(int(l), p, false, k), m.A + size_t(k) * in, in);
          backend.upload(slot_ptr(int(l), p, true, k), m.Bt + size_t(k) * out, out);
        }
      }
    }
    backend.sync();
    auto view = std::make_unique<AdapterView>();
    build_adapter_view(w, *view, [&](int l, int p, bool is_b, int k) -> const float* {
      return slot_ptr(l, p, is_b, k);
    });
    return view;
  }
};

AdapterPool::AdapterPool(const Model& model, Backend& backend, AdapterPoolOptions options)
    : impl_(std::make_unique<AdapterPoolImpl>(model, backend, options)) {}

AdapterPool::~AdapterPool() = default;

AdapterId AdapterPool::add(const std::string& name, const std::string& dir) {
  AdapterPoolImpl& P = *impl_;
  {
    std::lock_guard<std::mutex> lk(P.mu);
    if (P.names.count(name)) throw Error("adapter name '" + name + "' is already registered");
  }
  // Validate (the slow part) without the lock.
  std::shared_ptr<const Adapter> a = load_adapter(dir, P.model);
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->dir = dir;
  P.compute_layout(a->weights(), *e);
  if (e->pages_needed > P.pages_total) {
    throw Error("adapter " + name + " needs " + std::to_string(e->pages_needed) + " pages, the pool has " +
                std::to_string(P.pages_total) + " (" + std::to_string(P.page_floats * sizeof(float)) +
                " bytes each)");
  }
  std::vector<std::shared_ptr<const Adapter>> dead;  // released after the lock
  std::lock_guard<std::mutex> lk(P.mu);
  if (P.names.count(name)) throw Error("adapter name '" + name + "' is already registered");
  const AdapterId id = P.next_id++;
  e->id = id;
  Entry& ref = *e;
  P.entries.emplace(id, std::move(e));
  P.names.emplace(name, id);
  P.host_insert(ref, a);
  dead.swap(P.dropped);
  return id;
}

void AdapterPool::remove(AdapterId id) {
  AdapterPoolImpl& P = *impl_;
  std::vector<std::shared_ptr<const Adapter>> dead;  // released after the lock
  std::unique_ptr<Entry> gone;
  std::unique_lock<std::mutex> lk(P.mu);
  for (;;) {
    Entry& e = P.get(id);
    if (e.pins > 0) throw Error("adapter " + e.name + " is in use");
    if (e.state != State::kLoading) break;
    P.done_cv.wait(lk);  // then look it up again: it may have been pinned or removed meanwhile
  }
  Entry& e = P.get(id);
  if (e.state == State::kResident) {
    P.res_lru.erase(e.res_it);
    P.give_back_pages(e);
  }
  P.host_drop(e);
  dead.swap(P.dropped);
  P.names.erase(e.name);
  auto it = P.entries.find(id);
  gone = std::move(it->second);
  P.entries.erase(it);
  lk.unlock();
}

AdapterId AdapterPool::find(const std::string& name) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->names.find(name);
  return it == impl_->names.end() ? -1 : it->second;
}

bool AdapterPool::loading(AdapterId id) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->get(id).state == State::kLoading;
}

const AdapterView* AdapterPool::acquire(AdapterId id, bool start_load, bool* started) {
  AdapterPoolImpl& P = *impl_;
  bool notify = false;
  if (started) *started = false;
  {
    std::lock_guard<std::mutex> lk(P.mu);
    Entry& e = P.get(id);
    if (e.state == State::kResident) {
      ++e.pins;
      P.res_lru.splice(P.res_lru.end(), P.res_lru, e.res_it);
      return e.view.get();
    }
    if (e.state == State::kLoading) return nullptr;
    if (e.failed) return nullptr;  // until take_failure() reports it
    if (!start_load) return nullptr;
    // Can enough pages be had? Free ones, then unpinned resident ones in LRU order.
    const size_t need = e.pages_needed;
    size_t avail = P.free_pages.size();
    for (auto it = P.res_lru.begin(); avail < need && it != P.res_lru.end(); ++it) {
      const Entry& r = *P.entries.at(*it);
      if (r.pins == 0) avail += r.pages.size();
    }
    if (avail < need) return nullptr;
    for (auto it = P.res_lru.begin(); P.free_pages.size() < need && it != P.res_lru.end();) {
      Entry& r = *P.entries.at(*it);
      ++it;  // evict() erases r's node
      if (r.pins == 0) {
        P.evict(r);
        ++P.evictions;
      }
    }
    e.pages.assign(P.free_pages.end() - std::ptrdiff_t(need), P.free_pages.end());
    P.free_pages.resize(P.free_pages.size() - need);
    e.state = State::kLoading;
    ++P.loading;
    P.queue.push_back({id});
    notify = true;
  }
  if (notify) P.work_cv.notify_one();
  if (started) *started = notify;
  return nullptr;
}

void AdapterPool::release(AdapterId id) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  Entry& e = impl_->get(id);
  if (e.pins <= 0) throw Error("adapter " + e.name + " is not pinned");
  --e.pins;
}

bool AdapterPool::take_failure(AdapterId id, std::string* message) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  Entry* e = impl_->find_entry(id);
  if (!e || !e->failed) return false;
  if (message) *message = e->failure;
  e->failed = false;
  e->failure.clear();
  return true;
}

bool AdapterPool::loads_pending() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->loading > 0;
}

void AdapterPool::fill_stats(RuntimeStats& s) const {
  const AdapterPoolImpl& P = *impl_;
  LoadSamples disk, host;  // copied under the lock, summarized after it
  std::unique_lock<std::mutex> lk(P.mu);
  s.adapters_registered = int(P.entries.size());
  s.adapters_resident = int(P.res_lru.size());
  int in_use = 0;
  for (const auto& kv : P.entries) in_use += kv.second->pins > 0;
  s.adapters_in_use = in_use;
  s.pool_pages_total = P.pages_total;
  s.pool_pages_free = P.free_pages.size();
  s.pool_page_bytes = P.page_floats * sizeof(float);
  s.host_bytes_used = P.host_used;
  s.host_bytes_budget = P.options.host_bytes;
  s.adapter_evictions = P.evictions;
  s.adapter_bytes_loaded = P.bytes_loaded;
  disk = P.from_disk;
  host = P.from_host;
  lk.unlock();
  s.load_from_disk = disk.summarize();
  s.load_from_host = host.summarize();
}

size_t AdapterPool::page_floats() const { return impl_->page_floats; }

size_t AdapterPool::pages_needed(AdapterId id) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->get(id).pages_needed;
}

}  // namespace longtail
