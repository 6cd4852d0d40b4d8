// Tiny test harness (no framework download): CHECK macros, temp folders, a safetensors writer and
// a random tiny-model writer for the loader and forward tests.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "longtail/engine.h"

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    ++g_checks;                                                                       \
    if (!(cond)) {                                                                    \
      ++g_failures;                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                                 \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                     \
  do {                                                                                            \
    ++g_checks;                                                                                   \
    double _a = (a), _b = (b);                                                                    \
    if (!(std::fabs(_a - _b) <= (tol))) {                                                         \
      ++g_failures;                                                                               \
      std::fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%.9g %s=%.9g tol %g\n", __FILE__, __LINE__, \
                   #a, _a, #b, _b, double(tol));                                                  \
    }                                                                                             \
  } while (0)

// Runs fn and checks that it throws longtail::Error whose message contains every needle
// (case-insensitive).
inline void expect_error(const char* file, int line, const std::function<void()>& fn,
                         std::vector<std::string> needles) {
  ++g_checks;
  try {
    fn();
  } catch (const longtail::Error& e) {
    std::string msg = e.what(), low = msg;
    for (char& c : low) c = char(std::tolower(c));
    for (std::string n : needles) {
      for (char& c : n) c = char(std::tolower(c));
      if (low.find(n) == std::string::npos) {
        ++g_failures;
        std::fprintf(stderr, "%s:%d: error message lacks '%s': %s\n", file, line, n.c_str(), msg.c_str());
      }
    }
    return;
  } catch (const std::exception& e) {
    ++g_failures;
    std::fprintf(stderr, "%s:%d: threw a non-longtail exception: %s\n", file, line, e.what());
    return;
  }
  ++g_failures;
  std::fprintf(stderr, "%s:%d: expected an error, none was thrown\n", file, line);
}
#define EXPECT_ERROR(fn, ...) expect_error(__FILE__, __LINE__, fn, {__VA_ARGS__})

inline int finish(const char* name) {
  std::fprintf(stderr, "%s: %d checks, %d failures\n", name, g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

inline std::string temp_dir(const std::string& tag) {
  std::string base = "/tmp/longtail-test-" + tag + "-XXXXXX";
  std::vector<char> buf(base.begin(), base.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    std::perror("mkdtemp");
    std::exit(2);
  }
  return buf.data();
}

inline void mkdir_p(const std::string& d) { ::mkdir(d.c_str(), 0755); }

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

struct TestTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;
  std::vector<float> values;  // converted to dtype on write
};

inline uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7fff + ((b >> 16) & 1);
  return uint16_t(b >> 16);
}

inline uint16_t to_f16(float f) {  // round-to-nearest for normal range (tests only)
  uint32_t b;
  std::memcpy(&b, &f, 4);
  uint32_t sign = (b >> 16) & 0x8000;
  int exp = int((b >> 23) & 0xff) - 127 + 15;
  uint32_t mant = b & 0x7fffff;
  if (exp <= 0) return uint16_t(sign);
  if (exp >= 31) return uint16_t(sign | 0x7c00);
  uint32_t h = sign | (uint32_t(exp) << 10) | (mant >> 13);
  if (mant & 0x1000) h += 1;
  return uint16_t(h);
}

// Serialises tensors; `edit` may rewrite the header JSON before it is written.
inline std::string safetensors_bytes(const std::vector<TestTensor>& ts,
                                     const std::function<void(nlohmann::json&)>& edit = nullptr) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (const auto& t : ts) {
    size_t begin = data.size();
    for (float v : t.values) {
      if (t.dtype == "F32") {
        data.append(reinterpret_cast<const char*>(&v), 4);
      } else if (t.dtype == "BF16") {
        uint16_t x = to_bf16(v);
        data.append(reinterpret_cast<const char*>(&x), 2);
      } else if (t.dtype == "F16") {
        uint16_t x = to_f16(v);
        data.append(reinterpret_cast<const char*>(&x), 2);
      } else {  // I32 etc: 4 bytes of zeros
        data.append(4, '\0');
      }
    }
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  if (edit) edit(h);
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  std::string out(8, '\0');
  uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + hs + data;
}

inline std::vector<float> random_values(std::mt19937& rng, size_t n, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct TinySpec {
  int hidden = 32, layers = 2, heads = 4, kv_heads = 2, inter = 48, vocab = 50;
  bool tied = false, qkv_bias = false;
  std::string rope = "none";  // none, linear, llama3
  std::string dtype = "F32";
  unsigned seed = 1;
};

inline nlohmann::json tiny_config(const TinySpec& s) {
  nlohmann::json c = {{"model_type", s.qkv_bias ? "qwen2" : "llama"},
                      {"hidden_size", s.hidden},
                      {"num_hidden_layers", s.layers},
                      {"num_attention_heads", s.heads},
                      {"num_key_value_heads", s.kv_heads},
                      {"intermediate_size", s.inter},
                      {"vocab_size", s.vocab},
                      {"max_position_embeddings", 512},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", s.tied}};
  if (s.rope == "linear") c["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  if (s.rope == "llama3")
    c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  return c;
}

inline std::vector<TestTensor> tiny_tensors(const TinySpec& s) {
  std::mt19937 rng(s.seed);
  const int hd = s.hidden / s.heads;
  std::vector<TestTensor> ts;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, float scale, float offset = 0) {
    size_t numel = 1;
    for (auto d : shape) numel *= size_t(d);
    auto v = random_values(rng, numel, scale);
    for (float& x : v) x += offset;
    ts.push_back({n, s.dtype, shape, v});
  };
  add("model.embed_tokens.weight", {s.vocab, s.hidden}, 1.0f);
  for (int l = 0; l < s.layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {s.hidden}, 0.1f, 1.0f);
    add(p + "post_attention_layernorm.weight", {s.hidden}, 0.1f, 1.0f);
    add(p + "self_attn.q_proj.weight", {s.heads * hd, s.hidden}, 0.3f);
    add(p + "self_attn.k_proj.weight", {s.kv_heads * hd, s.hidden}, 0.3f);
    add(p + "self_attn.v_proj.weight", {s.kv_heads * hd, s.hidden}, 0.3f);
    add(p + "self_attn.o_proj.weight", {s.hidden, s.heads * hd}, 0.3f);
    if (s.qkv_bias) {
      add(p + "self_attn.q_proj.bias", {s.heads * hd}, 0.2f);
      add(p + "self_attn.k_proj.bias", {s.kv_heads * hd}, 0.2f);
      add(p + "self_attn.v_proj.bias", {s.kv_heads * hd}, 0.2f);
    }
    add(p + "mlp.gate_proj.weight", {s.inter, s.hidden}, 0.3f);
    add(p + "mlp.up_proj.weight", {s.inter, s.hidden}, 0.3f);
    add(p + "mlp.down_proj.weight", {s.hidden, s.inter}, 0.3f);
  }
  add("model.norm.weight", {s.hidden}, 0.1f, 1.0f);
  if (!s.tied) add("lm_head.weight", {s.vocab, s.hidden}, 0.3f);
  return ts;
}

inline std::string write_tiny_model(const std::string& dir, const TinySpec& s) {
  mkdir_p(dir);
  write_file(dir + "/config.json", tiny_config(s).dump());
  write_file(dir + "/model.safetensors", safetensors_bytes(tiny_tensors(s)));
  return dir;
}

struct TinyAdapterSpec {
  int r = 4;
  double alpha = 8;
  bool rslora = false;
  std::vector<std::string> modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  nlohmann::json rank_pattern = nlohmann::json::object();
  nlohmann::json alpha_pattern = nlohmann::json::object();
  std::string dtype = "F32";
  unsigned seed = 7;
};

inline int module_in(const TinySpec& s, const std::string& m) {
  const int hd = s.hidden / s.heads;
  if (m == "o_proj") return s.heads * hd;
  if (m == "down_proj") return s.inter;
  return s.hidden;
}
inline int module_out(const TinySpec& s, const std::string& m) {
  const int hd = s.hidden / s.heads;
  if (m == "q_proj") return s.heads * hd;
  if (m == "k_proj" || m == "v_proj") return s.kv_heads * hd;
  if (m == "gate_proj" || m == "up_proj") return s.inter;
  return s.hidden;
}

inline std::vector<TestTensor> tiny_adapter_tensors(const TinySpec& base, const TinyAdapterSpec& a) {
  std::mt19937 rng(a.seed);
  std::vector<TestTensor> ts;
  for (int l = 0; l < base.layers; ++l) {
    for (const auto& m : a.modules) {
      int r = a.r;
      std::string blk = (m == "gate_proj" || m == "up_proj" || m == "down_proj") ? "mlp." : "self_attn.";
      const std::string full = "model.layers." + std::to_string(l) + "." + blk + m;
      if (a.rank_pattern.contains(full)) r = a.rank_pattern[full].get<int>();
      else if (a.rank_pattern.contains(m)) r = a.rank_pattern[m].get<int>();
      std::string p = "base_model.model.model.layers." + std::to_string(l) + "." + blk + m;
      int in = module_in(base, m), out = module_out(base, m);
      ts.push_back({p + ".lora_A.weight", a.dtype, {r, in}, random_values(rng, size_t(r) * in, 0.3f)});
      ts.push_back({p + ".lora_B.weight", a.dtype, {out, r}, random_values(rng, size_t(out) * r, 0.3f)});
    }
  }
  return ts;
}

inline nlohmann::json tiny_adapter_config(const TinyAdapterSpec& a) {
  return {{"peft_type", "LORA"},       {"r", a.r},          {"lora_alpha", a.alpha},
          {"target_modules", a.modules}, {"use_rslora", a.rslora}, {"rank_pattern", a.rank_pattern},
          {"alpha_pattern", a.alpha_pattern}, {"bias", "none"}, {"use_dora", false},
          {"fan_in_fan_out", false},    {"modules_to_save", nullptr}};
}

inline std::string write_tiny_adapter(const std::string& dir, const TinySpec& base, const TinyAdapterSpec& a) {
  mkdir_p(dir);
  write_file(dir + "/adapter_config.json", tiny_adapter_config(a).dump());
  write_file(dir + "/adapter_model.safetensors", safetensors_bytes(tiny_adapter_tensors(base, a)));
  return dir;
}
