// The runtime: continuous batching over the paged KV cache, with the tiered adapter pool.
//
// Every step (on the stepping thread):
//   1. take what other threads handed in: new requests join `waiting`, cancels end requests;
//   2. running requests first, in admission order: each gets its next chunk (a decode token, or
//      the rest of its prefill up to the step's token budget) and the KV blocks for it; when the
//      free list runs short the most recently admitted running request is preempted (its blocks
//      freed, its prompt and generated tokens recomputed later);
//   3. waiting requests are admitted in order while budget, KV blocks and running slots last and
//      their adapter is resident (acquire starts a just-in-time load otherwise; the request stays
//      waiting and the others go on stepping);
//   4. one engine step for all of them; every request whose KV caught up with its tokens samples
//      its next token; finished ones leave at once, freeing blocks and unpinning their adapter.
#include "longtail/runtime.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "adapter_pool.h"
#include "backend.h"
#include "model_internal.h"
#include "sampling.h"

namespace longtail {

namespace {

struct Request {
  RequestId id = 0;
  std::vector<int32_t> tokens;  // prompt, then every generated token
  int prompt_len = 0;
  AdapterId adapter = -1;
  SamplingParams params;
  std::unique_ptr<Sampler> sampler;
  EventSink sink;
  SeqId seq = -1;               // engine sequence while running
  int computed = 0;             // positions in the KV cache
  int chunk = 0;                // tokens in the current step
  const AdapterView* view = nullptr;  // pinned while running
  bool adapter_counted = false;  // hit or miss counted
  bool admitted = false;         // admitted once (prompt tokens counted)
  int completion() const { return int(tokens.size()) - prompt_len; }
};

size_t lora_floats_rank16(const ModelConfig& c) {
  size_t n = 0;
  for (int p = 0; p < kNumProj; ++p) n += size_t(proj_in(c, p) + proj_out(c, p));
  return n * 16 * c.layers;
}

// Sinks must not throw; one that does must not take the loop down with it.
void emit(const EventSink& sink, const GenerationEvent& ev) {
  if (!sink) return;
  try {
    sink(ev);
  } catch (...) {
  }
}

}  // namespace

struct RuntimeState {
  RuntimeOptions opt;
  std::unique_ptr<Model> model;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<AdapterPool> pool;
  int vocab = 0;

  // Handed in by other threads.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Request>> inbox;
  std::vector<RequestId> cancels;
  std::unordered_map<AdapterId, int> adapter_uses;  // requests submitted and not finished
  RequestId next_id = 1;
  bool stopping = false;
  RuntimeStats snapshot;  // published after every step

  // Stepping thread only.
  std::deque<std::unique_ptr<Request>> waiting;
  std::list<std::unique_ptr<Request>> running;  // admission order
  std::vector<float> logits;
  RuntimeStats counters;
  std::thread loop;
};

const Model& Runtime::model() const { return *state_->model; }

Runtime::Runtime(const std::string& model_dir, RuntimeOptions opt) : state_(std::make_unique<RuntimeState>()) {
  RuntimeState& s = *state_;
  if (opt.max_batch_tokens < 1) throw Error("max_batch_tokens must be at least 1");
  if (opt.max_running < 1) throw Error("max_running must be at least 1");
  if (opt.kv_block_tokens < 1) throw Error("kv_block_tokens must be at least 1");
  s.opt = opt;
  s.model = load_model(model_dir);
  const ModelConfig& c = s.model->config();
  s.vocab = c.vocab;
  EngineOptions eo;
  eo.threads = opt.threads;
  eo.max_tokens_per_step = opt.max_batch_tokens;
  eo.max_seqs_per_step = opt.max_running;
  eo.kv_cache_bytes = opt.kv_cache_bytes ? opt.kv_cache_bytes : (size_t(256) << 20);
  eo.kv_block_tokens = opt.kv_block_tokens;
  eo.backend = opt.backend;
  eo.batch_invariant = opt.batch_invariant;
  s.engine = std::make_unique<Engine>(*s.model, eo);
  AdapterPoolOptions po;
  po.pool_bytes = opt.adapter_pool_bytes ? opt.adapter_pool_bytes : lora_floats_rank16(c) * 4 * 64 * 5 / 4;
  po.host_bytes = opt.adapter_host_bytes ? opt.adapter_host_bytes : (size_t(1) << 30);
  s.pool = std::make_unique<AdapterPool>(*s.model, engine_backend(*s.engine), po);
  s.logits.resize(size_t(opt.max_running) * c.vocab);
  s.counters.kv_block_tokens = s.engine->kv_block_tokens();
  s.counters.batch_invariant = s.engine->batch_invariant();
  s.counters.kv_blocks_total = s.engine->kv_blocks_total();
  s.counters.kv_blocks_free = s.engine->kv_blocks_free();
  s.snapshot = s.counters;
  if (opt.background) {
    s.loop = std::thread([this] {
      RuntimeState& st = *state_;
      for (;;) {
        {
          std::unique_lock<std::mutex> lk(st.mu);
          st.cv.wait(lk, [&] {
            return st.stopping || !st.inbox.empty() || !st.cancels.empty() || !st.waiting.empty() || !st.running.empty();
          });
          if (st.stopping) return;
        }
        try {
          step();
        } catch (const std::exception& e) {
          // A bug, not an input error (inputs are validated at submit): the requests in the
          // runtime end with the error (none hangs) and the runtime goes on with new ones.
          std::fprintf(stderr, "longtail runtime: step failed: %s\n", e.what());
          abort_all(std::string("engine step failed: ") + e.what());
        }
      }
    });
  }
}

Runtime::~Runtime() {
  RuntimeState& s = *state_;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    s.stopping = true;
  }
  s.cv.notify_all();
  if (s.loop.joinable()) s.loop.join();
  // Whatever is left ends as cancelled, on this thread.
  auto end = [&](Request& r) {
    GenerationEvent ev;
    ev.request = r.id;
    ev.finish = FinishReason::kCancelled;
    ev.prompt_tokens = r.prompt_len;
    ev.completion_tokens = r.completion();
    emit(r.sink, ev);
  };
  for (auto& r : s.inbox) end(*r);
  for (auto& r : s.waiting) end(*r);
  for (auto& r : s.running) {
    if (r->view) s.pool->release(r->adapter);
    end(*r);
  }
  s.running.clear();
  s.pool.reset();  // joins the loader before the engine (and its backend memory) goes
}

