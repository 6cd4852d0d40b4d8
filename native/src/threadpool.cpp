#include "threadpool.h"

#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LT_PAUSE() _mm_pause()
#else
#define LT_PAUSE() ((void)0)
#endif

namespace longtail {

namespace {
constexpr uint64_t kMask20 = (1u << 20) - 1;
inline uint32_t gen_of(uint64_t s) { return uint32_t(s >> 40); }
inline int chunks_of(uint64_t s) { return int((s >> 20) & kMask20); }
inline int next_of(uint64_t s) { return int(s & kMask20); }
inline uint64_t pack(uint32_t gen, int chunks) { return (uint64_t(gen & 0xffffff) << 40) | (uint64_t(chunks) << 20); }
}  // namespace

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

ThreadPool::ThreadPool(int threads) : n_(threads > 0 ? threads : hardware_threads()) {
  for (int t = 1; t < n_; ++t) threads_.emplace_back([this, t] { worker(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    gen_ = (gen_ + 1) & 0xffffff;
    state_.store(pack(gen_, 0), std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work(uint32_t gen, int tid) {
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if (gen_of(s) != gen || next_of(s) >= chunks_of(s)) return;
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
      // Claimed chunk next_of(s) of job `gen`: the job (and call_/ctx_) stays alive until done_.
      call_(ctx_, next_of(s), tid);
      done_.fetch_add(1, std::memory_order_release);
    }
  }
}

void ThreadPool::run_chunks(int chunks, void (*call)(void*, int, int), void* ctx) {
  call_ = call;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  gen_ = (gen_ + 1) & 0xffffff;
  {
    std::lock_guard<std::mutex> lk(mu_);  // pairs with sleeping workers' predicate check
    state_.store(pack(gen_, chunks), std::memory_order_release);
  }
  if (sleeping_.load(std::memory_order_acquire) > 0) cv_.notify_all();
  work(gen_, 0);
  // Wait for chunks other threads claimed; yield so a descheduled worker can finish.
  for (int spin = 0; done_.load(std::memory_order_acquire) < chunks; ++spin) {
    if (spin < 256) LT_PAUSE();
    else sched_yield();
  }
}

void ThreadPool::worker(int tid) {
  uint32_t seen = 0;
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (int spin = 0; gen_of(s) == seen && spin < 4000; ++spin) {
      LT_PAUSE();
      s = state_.load(std::memory_order_acquire);
    }
    if (gen_of(s) == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleeping_.fetch_add(1);
      cv_.wait(lk, [&] { return gen_of(state_.load(std::memory_order_acquire)) != seen; });
      sleeping_.fetch_sub(1);
      s = state_.load(std::memory_order_acquire);
    }
    seen = gen_of(s);
    if (stop_.load()) return;
    work(seen, tid);
  }
}

}  // namespace longtail
