// A fixed pool of worker threads for the forward pass. The caller takes part in every job.
//
// A job is split into chunks that threads claim dynamically from one atomic word
// ([generation:24][chunks:20][next:20]), so a worker that the OS has descheduled (other processes
// on the same cores) delays the job by at most one chunk: the others take the rest. run() allocates
// nothing: the job is a function pointer plus a context pointer. Workers spin briefly after a job
// (a step issues hundreds of small jobs back to back), then sleep on a condition variable.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace longtail {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller; <= 0 = all cores
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }

  // Splits [0, n) into chunks; calls fn(begin, end, tid) for each, tid in [0, size()).
  template <class F>
  void parallel_for_tid(int64_t n, F&& fn) {
    if (n <= 0) return;
    if (n_ == 1 || n == 1) {
      fn(int64_t(0), n, 0);
      return;
    }
    const int64_t chunks = std::min<int64_t>(n, int64_t(n_) * kChunksPerThread);
    struct Ctx {
      F* fn;
      int64_t n, chunks;
    } ctx{&fn, n, chunks};
    run_chunks(int(chunks), [](void* c, int chunk, int tid) {
      Ctx& x = *static_cast<Ctx*>(c);
      const int64_t b = x.n * chunk / x.chunks, e = x.n * (chunk + 1) / x.chunks;
      if (b < e) (*x.fn)(b, e, tid);
    }, &ctx);
  }

  // Same without the thread id: fn(begin, end).
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    parallel_for_tid(n, [&](int64_t b, int64_t e, int) { fn(b, e); });
  }

  static constexpr int kChunksPerThread = 8;

 private:
  void run_chunks(int chunks, void (*call)(void*, int, int), void* ctx);
  void work(uint32_t gen, int tid);
  void worker(int tid);

  int n_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> state_{0};  // [gen:24][chunks:20][next:20]
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  void (*call_)(void*, int, int) = nullptr;
  void* ctx_ = nullptr;
  uint32_t gen_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleeping_{0};
};

int hardware_threads();

}  // namespace longtail
