// Model loading: config.json parsing, safetensors (single or sharded) mapping, validation of every
// tensor against the config, and conversion of f16/bf16 to f32 (once, at load).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "model_internal.h"

namespace longtail {

using json = nlohmann::json;

const char* proj_name(int p) {
  static const char* names[kNumProj] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                        "gate_proj", "up_proj", "down_proj"};
  return (p >= 0 && p < kNumProj) ? names[p] : "?";
}

int proj_in(const ModelConfig& c, int p) {
  switch (p) {
    case kO: return c.heads * c.head_dim;
    case kDown: return c.intermediate;
    default: return c.hidden;
  }
}

int proj_out(const ModelConfig& c, int p) {
  switch (p) {
    case kQ: return c.heads * c.head_dim;
    case kK: case kV: return c.kv_heads * c.head_dim;
    case kGate: case kUp: return c.intermediate;
    default: return c.hidden;
  }
}

AlignedFloats::AlignedFloats(size_t count) : n(count) {
  size_t bytes = ((count * sizeof(float)) + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!ptr) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
}
AlignedFloats::~AlignedFloats() { std::free(ptr); }

static std::string read_text(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": missing " + what);
  if (st.st_size > (64 << 20)) throw Error(path + ": " + what + " is too large");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read " + what);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

static bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// --- config.json --------------------------------------------------------------------------

static int get_int(const json& j, const char* key, const std::string& file, int def, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(file + ": missing field '" + key + "'");
    return def;
  }
  if (!it->is_number_integer() && !it->is_number_unsigned()) {
    throw Error(file + ": field '" + key + "' must be an integer");
  }
  int64_t v = it->get<int64_t>();
  if (v <= 0 || v > (1 << 24)) throw Error(file + ": field '" + key + "' = " + std::to_string(v) + " is out of range");
  return static_cast<int>(v);
}

static double get_num(const json& j, const char* key, const std::string& file, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) throw Error(file + ": field '" + key + "' must be a number");
  return it->get<double>();
}

static bool get_bool(const json& j, const char* key, const std::string& file, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) throw Error(file + ": field '" + key + "' must be a boolean");
  return it->get<bool>();
}

ModelConfig parse_model_config(const std::string& text, const std::string& file) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(file + ": invalid JSON");
  ModelConfig c;
  if (auto it = j.find("model_type"); it != j.end() && it->is_string()) c.model_type = it->get<std::string>();
  static const std::set<std::string> known = {"llama", "qwen2", "mistral", ""};
  if (!known.count(c.model_type)) throw Error(file + ": model_type '" + c.model_type + "' is not supported (llama, qwen2, mistral)");
  if (auto it = j.find("hidden_act"); it != j.end() && it->is_string() && it->get<std::string>() != "silu") {
    throw Error(file + ": hidden_act '" + it->get<std::string>() + "' is not supported (silu)");
  }
  if (get_bool(j, "mlp_bias", file, false)) throw Error(file + ": mlp_bias is not supported");
  c.hidden = get_int(j, "hidden_size", file, 0, true);
  c.layers = get_int(j, "num_hidden_layers", file, 0, true);
  c.heads = get_int(j, "num_attention_heads", file, 0, true);
  c.kv_heads = get_int(j, "num_key_value_heads", file, c.heads, false);
  c.intermediate = get_int(j, "intermediate_size", file, 0, true);
  c.vocab = get_int(j, "vocab_size", file, 0, true);
  c.max_pos = get_int(j, "max_position_embeddings", file, 2048, false);
  if (c.hidden % c.heads != 0 && j.find("head_dim") == j.end()) {
    throw Error(file + ": hidden_size " + std::to_string(c.hidden) + " is not divisible by num_attention_heads " + std::to_string(c.heads));
  }
  c.head_dim = get_int(j, "head_dim", file, c.hidden / c.heads, false);
  if (c.head_dim % 2 != 0) throw Error(file + ": head_dim " + std::to_string(c.head_dim) + " must be even for RoPE");
  if (c.heads % c.kv_heads != 0) {
    throw Error(file + ": num_attention_heads " + std::to_string(c.heads) + " is not a multiple of num_key_value_heads " + std::to_string(c.kv_heads));
  }
  c.rms_eps = static_cast<float>(get_num(j, "rms_norm_eps", file, 1e-6));
  c.rope_theta = get_num(j, "rope_theta", file, 10000.0);
  if (!(c.rope_theta > 0)) throw Error(file + ": rope_theta must be positive");
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", file, false);
  c.qkv_bias = get_bool(j, "attention_bias", file, c.model_type == "qwen2");
  if (auto it = j.find("torch_dtype"); it != j.end() && it->is_string()) c.torch_dtype = it->get<std::string>();
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw Error(file + ": rope_scaling must be an object");
    std::string type;
    if (auto t = it->find("rope_type"); t != it->end() && t->is_string()) type = t->get<std::string>();
    else if (auto t2 = it->find("type"); t2 != it->end() && t2->is_string()) type = t2->get<std::string>();
    if (type == "default" || type.empty()) {
      c.rope_scaling = RopeScaling::kNone;
    } else if (type == "linear") {
      c.rope_scaling = RopeScaling::kLinear;
      c.rope_factor = get_num(*it, "factor", file, 1.0);
    } else if (type == "llama3") {
      c.rope_scaling = RopeScaling::kLlama3;
      c.rope_factor = get_num(*it, "factor", file, 8.0);
      c.rope_low_freq_factor = get_num(*it, "low_freq_factor", file, 1.0);
      c.rope_high_freq_factor = get_num(*it, "high_freq_factor", file, 4.0);
      c.rope_original_max_pos = get_num(*it, "original_max_position_embeddings", file, 8192.0);
    } else {
      throw Error(file + ": rope_scaling type '" + type + "' is not supported (linear, llama3)");
    }
    if (!(c.rope_factor > 0)) throw Error(file + ": rope_scaling.factor must be positive");
  }
  return c;
}

