// longtail engine: public C++ API.
//
// Loads a Llama-family decoder (Hugging Face folder) and PEFT LoRA adapters, and runs
// batched heterogeneous forward steps: one step carries many sequences, each with its own
// adapter (or none), mixing prefill chunks and single decode tokens. The base projections run
// once per step for all tokens; the LoRA deltas run per adapter segment (SGMV / BGMV).
//
// Errors: every function throws longtail::Error with a message naming the file and, where it
// applies, the tensor. The library never calls exit().
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace longtail {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class RopeScaling { kNone, kLinear, kLlama3 };

struct ModelConfig {
  std::string model_type;  // "llama", "qwen2", ...
  int hidden = 0;          // hidden_size
  int layers = 0;          // num_hidden_layers
  int heads = 0;           // num_attention_heads
  int kv_heads = 0;        // num_key_value_heads
  int head_dim = 0;        // head_dim or hidden / heads
  int intermediate = 0;    // intermediate_size
  int vocab = 0;           // vocab_size
  int max_pos = 0;         // max_position_embeddings
  float rms_eps = 1e-6f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  double rope_original_max_pos = 8192.0;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  std::string torch_dtype;
};

// The seven projections a LoRA adapter may target, in a fixed order.
enum Proj : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kNumProj };
const char* proj_name(int p);  // "q_proj", ...

struct ModelWeights;    // internal: f32 views of every tensor (mmap or converted copies)
struct AdapterWeights;  // internal: f32 A/B per (layer, projection)
struct AdapterView;     // internal: what a step reads (row pointers into the adapter or pool pages)

class Model {
 public:
  ~Model();
  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  const ModelWeights& weights() const { return *weights_; }
  // Summary of what was loaded (files, dtype, parameter count, bytes mapped/converted).
  std::string summary_json() const;
  uint64_t parameter_count() const;

 private:
  friend std::unique_ptr<Model> load_model(const std::string& dir);
  Model();
  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
};

class Adapter {
 public:
  ~Adapter();
  const std::string& dir() const { return dir_; }
  const AdapterWeights& weights() const { return *weights_; }
  const AdapterView& view() const { return *view_; }
  std::string summary_json() const;
  uint64_t parameter_count() const;
  uint64_t bytes() const;  // f32 bytes of A and B

 private:
  friend std::unique_ptr<Adapter> load_adapter(const std::string& dir, const Model& base);
  Adapter();
  std::string dir_;
  std::unique_ptr<AdapterWeights> weights_;
  std::unique_ptr<AdapterView> view_;
};

// Loads and validates a model folder: config.json + model.safetensors, or shards listed in
// model.safetensors.index.json. f32 tensors stay memory-mapped when aligned; f16/bf16 are
// converted to f32 once, at load.
std::unique_ptr<Model> load_model(const std::string& dir);

// Loads a PEFT LoRA folder and validates it against `base` (layers, shapes, dtypes, ranks).
std::unique_ptr<Adapter> load_adapter(const std::string& dir, const Model& base);

struct EngineOptions {
  int threads = 0;              // 0 = all cores
  int max_tokens_per_step = 0;  // 0 = 512; scratch buffers are sized for this at construction
  int max_seqs_per_step = 0;    // 0 = 64
  size_t kv_cache_bytes = 0;    // paged KV cache budget; 0 = 1 GiB (pages are touched on first use)
  int kv_block_tokens = 0;      // positions per KV block; 0 = 16
  // "auto": CUDA when the library was built with CUDA and a device is present, else CPU;
  // "cuda": CUDA or Error ("CUDA backend requested but ..."); "cpu". The environment variable
  // LONGTAIL_BACKEND (same values) overrides "auto" only.
  std::string backend = "auto";
  // Bitwise batch-invariant forward on the CPU backend: a sequence's logits do not depend on what
  // else is in the step (batch size, other adapters, prefill chunking), so seeded sampling gives
  // the same tokens alone and in any batch. Costs speed (docs/decisions/0008-batch-invariant-cpu.md).
  // The CUDA backend ignores it (its kernels are not batch-invariant): see batch_invariant().
  bool batch_invariant = true;
};

using SeqId = int64_t;

// One sequence's part of a step: `n_tokens` tokens at positions [pos, pos + n_tokens).
// n_tokens > 1 is a prefill chunk, n_tokens == 1 a decode token. `pos` must equal the number of
// tokens the sequence has already consumed (its KV length).
struct SequenceStep {
  SeqId seq = -1;
  const int32_t* tokens = nullptr;
  int n_tokens = 0;
  int pos = 0;
  const AdapterView* adapter = nullptr;  // nullptr = base model; &Adapter::view() or a pool view
};

struct StepBatch {
  std::vector<SequenceStep> seqs;
};

struct EngineState;  // internal
class Backend;       // internal (src/backend.h)

class Engine {
 public:
  Engine(const Model& model, EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // KV lives in a paged cache: fixed-size blocks, a block table per sequence, one free list.
  // create_sequence reserves blocks for `max_tokens` positions up front (0: none yet) and throws
  // when there are not enough free blocks.
  SeqId create_sequence(int max_tokens);
  // Grows the sequence's block table to hold `positions` positions. False (and nothing taken)
  // when the free list is short. Throws past max_position_embeddings.
  bool reserve(SeqId seq, int positions);
  void release_sequence(SeqId seq);  // returns its blocks to the free list
  int sequence_length(SeqId seq) const;
  int kv_block_tokens() const;
  int kv_blocks_total() const;
  int kv_blocks_free() const;

  // Runs one batched forward step. Writes the logits of the last token of every sequence in
  // the step to `logits` ([batch.seqs.size(), vocab], row-major). Allocates nothing.
  void step(const StepBatch& batch, float* logits);

  const Model& model() const { return model_; }
  int threads() const;
  const char* backend_name() const;  // "cpu" or "cuda"
  bool batch_invariant() const;       // true when this engine's logits are batch-invariant

 private:
  friend Backend& engine_backend(Engine& e);  // the runtime's adapter pool allocates from it
  const Model& model_;
  std::unique_ptr<EngineState> state_;
};

}  // namespace longtail
