// A fixed pool of worker threads for the forward pass. The caller is thread 0 and takes part in
// every job. run() allocates nothing: the job is a function pointer plus a context pointer.
// Workers spin briefly after a job (steps issue hundreds of small jobs back to back), then sleep.
#pragma once

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

  // Calls fn(tid, nthreads) once on each thread and returns when all are done.
  template <class F>
  void run(F& fn) {
    if (n_ == 1) { fn(0, 1); return; }
    run_raw([](void* ctx, int tid, int n) { (*static_cast<F*>(ctx))(tid, n); }, &fn);
  }

  // Splits [0, n) into at most size() contiguous ranges: fn(begin, end).
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    if (n <= 0) return;
    auto body = [&](int tid, int nt) {
      int64_t per = (n + nt - 1) / nt;
      int64_t b = tid * per, e = b + per < n ? b + per : n;
      if (b < e) fn(b, e);
    };
    if (n == 1 || n_ == 1) { fn(int64_t(0), n); return; }
    run(body);
  }

 private:
  void run_raw(void (*call)(void*, int, int), void* ctx);
  void worker(int tid);

  int n_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  void (*call_)(void*, int, int) = nullptr;
  void* ctx_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleeping_{0};
};

int hardware_threads();

}  // namespace longtail