// --- weights ------------------------------------------------------------------------------

namespace {

struct TensorRef {
  const TensorView* view = nullptr;
  std::string file;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Returns f32 data for a validated float tensor: the mapping itself when it is f32 and aligned,
// else a converted copy owned by `owned`.
const float* as_f32(const TensorView& t, std::vector<std::unique_ptr<AlignedFloats>>& owned,
                    uint64_t& mapped, uint64_t& converted) {
  if (t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) {
    mapped += t.nbytes();
    return reinterpret_cast<const float*>(t.data);
  }
  auto buf = std::make_unique<AlignedFloats>(t.numel());
  tensor_to_f32(t, buf->ptr);
  converted += t.numel() * 4;
  owned.push_back(std::move(buf));
  return owned.back()->ptr;
}

bool is_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

}  // namespace

Model::Model() = default;
Model::~Model() = default;

uint64_t Model::parameter_count() const { return weights_->params; }

std::unique_ptr<Model> load_model(const std::string& dir_in) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::unique_ptr<Model> m(new Model());
  m->dir_ = dir;
  const std::string cfg_path = dir + "/config.json";
  m->config_ = parse_model_config(read_text(cfg_path, "config.json"), cfg_path);
  const ModelConfig& c = m->config_;
  m->weights_ = std::make_unique<ModelWeights>();
  ModelWeights& w = *m->weights_;