AdapterId Runtime::register_adapter(const std::string& name, const std::string& dir) {
  if (name.empty()) throw Error("adapter name must not be empty");
  return state_->pool->add(name, dir);
}

void Runtime::unregister_adapter(AdapterId id) {
  RuntimeState& s = *state_;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.adapter_uses.find(id);
    if (it != s.adapter_uses.end() && it->second > 0) {
      throw Error("adapter " + std::to_string(id) + " is in use by " + std::to_string(it->second) + " request(s)");
    }
  }
  s.pool->remove(id);
}

RequestId Runtime::submit(GenerateRequest req, EventSink sink) {
  RuntimeState& s = *state_;
  const ModelConfig& c = s.model->config();
  if (req.prompt.empty()) throw Error("prompt must not be empty");
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= c.vocab) throw Error("prompt token " + std::to_string(t) + " is out of range (vocab " + std::to_string(c.vocab) + ")");
  }
  validate_sampling(req.sampling, c.vocab);
  const int64_t total = int64_t(req.prompt.size()) + req.sampling.max_tokens;
  if (total > c.max_pos) {
    throw Error("prompt (" + std::to_string(req.prompt.size()) + " tokens) + max_tokens (" + std::to_string(req.sampling.max_tokens) +
                ") exceeds the model's context of " + std::to_string(c.max_pos) + " tokens");
  }
  const int64_t blocks = (total + s.counters.kv_block_tokens - 1) / s.counters.kv_block_tokens;
  if (blocks > s.counters.kv_blocks_total) {
    throw Error("request needs " + std::to_string(blocks) + " KV blocks, the cache has " + std::to_string(s.counters.kv_blocks_total));
  }
  if (req.adapter != -1 && s.pool->pages_needed(req.adapter) == 0) {
    throw Error("unknown adapter id " + std::to_string(req.adapter));
  }
  auto r = std::make_unique<Request>();
  r->tokens = std::move(req.prompt);
  r->prompt_len = int(r->tokens.size());
  r->adapter = req.adapter;
  r->params = req.sampling;
  r->sampler = std::make_unique<Sampler>(r->params, r->tokens.data(), r->prompt_len, c.vocab);
  r->tokens.reserve(size_t(total));
  r->sink = std::move(sink);
  RequestId id;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.stopping) throw Error("the runtime is shutting down");
    id = r->id = s.next_id++;
    if (r->adapter != -1) ++s.adapter_uses[r->adapter];
    s.inbox.push_back(std::move(r));
  }
  s.cv.notify_one();
  return id;
}

void Runtime::cancel(RequestId id) {
  RuntimeState& s = *state_;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    s.cancels.push_back(id);
  }
  s.cv.notify_one();
}

RuntimeStats Runtime::stats() const {
  RuntimeState& s = *state_;
  RuntimeStats out;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    out = s.snapshot;
  }
  s.pool->fill_stats(out);
  return out;
}

void Runtime::run_until_idle() {
  while (step()) {
  }
}

