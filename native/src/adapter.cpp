// PEFT LoRA adapter loading: adapter_config.json + adapter_model.safetensors, validated against the
// base model. A is kept as [rank, in]; B is transposed once to [rank, out].
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "model_internal.h"

namespace longtail {

using ojson = nlohmann::ordered_json;

namespace {

std::string read_small(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": missing " + what);
  if (st.st_size > (16 << 20)) throw Error(path + ": " + what + " is too large");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read " + what);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int proj_from_name(const std::string& s) {
  for (int p = 0; p < kNumProj; ++p) {
    std::string n = proj_name(p);
    if (s == n) return p;
    if (s.size() > n.size() && s.compare(s.size() - n.size(), n.size(), n) == 0 && s[s.size() - n.size() - 1] == '.') return p;
  }
  return -1;
}

std::string module_path(int layer, int p) {
  return "model.layers." + std::to_string(layer) + (p <= kO ? ".self_attn." : ".mlp.") + proj_name(p);
}

// PEFT's rank_pattern / alpha_pattern: a key matches a module when it equals its name or is a
// dotted suffix of its full path. First match in file order wins (as in PEFT).
const ojson* find_pattern(const ojson& pattern, const std::string& full) {
  for (auto it = pattern.begin(); it != pattern.end(); ++it) {
    const std::string& k = it.key();
    if (k == full || ("base_model.model." + full) == k) return &it.value();
    if (full.size() > k.size() && full.compare(full.size() - k.size(), k.size(), k) == 0 &&
        full[full.size() - k.size() - 1] == '.') {
      return &it.value();
    }
  }
  return nullptr;
}

}  // namespace

void build_adapter_view(const AdapterWeights& w, AdapterView& v,
                        const std::function<const float*(int, int, bool, int)>& row) {
  v.base = w.base;
  v.max_rank = w.max_rank;
  v.layers.assign(w.layers.size(), {});
  size_t n = 0;
  for (const auto& layer : w.layers)
    for (const LoraModule& m : layer) n += 2 * size_t(m.rank);
  v.rows.assign(n, nullptr);
  size_t at = 0;
  for (size_t l = 0; l < w.layers.size(); ++l) {
    for (int p = 0; p < kNumProj; ++p) {
      const LoraModule& m = w.layers[l][p];
      LoraRows& r = v.layers[l][p];
      r.rank = m.rank;
      r.scale = m.scale;
      if (!m.rank) continue;
      r.A = v.rows.data() + at;
      for (int k = 0; k < m.rank; ++k) v.rows[at++] = row(int(l), p, false, k);
      r.Bt = v.rows.data() + at;
      for (int k = 0; k < m.rank; ++k) v.rows[at++] = row(int(l), p, true, k);
    }
  }
}

Adapter::Adapter() = default;
Adapter::~Adapter() = default;

uint64_t Adapter::parameter_count() const { return weights_->params; }
uint64_t Adapter::bytes() const { return weights_->params * 4; }