  // Which files, and which tensor lives where.
  std::map<std::string, TensorRef> all;
  std::string where;  // what to name when a tensor is missing
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  std::vector<std::string> files;
  std::map<std::string, std::string> weight_map;
  if (file_exists(index)) {
    where = index;
    json j = json::parse(read_text(index, "model.safetensors.index.json"), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(index + ": invalid JSON");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) throw Error(index + ": invalid JSON: missing weight_map");
    std::set<std::string> seen;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) throw Error(index + ": invalid JSON: weight_map['" + it.key() + "'] is not a string");
      std::string f = it->get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        throw Error(index + ": tensor '" + it.key() + "': shard file name '" + f + "' is not a plain file name");
      }
      weight_map[it.key()] = f;
      if (seen.insert(f).second) files.push_back(f);
    }
  } else if (file_exists(single)) {
    where = single;
    files.push_back("model.safetensors");
  } else {
    throw Error(dir + ": missing model.safetensors (or model.safetensors.index.json)");
  }
  for (const std::string& f : files) {
    std::string path = dir + "/" + f;
    if (!file_exists(path)) throw Error(path + ": missing shard file (listed in " + index + ")");
    w.files.push_back(open_safetensors(path));
    w.file_names.push_back(path);
    for (const auto& kv : w.files.back()->tensors) {
      if (!weight_map.empty()) {
        auto wm = weight_map.find(kv.first);
        if (wm != weight_map.end() && wm->second != f) continue;  // index says it lives elsewhere
      }
      if (all.count(kv.first)) throw Error(path + ": tensor '" + kv.first + "' appears in more than one shard");
      all[kv.first] = TensorRef{&kv.second, path};
    }
  }
  for (const auto& kv : weight_map) {
    if (!all.count(kv.first)) {
      throw Error(dir + "/" + kv.second + ": missing tensor '" + kv.first + "' (listed in " + index + ")");
    }
  }

  // Every tensor: float dtype, layer index in range.
  std::string dtype;
  for (const auto& kv : all) {
    const TensorView& t = *kv.second.view;
    if (!is_float(t.dtype)) {
      throw Error(kv.second.file + ": tensor '" + kv.first + "': dtype " + dtype_name(t.dtype) +
                  " is not supported (F32, F16, BF16)");
    }
    const std::string pre = "model.layers.";
    if (kv.first.compare(0, pre.size(), pre) == 0) {
      const char* s = kv.first.c_str() + pre.size();
      char* endp = nullptr;
      long li = std::strtol(s, &endp, 10);
      if (endp == s || *endp != '.' || li < 0 || li >= c.layers) {
        throw Error(kv.second.file + ": tensor '" + kv.first + "': layer index out of range (config has " +
                    std::to_string(c.layers) + " layers)");
      }
    }
  }

  auto get = [&](const std::string& name, std::vector<int64_t> want, bool required) -> const float* {
    auto it = all.find(name);
    if (it == all.end()) {
      if (!required) return nullptr;
      throw Error(where + ": missing tensor '" + name + "'");
    }
    const TensorView& t = *it->second.view;
    if (t.shape != want) {
      throw Error(it->second.file + ": tensor '" + name + "': shape " + shape_str(t.shape) +
                  " does not match the config (want " + shape_str(want) + ")");
    }
    if (dtype.empty()) dtype = dtype_name(t.dtype);
    w.params += t.numel();
    return as_f32(t, w.owned, w.bytes_mapped, w.bytes_converted);
  };

  const int64_t H = c.hidden, Q = int64_t(c.heads) * c.head_dim, KV = int64_t(c.kv_heads) * c.head_dim;
  w.embed = get("model.embed_tokens.weight", {c.vocab, H}, true);
  w.layers.resize(c.layers);
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[l];
    L.attn_norm = get(p + "input_layernorm.weight", {H}, true);
    L.ffn_norm = get(p + "post_attention_layernorm.weight", {H}, true);
    for (int pj = 0; pj < kNumProj; ++pj) {
      std::string name = p + (pj <= kO ? "self_attn." : "mlp.") + proj_name(pj) + ".weight";
      L.w[pj] = get(name, {proj_out(c, pj), proj_in(c, pj)}, true);
    }
    L.bq = get(p + "self_attn.q_proj.bias", {Q}, c.qkv_bias);
    L.bk = get(p + "self_attn.k_proj.bias", {KV}, c.qkv_bias);
    L.bv = get(p + "self_attn.v_proj.bias", {KV}, c.qkv_bias);
    if (all.count(p + "self_attn.o_proj.bias")) {
      throw Error(where + ": tensor '" + p + "self_attn.o_proj.bias': o_proj bias is not supported");
    }
  }
  w.norm = get("model.norm.weight", {H}, true);
  if (c.tied_embeddings) {
    w.lm_head = w.embed;
  } else {
    w.lm_head = get("lm_head.weight", {c.vocab, H}, true);
  }
  w.dtype = dtype;
  return m;
}

std::string Model::summary_json() const {
  const ModelConfig& c = config_;
  json j;
  j["kind"] = "model";
  j["dir"] = dir_;
  j["model_type"] = c.model_type;
  j["hidden_size"] = c.hidden;
  j["num_hidden_layers"] = c.layers;
  j["num_attention_heads"] = c.heads;
  j["num_key_value_heads"] = c.kv_heads;
  j["head_dim"] = c.head_dim;
  j["intermediate_size"] = c.intermediate;
  j["vocab_size"] = c.vocab;
  j["max_position_embeddings"] = c.max_pos;
  j["rms_norm_eps"] = c.rms_eps;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = c.rope_scaling == RopeScaling::kNone ? "none" : c.rope_scaling == RopeScaling::kLinear ? "linear" : "llama3";
  j["tie_word_embeddings"] = c.tied_embeddings;
  j["qkv_bias"] = c.qkv_bias;
  j["dtype"] = weights_->dtype;
  j["parameters"] = weights_->params;
  j["files"] = weights_->file_names;
  j["bytes_mapped"] = weights_->bytes_mapped;
  j["bytes_converted"] = weights_->bytes_converted;
  return j.dump();
}

}  // namespace longtail