bool Runtime::step() {
  RuntimeState& s = *state_;
  Engine& engine = *s.engine;
  AdapterPool& pool = *s.pool;
  RuntimeStats& k = s.counters;

  // Last events wait until the stats snapshot shows their requests finished and their blocks free,
  // so a client that reads stats() on its last event sees the engine as it left it.
  std::vector<std::pair<EventSink, GenerationEvent>> finals;
  auto publish = [&]() {
    {
      std::lock_guard<std::mutex> lk(s.mu);
      s.snapshot = k;
      s.snapshot.waiting = int(s.waiting.size() + s.inbox.size());
      s.snapshot.running = int(s.running.size());
      s.snapshot.kv_blocks_free = engine.kv_blocks_free();
    }
    for (auto& [sink, ev] : finals) emit(sink, ev);
    finals.clear();
  };

  // Ends a request: frees its blocks, unpins its adapter, queues its last event.
  auto finish = [&](Request& r, GenerationEvent ev) {
    if (r.seq >= 0) engine.release_sequence(r.seq);
    r.seq = -1;
    if (r.view) pool.release(r.adapter);
    r.view = nullptr;
    ev.request = r.id;
    ev.prompt_tokens = r.prompt_len;
    ev.completion_tokens = r.completion();
    if (r.adapter != -1) {
      std::lock_guard<std::mutex> lk(s.mu);
      --s.adapter_uses[r.adapter];
    }
    ++k.finished;
    finals.emplace_back(std::move(r.sink), std::move(ev));  // sent after the stats are published
  };
  auto end_with = [&](Request& r, FinishReason why, const std::string& error = "") {
    GenerationEvent ev;
    ev.finish = why;
    ev.error = error;
    finish(r, std::move(ev));
  };

  // 1. Hand-ins.
  std::vector<std::unique_ptr<Request>> fresh;
  std::vector<RequestId> cancels;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    fresh.swap(s.inbox);
    cancels.swap(s.cancels);
  }
  for (auto& r : fresh) s.waiting.push_back(std::move(r));
  for (RequestId id : cancels) {
    auto w = std::find_if(s.waiting.begin(), s.waiting.end(), [&](auto& r) { return r->id == id; });
    if (w != s.waiting.end()) {
      end_with(**w, FinishReason::kCancelled);
      s.waiting.erase(w);
      continue;
    }
    auto it = std::find_if(s.running.begin(), s.running.end(), [&](auto& r) { return r->id == id; });
    if (it != s.running.end()) {
      end_with(**it, FinishReason::kCancelled);
      s.running.erase(it);
    }
  }
  // Failed adapter loads fail the requests that wait for them.
  for (auto it = s.waiting.begin(); it != s.waiting.end();) {
    std::string msg;
    Request& r = **it;
    if (r.adapter != -1 && !r.view && pool.take_failure(r.adapter, &msg)) {
      const AdapterId bad = r.adapter;
      for (auto& w : s.waiting) {
        if (w && w->adapter == bad) end_with(*w, FinishReason::kError, "adapter load failed: " + msg);
      }
      s.waiting.erase(std::remove_if(s.waiting.begin(), s.waiting.end(), [&](auto& w) { return w->adapter == bad; }),
                      s.waiting.end());
      it = s.waiting.begin();
      continue;
    }
    ++it;
  }
  if (s.waiting.empty() && s.running.empty()) {
    publish();
    return false;
  }

  // 2. Running requests: next chunk and its KV blocks, preempting from the back when short.
  int budget = s.opt.max_batch_tokens;
  auto preempt = [&](std::list<std::unique_ptr<Request>>::iterator victim) {
    Request& r = **victim;
    engine.release_sequence(r.seq);
    r.seq = -1;
    r.computed = 0;
    r.chunk = 0;
    if (r.view) pool.release(r.adapter);
    r.view = nullptr;
    ++k.preemptions;
    s.waiting.push_front(std::move(*victim));
    s.running.erase(victim);
  };
  std::vector<Request*> batch;
  for (auto it = s.running.begin(); it != s.running.end();) {
    Request& r = **it;
    r.chunk = std::min<int>(int(r.tokens.size()) - r.computed, budget);
    if (r.chunk <= 0) {
      ++it;
      continue;
    }
    bool preempted_self = false;
    while (!engine.reserve(r.seq, r.computed + r.chunk)) {
      auto last = std::prev(s.running.end());
      if (last == it) {
        preempt(it);  // this one is the most recent: it waits
        preempted_self = true;
        break;
      }
      preempt(last);
    }
    if (preempted_self) break;  // nothing after it remains
    budget -= r.chunk;
    batch.push_back(&r);
    ++it;
  }

  // 3. Admit waiting requests, in order. A request whose adapter is not resident stays waiting
  // (the others go on); loads start for at most kLoadsPerStep of them per step, nearest the head
  // of the queue first, so a long queue cannot evict what the head is about to use.
  constexpr int kLoadsPerStep = 2;
  int loads_started = 0;
  for (auto it = s.waiting.begin(); it != s.waiting.end() && budget > 0 && int(s.running.size()) < s.opt.max_running;) {
    Request& r = **it;
    if (r.adapter != -1) {
      const bool was_loading = pool.loading(r.adapter);
      bool started = false;
      r.view = pool.acquire(r.adapter, loads_started < kLoadsPerStep, &started);
      loads_started += started;
      if (!r.adapter_counted && (r.view || started || was_loading)) {  // a hit, or a miss waiting for its load
        r.adapter_counted = true;
        ++(r.view ? k.adapter_hits : k.adapter_misses);
      }
      if (!r.view) {
        ++it;
        continue;
      }
    }
    const int chunk = std::min<int>(int(r.tokens.size()), budget);
    r.seq = engine.create_sequence(0);
    if (!engine.reserve(r.seq, chunk)) {
      engine.release_sequence(r.seq);
      r.seq = -1;
      if (r.view) pool.release(r.adapter);
      r.view = nullptr;
      break;  // out of KV blocks: admit nobody else this step
    }
    r.computed = 0;
    r.chunk = chunk;
    budget -= chunk;
    if (!r.admitted) k.prompt_tokens += r.prompt_len;
    r.admitted = true;
    batch.push_back(&r);
    s.running.push_back(std::move(*it));
    it = s.waiting.erase(it);
  }

  // 4. One engine step for the batch, then sampling.
  if (!batch.empty()) {
    // Sequences on the same adapter side by side: the engine runs each run as one LoRA segment.
    std::stable_sort(batch.begin(), batch.end(), [](const Request* x, const Request* y) { return x->view < y->view; });
    StepBatch b;
    b.seqs.reserve(batch.size());
    for (Request* r : batch) b.seqs.push_back({r->seq, r->tokens.data() + r->computed, r->chunk, r->computed, r->view});
    try {
      engine.step(b, s.logits.data());
    } catch (const Error& e) {
      // A step that cannot run fails its requests (never silently drops them).
      for (Request* r : batch) r->chunk = -1;
      for (auto it = s.running.begin(); it != s.running.end();) {
        if ((*it)->chunk == -1) {
          end_with(**it, FinishReason::kError, e.what());
          it = s.running.erase(it);
        } else {
          ++it;
        }
      }
      batch.clear();
    }
    ++k.steps;
    const int vocab = s.vocab;
    for (size_t i = 0; i < batch.size(); ++i) {
      Request& r = *batch[i];
      r.computed += r.chunk;
      if (r.computed < int(r.tokens.size())) continue;  // prefill continues next step
      Sampled sm = r.sampler->next(s.logits.data() + i * size_t(vocab));
      const auto& stops = r.params.stop_token_ids;
      GenerationEvent ev;
      if (std::find(stops.begin(), stops.end(), sm.token) != stops.end()) {
        ev.finish = FinishReason::kStop;
      } else {
        r.tokens.push_back(sm.token);
        ++k.generated_tokens;
        ev.token = sm.token;
        ev.logprob = sm.logprob;
        ev.top = std::move(sm.top);
        if (r.completion() >= r.params.max_tokens) ev.finish = FinishReason::kLength;
      }
      r.chunk = 0;
      if (ev.finish != FinishReason::kNone) {
        r.chunk = -2;  // marks it for removal below, after its last event
        finish(r, std::move(ev));
      } else {
        ev.request = r.id;
        ev.prompt_tokens = r.prompt_len;
        ev.completion_tokens = r.completion();
        emit(r.sink, ev);
      }
    }
    s.running.remove_if([](const std::unique_ptr<Request>& r) { return r->chunk == -2; });
  } else if (!s.waiting.empty()) {
    // Only adapter loads (or KV) hold things up: wait a little rather than spin.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }

  publish();
  return true;
}

void Runtime::abort_all(const std::string& why) {
  RuntimeState& s = *state_;
  auto end = [&](Request& r) {
    if (r.seq >= 0) s.engine->release_sequence(r.seq);
    if (r.view) s.pool->release(r.adapter);
    GenerationEvent ev;
    ev.request = r.id;
    ev.finish = FinishReason::kError;
    ev.error = why;
    ev.prompt_tokens = r.prompt_len;
    ev.completion_tokens = r.completion();
    if (r.adapter != -1) {
      std::lock_guard<std::mutex> lk(s.mu);
      --s.adapter_uses[r.adapter];
    }
    emit(r.sink, ev);
  };
  for (auto& r : s.waiting) end(*r);
  for (auto& r : s.running) end(*r);
  s.waiting.clear();
  s.running.clear();
  std::lock_guard<std::mutex> lk(s.mu);
  s.snapshot.waiting = int(s.inbox.size());
  s.snapshot.running = 0;
  s.snapshot.kv_blocks_free = s.engine->kv_blocks_free();
}

}  // namespace longtail
