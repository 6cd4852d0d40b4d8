// Internal layout of loaded model and adapter weights. Every matrix is f32, row-major, in the
// Hugging Face orientation [out, in]: a projection computes y = x · Wᵀ.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "longtail/engine.h"
#include "safetensors.h"

namespace longtail {

// 64-byte aligned float storage for converted or copied tensors.
struct AlignedFloats {
  float* ptr = nullptr;
  size_t n = 0;
  explicit AlignedFloats(size_t count);
  ~AlignedFloats();
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [hidden]
  std::array<const float*, kNumProj> w{};  // q [heads*hd, hidden], k/v [kv_heads*hd, hidden],
                                            // o [hidden, heads*hd], gate/up [inter, hidden],
                                            // down [hidden, inter]
  const float* bq = nullptr;  // [heads*hd] or null
  const float* bk = nullptr;  // [kv_heads*hd]
  const float* bv = nullptr;  // [kv_heads*hd]
  const float* ffn_norm = nullptr;  // [hidden]
};

struct ModelWeights {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::vector<std::unique_ptr<AlignedFloats>> owned;  // converted (f16/bf16) or re-aligned copies
  const float* embed = nullptr;    // [vocab, hidden]
  std::vector<LayerWeights> layers;
  const float* norm = nullptr;     // [hidden]
  const float* lm_head = nullptr;  // [vocab, hidden] (== embed when tied)
  std::vector<std::string> file_names;
  std::string dtype;               // of the projection weights on disk
  uint64_t bytes_mapped = 0;       // f32 bytes used straight from the mapping
  uint64_t bytes_converted = 0;    // f32 bytes converted or copied at load
  uint64_t params = 0;
};

// Input and output width of projection p for this config.
int proj_in(const ModelConfig& c, int p);
int proj_out(const ModelConfig& c, int p);

struct LoraModule {
  int rank = 0;             // 0 = this projection has no LoRA
  float scale = 0.0f;       // lora_alpha / r (or / sqrt(r) with rsLoRA)
  const float* A = nullptr; // [rank, in]
  const float* Bt = nullptr; // [rank, out]: lora_B transposed at load, so the expand step is
                             // rank axpys over contiguous output rows
};

// One LoRA module as the kernels read it: a pointer per rank row, so rows may live anywhere (the
// adapter's own arrays, or pages of the adapter pool).
struct LoraRows {
  int rank = 0;                       // 0 = this projection has no LoRA
  float scale = 0.0f;
  const float* const* A = nullptr;    // [rank] rows of proj_in floats
  const float* const* Bt = nullptr;   // [rank] rows of proj_out floats
};

// What a step reads of an adapter. Adapter::view() points into the adapter's own arrays; the
// adapter pool builds views over its pages.
struct AdapterView {
  const Model* base = nullptr;  // the model the adapter was validated against; step() refuses others
  int max_rank = 0;
  std::vector<std::array<LoraRows, kNumProj>> layers;  // [layers][proj]
  std::vector<const float*> rows;  // backing store of every A and Bt row pointer
};

// Sizes v for w's ranks and fills every row pointer with `row(layer, proj, is_b, k)`.
void build_adapter_view(const AdapterWeights& w, AdapterView& v,
                        const std::function<const float*(int layer, int proj, bool is_b, int k)>& row);

struct AdapterWeights {
  const Model* base = nullptr;  // the model it was validated against; step() refuses others
  std::vector<std::array<LoraModule, kNumProj>> layers;  // [layers][proj]
  std::vector<std::unique_ptr<AlignedFloats>> owned;
  std::string dtype;
  int max_rank = 0;
  float lora_alpha = 0;
  int r = 0;
  bool rslora = false;
  std::vector<std::string> targets;  // projection names present
  uint64_t params = 0;
};

ModelConfig parse_model_config(const std::string& text, const std::string& file);

}  // namespace longtail
