// longtail engine runtime: continuous batching over a paged KV cache, a tiered adapter pool with
// just-in-time loading, and sampling. This is what a server embeds (through the Node-API binding).
//
// Threading: submit(), cancel(), register/unregister and stats() are safe from any thread. The
// step loop runs on the runtime's own thread (RuntimeOptions::background) or on the caller's,
// one step() at a time (tests, the CLI). Event sinks are called on the stepping thread and must
// not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "longtail/engine.h"

namespace longtail {

// How the next token is chosen. Defaults: greedy, 16 tokens.
struct SamplingParams {
  float temperature = 0.0f;          // <= 0: greedy (argmax after penalties)
  int top_k = 0;                     // 0: off
  float top_p = 1.0f;                // (0, 1]; 1: off
  float min_p = 0.0f;                // [0, 1); 0: off
  float repetition_penalty = 1.0f;   // > 0; HF rule over prompt and output tokens; 1: off
  float frequency_penalty = 0.0f;    // [-2, 2]; OpenAI rule over output tokens
  float presence_penalty = 0.0f;     // [-2, 2]
  uint64_t seed = 0;                 // same seed and inputs → same tokens, whatever else is batched
  int max_tokens = 16;               // >= 1
  std::vector<int32_t> stop_token_ids;  // not emitted; finish = kStop
  bool logprobs = false;             // log-probability of each chosen token
  int top_logprobs = 0;              // 0..20 alternatives per position (implies logprobs)
};

// Throws Error naming the first invalid field (e.g. "top_p must be in (0, 1], got 0").
void validate_sampling(const SamplingParams& p, int vocab);

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;  // log-softmax of the model's raw logits (before penalties and temperature)
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason r);  // "", "stop", "length", "cancelled", "error"

using RequestId = uint64_t;
using AdapterId = int32_t;  // from Runtime::register_adapter; -1 = the base model

// One streamed event of a request. Every request ends with exactly one event whose finish is
// not kNone (it may carry the last token too).
struct GenerationEvent {
  RequestId request = 0;
  int32_t token = -1;             // -1: this event carries no token
  float logprob = 0.0f;           // when SamplingParams::logprobs
  std::vector<TokenLogprob> top;  // top_logprobs alternatives, best first
  FinishReason finish = FinishReason::kNone;
  std::string error;              // when finish == kError
  int prompt_tokens = 0;
  int completion_tokens = 0;      // tokens emitted so far (stop tokens are not emitted)
};
using EventSink = std::function<void(const GenerationEvent&)>;

struct GenerateRequest {
  std::vector<int32_t> prompt;  // non-empty; prompt + max_tokens must fit max_position_embeddings
  AdapterId adapter = -1;
  SamplingParams sampling;
};

struct RuntimeOptions {
  int threads = 0;                 // compute threads; 0 = all cores
  size_t kv_cache_bytes = 0;       // 0 = 256 MiB
  int kv_block_tokens = 16;        // positions per KV block
  int max_batch_tokens = 256;      // token budget of one step (decode tokens + prefill chunks)
  int max_running = 64;            // sequences per step
  size_t adapter_pool_bytes = 0;   // backend tier; 0 = room for 64 rank-16 all-projection adapters
  size_t adapter_host_bytes = 0;   // host tier; 0 = 1 GiB
  bool background = true;          // run the step loop on the runtime's own thread
  std::string backend = "auto";    // as EngineOptions::backend ("auto", "cuda", "cpu")
  bool batch_invariant = true;     // as EngineOptions::batch_invariant (CPU backend only)
};

struct LoadTimes {
  uint64_t count = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct RuntimeStats {
  // Scheduler.
  int waiting = 0, running = 0;
  uint64_t steps = 0, prompt_tokens = 0, generated_tokens = 0, preemptions = 0, finished = 0;
  // KV cache.
  int kv_blocks_total = 0, kv_blocks_free = 0, kv_block_tokens = 0;
  // Engine: whether its logits are batch-invariant (CPU backend with batch_invariant on).
  bool batch_invariant = false;
  // Adapter pool.
  int adapters_registered = 0, adapters_resident = 0, adapters_in_use = 0;
  uint64_t pool_pages_total = 0, pool_pages_free = 0, pool_page_bytes = 0;
  uint64_t host_bytes_used = 0, host_bytes_budget = 0;
  uint64_t adapter_hits = 0, adapter_misses = 0, adapter_evictions = 0, adapter_bytes_loaded = 0;
  LoadTimes load_from_disk, load_from_host;  // disk: parse + copy to the pool; host: copy only
};

struct RuntimeState;  // internal

class Runtime {
 public:
  // Loads the model folder. Throws Error.
  Runtime(const std::string& model_dir, RuntimeOptions options = {});
  ~Runtime();  // cancels what is left (sinks get kCancelled) and joins the threads
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const Model& model() const;

  // Validates the PEFT folder against the model now (throws Error with the loader's message) and
  // keeps it on the disk tier (and the host tier while it fits). Names are unique.
  AdapterId register_adapter(const std::string& name, const std::string& dir);
  // Refused (Error) while a waiting or running request uses it.
  void unregister_adapter(AdapterId id);

  // Validates (throws Error) and queues. The sink receives the events of this request only.
  RequestId submit(GenerateRequest request, EventSink sink);
  // Any time, any state: the request's blocks are freed and its sink gets kCancelled (unless it
  // had finished already). Unknown ids are ignored.
  void cancel(RequestId id);

  // Manual stepping (background = false): one scheduler iteration. Returns false when there was
  // nothing to do (no request waiting or running, no load pending).
  bool step();
  void run_until_idle();  // step() until it returns false (waits for pending adapter loads)

  RuntimeStats stats() const;

 private:
  void abort_all(const std::string& why);  // ends every waiting and running request with kError
  std::unique_ptr<RuntimeState> state_;
};

}  // namespace longtail