std::unique_ptr<Adapter> load_adapter(const std::string& dir_in, const Model& base) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const ModelConfig& c = base.config();
  const std::string cfg_path = dir + "/adapter_config.json";
  ojson j = ojson::parse(read_small(cfg_path, "adapter_config.json"), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(cfg_path + ": invalid JSON");

  auto flag = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return false;
    if (!it->is_boolean()) throw Error(cfg_path + ": field '" + key + "' must be a boolean");
    return it->get<bool>();
  };
  if (auto it = j.find("peft_type"); it != j.end() && it->is_string() && it->get<std::string>() != "LORA") {
    throw Error(cfg_path + ": peft_type '" + it->get<std::string>() + "' is not supported (LORA)");
  }
  if (flag("use_dora")) throw Error(cfg_path + ": use_dora is not supported (DoRA adapters)");
  if (flag("fan_in_fan_out")) throw Error(cfg_path + ": fan_in_fan_out is not supported");
  if (auto it = j.find("modules_to_save"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw Error(cfg_path + ": modules_to_save must be a list");
    if (!it->empty()) throw Error(cfg_path + ": modules_to_save is not supported (" + it->dump() + ")");
  }
  if (auto it = j.find("bias"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "none") throw Error(cfg_path + ": bias " + it->dump() + " is not supported (only \"none\")");
  }
  auto num = [&](const char* key, double def) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    if (!it->is_number()) throw Error(cfg_path + ": field '" + key + "' must be a number");
    return it->get<double>();
  };
  const double r_d = num("r", 8);
  if (r_d != std::floor(r_d) || r_d < 1 || r_d > 256) {
    throw Error(cfg_path + ": rank r = " + ojson(r_d).dump() + " is out of range (1..256)");
  }
  const int r = static_cast<int>(r_d);
  const double alpha = num("lora_alpha", 8);
  const bool rslora = flag("use_rslora");
  ojson rank_pattern = ojson::object(), alpha_pattern = ojson::object();
  if (auto it = j.find("rank_pattern"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw Error(cfg_path + ": rank_pattern must be an object");
    rank_pattern = *it;
  }
  if (auto it = j.find("alpha_pattern"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw Error(cfg_path + ": alpha_pattern must be an object");
    alpha_pattern = *it;
  }

  // Which layers.
  std::vector<bool> layer_on(c.layers, true);
  if (auto it = j.find("layers_to_transform"); it != j.end() && !it->is_null()) {
    std::fill(layer_on.begin(), layer_on.end(), false);
    std::vector<int64_t> ls;
    if (it->is_number_integer()) ls.push_back(it->get<int64_t>());
    else if (it->is_array()) {
      for (const auto& v : *it) {
        if (!v.is_number_integer()) throw Error(cfg_path + ": layers_to_transform must hold integers");
        ls.push_back(v.get<int64_t>());
      }
    } else throw Error(cfg_path + ": layers_to_transform must be an integer or a list");
    for (int64_t l : ls) {
      if (l < 0 || l >= c.layers) {
        throw Error(cfg_path + ": layers_to_transform names layer " + std::to_string(l) + " but the base model has " + std::to_string(c.layers) + " layers");
      }
      layer_on[l] = true;
    }
  }

  // Which (layer, projection) pairs the config targets.
  std::vector<std::array<bool, kNumProj>> expected(c.layers);
  for (auto& e : expected) e.fill(false);
  auto tm = j.find("target_modules");
  if (tm == j.end() || tm->is_null()) throw Error(cfg_path + ": missing field 'target_modules'");
  auto reject_embedding = [&](const std::string& name) {
    if (name.find("embed_tokens") != std::string::npos || name.find("lm_head") != std::string::npos) {
      throw Error(cfg_path + ": target module '" + name + "': embedding LoRA (embed_tokens / lm_head) is not supported");
    }
  };
  if (tm->is_string()) {
    std::string s = tm->get<std::string>();
    if (s == "all-linear") {
      for (int l = 0; l < c.layers; ++l) expected[l].fill(layer_on[l]);
    } else {
      reject_embedding(s);
      try {
        std::regex re(s);
        for (int l = 0; l < c.layers; ++l) {
          for (int p = 0; p < kNumProj; ++p) {
            if (layer_on[l] && std::regex_match(module_path(l, p), re)) expected[l][p] = true;
          }
        }
      } catch (const std::regex_error&) {
        throw Error(cfg_path + ": target_modules regex '" + s + "' is invalid");
      }
    }
  } else if (tm->is_array()) {
    for (const auto& v : *tm) {
      if (!v.is_string()) throw Error(cfg_path + ": target_modules must hold strings");
      std::string s = v.get<std::string>();
      reject_embedding(s);
      int p = proj_from_name(s);
      if (p < 0) throw Error(cfg_path + ": target module '" + s + "' is not supported (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
      for (int l = 0; l < c.layers; ++l) expected[l][p] = expected[l][p] || layer_on[l];
    }
  } else {
    throw Error(cfg_path + ": target_modules must be a list or a string");
  }

  // Tensors.
  const std::string st_path = dir + "/adapter_model.safetensors";
  struct stat sb;
  if (::stat(st_path.c_str(), &sb) != 0) {
    if (::stat((dir + "/adapter_model.bin").c_str(), &sb) == 0) {
      throw Error(dir + "/adapter_model.bin: pickle adapters are not supported (want adapter_model.safetensors)");
    }
    throw Error(st_path + ": missing adapter_model.safetensors");
  }
  std::unique_ptr<SafetensorsFile> file = open_safetensors(st_path);

  struct Pair { const TensorView* A = nullptr; const TensorView* B = nullptr; };
  std::vector<std::array<Pair, kNumProj>> found(c.layers);
  std::string dtype;
  for (const auto& kv : file->tensors) {
    const std::string& name = kv.first;
    const TensorView& t = kv.second;
    auto bad = [&](const std::string& what) -> Error { return Error(st_path + ": tensor '" + name + "': " + what); };
    if (name.find("lora_embedding") != std::string::npos || name.find("embed_tokens") != std::string::npos ||
        name.find("lm_head") != std::string::npos) {
      throw bad("embedding LoRA (embed_tokens / lm_head) is not supported");
    }
    if (name.find("lora_magnitude_vector") != std::string::npos) throw bad("use_dora is not supported (DoRA magnitude vector)");
    static const std::regex key_re(
        R"(^(?:base_model\.model\.)?model\.layers\.(\d{1,9})\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)(?:\.default)?\.weight$)");
    std::smatch m;
    if (!std::regex_match(name, m, key_re)) {
      if (name.find("modules_to_save") != std::string::npos) throw bad("modules_to_save is not supported");
      if (name.find(".bias") != std::string::npos) throw bad("LoRA bias is not supported");
      throw bad("unexpected tensor (not a LoRA A/B weight of q/k/v/o/gate/up/down_proj)");
    }
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16) {
      throw bad(std::string("dtype ") + dtype_name(t.dtype) + " is not supported (F32, F16, BF16)");
    }
    const long layer = std::strtol(m[1].str().c_str(), nullptr, 10);
    const int p = proj_from_name(m[3].str());
    if ((p <= kO) != (m[2].str() == "self_attn")) throw bad("unexpected tensor (projection under the wrong block)");
    if (layer < 0 || layer >= c.layers) {
      throw bad("layer " + std::to_string(layer) + " does not exist: the base model has " + std::to_string(c.layers) + " layers");
    }
    if (t.shape.size() != 2) throw bad("shape " + shape_str(t.shape) + " is not 2-D");
    Pair& pr = found[layer][p];
    (m[4].str() == "A" ? pr.A : pr.B) = &t;
    if (dtype.empty()) dtype = dtype_name(t.dtype);
  }

  auto w = std::make_unique<AdapterWeights>();
  w->base = &base;
  w->layers.resize(c.layers);
  w->dtype = dtype;
  w->r = r;
  w->lora_alpha = static_cast<float>(alpha);
  w->rslora = rslora;
  std::set<int> targets;
  for (int l = 0; l < c.layers; ++l) {
    for (int p = 0; p < kNumProj; ++p) {
      Pair& pr = found[l][p];
      const std::string mod = module_path(l, p);
      const std::string key = "base_model.model." + mod;
      if (!pr.A && !pr.B) {
        if (expected[l][p]) throw Error(st_path + ": missing tensor '" + key + ".lora_A.weight' (target_modules names " + proj_name(p) + ")");
        continue;
      }
      if (!pr.A) throw Error(st_path + ": missing tensor '" + key + ".lora_A.weight'");
      if (!pr.B) throw Error(st_path + ": missing tensor '" + key + ".lora_B.weight'");
      int rank = r;
      if (const ojson* rp = find_pattern(rank_pattern, mod)) {
        if (!rp->is_number_integer() || rp->get<int64_t>() < 1 || rp->get<int64_t>() > 256) {
          throw Error(cfg_path + ": rank_pattern for '" + mod + "' = " + rp->dump() + " is out of range (1..256)");
        }
        rank = static_cast<int>(rp->get<int64_t>());
      }
      double a = alpha;
      if (const ojson* ap = find_pattern(alpha_pattern, mod)) {
        if (!ap->is_number()) throw Error(cfg_path + ": alpha_pattern for '" + mod + "' must be a number");
        a = ap->get<double>();
      }
      const int in = proj_in(c, p), out = proj_out(c, p);
      const auto& sa = pr.A->shape;
      const auto& sb2 = pr.B->shape;
      if (sa[0] != rank) {
        throw Error(st_path + ": tensor '" + pr.A->name + "': rank " + std::to_string(sa[0]) +
                    " does not match adapter_config rank " + std::to_string(rank) + " for " + proj_name(p));
      }
      if (sb2[1] != rank) {
        throw Error(st_path + ": tensor '" + pr.B->name + "': rank " + std::to_string(sb2[1]) +
                    " does not match adapter_config rank " + std::to_string(rank) + " for " + proj_name(p));
      }
      if (sa[1] != in) {
        throw Error(st_path + ": tensor '" + pr.A->name + "': shape " + shape_str(sa) + " does not match the base model (want [" +
                    std::to_string(rank) + ", " + std::to_string(in) + "])");
      }
      if (sb2[0] != out) {
        throw Error(st_path + ": tensor '" + pr.B->name + "': shape " + shape_str(sb2) + " does not match the base model (want [" +
                    std::to_string(out) + ", " + std::to_string(rank) + "])");
      }
      LoraModule& lm = w->layers[l][p];
      lm.rank = rank;
      lm.scale = static_cast<float>(rslora ? a / std::sqrt(static_cast<double>(rank)) : a / rank);
      auto A = std::make_unique<AlignedFloats>(size_t(rank) * in);
      tensor_to_f32(*pr.A, A->ptr);
      auto Bf = std::make_unique<AlignedFloats>(size_t(out) * rank);
      tensor_to_f32(*pr.B, Bf->ptr);
      auto Bt = std::make_unique<AlignedFloats>(size_t(rank) * out);
      for (int o = 0; o < out; ++o)
        for (int k = 0; k < rank; ++k) Bt->ptr[size_t(k) * out + o] = Bf->ptr[size_t(o) * rank + k];
      lm.A = A->ptr;
      lm.Bt = Bt->ptr;
      w->owned.push_back(std::move(A));
      w->owned.push_back(std::move(Bt));
      w->params += uint64_t(rank) * (in + out);
      w->max_rank = std::max(w->max_rank, rank);
      targets.insert(p);
    }
  }
  if (targets.empty()) throw Error(st_path + ": missing tensor: the adapter has no LoRA weights");
  for (int p : targets) w->targets.push_back(proj_name(p));

  std::unique_ptr<Adapter> ad(new Adapter());
  ad->dir_ = dir;
  ad->view_ = std::make_unique<AdapterView>();
  build_adapter_view(*w, *ad->view_, [&](int l, int p, bool is_b, int k) {
    const LoraModule& m = w->layers[l][p];
    return is_b ? m.Bt + size_t(k) * proj_out(c, p) : m.A + size_t(k) * proj_in(c, p);
  });
  ad->weights_ = std::move(w);
  return ad;
}

std::string Adapter::summary_json() const {
  nlohmann::json j;
  j["kind"] = "adapter";
  j["dir"] = dir_;
  j["r"] = weights_->r;
  j["lora_alpha"] = weights_->lora_alpha;
  j["use_rslora"] = weights_->rslora;
  j["max_rank"] = weights_->max_rank;
  j["target_modules"] = weights_->targets;
  j["dtype"] = weights_->dtype;
  j["parameters"] = weights_->params;
  j["layers"] = weights_->layers.size();
  return j.dump();
}

}  // namespace longtail
