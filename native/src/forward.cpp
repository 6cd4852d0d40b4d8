// The batched heterogeneous forward step.
//
// One step = many sequences, each contributing a prefill chunk (n > 1 tokens) or one decode token,
// each with its own adapter or none. All tokens of the step are packed into one activation matrix
// x [T, hidden]; every base projection is one GEMM over all T tokens; the LoRA delta of each
// projection runs per adapter segment (SGMV for prefill chunks, BGMV for decode tokens).
// Buffers are sized in the constructor; KV lives in a paged cache (fixed-size blocks, a block table
// per sequence, a free list) allocated once; step() allocates nothing.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <vector>

#include "backend.h"
#include "model_internal.h"
#include "threadpool.h"

namespace longtail {

struct Sequence {
  int length = 0;               // positions consumed
  std::vector<int32_t> blocks;  // block table: position p lives in blocks[p / block_tokens]
};

// A device copy of an adapter whose rows the backend cannot read (Adapter::view() on CUDA),
// made on the first step that uses it and kept for the Engine's lifetime.
struct AdapterMirror {
  const float* const* host_rows = nullptr;  // view->rows.data() when mirrored (staleness check)
  size_t n = 0;
  const float* first = nullptr;
  float* data = nullptr;                    // backend memory holding every row
  std::vector<const float*> rows;           // [n] backend row pointers, parallel to view->rows
};

struct EngineState {
  CpuBackend* cpu = nullptr;  // set when the backend is the CPU one
  Backend* be = nullptr;
  int threads = 0;
  bool invariant = false;  // the CPU backend in batch-invariant mode
  int max_tokens = 0, max_seqs = 0;
  std::vector<double> inv_freq;  // [head_dim / 2]
  std::map<SeqId, Sequence> seqs;
  SeqId next_id = 1;
  // Weights as the backend reads them (Backend::weights of each tensor; CPU: the model's own).
  const float *embed = nullptr, *norm = nullptr, *lm_head = nullptr;
  std::vector<LayerWeights> layers;
  // Paged KV cache: per layer, K and V arenas of [n_blocks, block_tokens, kv_dim].
  int block_tokens = 0, n_blocks = 0;
  float* kv = nullptr;            // [layers][2][n_blocks * block_tokens * kv_dim]
  std::vector<int32_t> free_blocks;
  std::vector<KvLayer> kv_layers;  // [layers]
  // Step scratch, sized at construction.
  float *x = nullptr, *xn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr,
        *tmp = nullptr, *g = nullptr, *u = nullptr, *lora_tmp = nullptr, *last = nullptr,
        *logits = nullptr;  // logits: device backends only ([max_seqs, vocab])
  // Host plan of a step (the backend reads it through plan_put: CPU zero-copy).
  std::vector<float> cos, sin;  // [T, head_dim/2]
  std::vector<int32_t> tokens;  // [T]
  std::vector<int> pos;         // [T] absolute position of each token
  std::vector<KvView> views;    // [T]
  std::vector<const int32_t*> seq_blocks;  // [max_seqs] block table of each sequence, as kernels see it
  std::vector<LoraSegment> segs;  // [layers * kNumProj * max_seqs]
  std::vector<int> seg_off, seg_n;  // [layers * kNumProj]
  std::vector<const AdapterView*> seq_adapter;  // [max_seqs]
  std::vector<const float* const*> seq_rows;    // [max_seqs] the adapter's rows, as kernels see them
  std::vector<int> seq_start;     // [max_seqs]
  std::map<const AdapterView*, AdapterMirror> mirrors;
  ~EngineState() {
    if (be) {
      for (float* p : {x, xn, q, k, v, att, tmp, g, u, lora_tmp, last, logits})
        if (p) be->free(p);
      if (kv) be->free(kv);
      for (auto& m : mirrors) be->free(m.second.data);
      if (cpu) destroy_cpu_backend(cpu);
      else delete be;
    }
  }
};

#ifndef LONGTAIL_HAVE_CUDA
bool cuda_backend_compiled() { return false; }
int cuda_device_count(std::string* why) {
  if (why) *why = "this build has no CUDA support (configured without nvcc or with -DLONGTAIL_CUDA=OFF)";
  return 0;
}
Backend* make_cuda_backend(const CudaBackendOptions&) {
  throw Error("CUDA backend requested but this build has no CUDA support");
}
#endif

static std::vector<double> rope_inv_freq(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<double> f(half);
  for (int i = 0; i < half; ++i) f[i] = 1.0 / std::pow(c.rope_theta, double(2 * i) / c.head_dim);
  if (c.rope_scaling == RopeScaling::kLinear) {
    for (double& x : f) x /= c.rope_factor;
  } else if (c.rope_scaling == RopeScaling::kLlama3) {
    // As transformers' _compute_llama3_parameters.
    const double old_ctx = c.rope_original_max_pos;
    const double low_wl = old_ctx / c.rope_low_freq_factor, high_wl = old_ctx / c.rope_high_freq_factor;
    for (double& x : f) {
      const double wl = 2 * M_PI / x;
      if (wl < high_wl) continue;
      if (wl > low_wl) {
        x /= c.rope_factor;
      } else {
        const double smooth = (old_ctx / wl - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
        x = (1 - smooth) * x / c.rope_factor + smooth * x;
      }
    }
  }
  return f;
}

Engine::Engine(const Model& model, EngineOptions o) : model_(model), state_(std::make_unique<EngineState>()) {
  const ModelConfig& c = model.config();
  EngineState& s = *state_;
  s.max_tokens = o.max_tokens_per_step > 0 ? o.max_tokens_per_step : 512;
  s.max_seqs = o.max_seqs_per_step > 0 ? o.max_seqs_per_step : 64;
  const size_t T = s.max_tokens, H = c.hidden, Q = size_t(c.heads) * c.head_dim, KV = size_t(c.kv_heads) * c.head_dim;
  const size_t I = c.intermediate;
  // Backend choice.
  std::string choice = o.backend.empty() ? "auto" : o.backend;
  if (choice == "auto") {
    if (const char* env = std::getenv("LONGTAIL_BACKEND")) {
      if (*env) choice = env;
    }
  }
  if (choice != "auto" && choice != "cpu" && choice != "cuda") {
    throw Error("backend must be auto, cpu or cuda, got '" + choice + "'");
  }
  bool use_cuda = false;
  if (choice != "cpu") {
    std::string why;
    const int n = cuda_device_count(&why);
    if (n > 0) use_cuda = true;
    else if (choice == "cuda") throw Error("CUDA backend requested but " + why);
  }
  if (use_cuda) {
    CudaBackendOptions co;
    co.max_gemm_elems = T * std::max({H, Q, I}) + size_t(s.max_seqs) * H;
    s.be = make_cuda_backend(co);
    s.threads = o.threads > 0 ? o.threads : hardware_threads();
  } else {
    CpuBackendOptions bo;
    bo.threads = o.threads;
    bo.max_context = 256;
    bo.batch_invariant = o.batch_invariant;
    s.cpu = make_cpu_backend(bo);
    s.be = as_backend(s.cpu);
    s.threads = cpu_backend_pool(s.cpu).size();
    s.invariant = o.batch_invariant;
  }
  Backend& be = *s.be;
  // Weights, mapped once (CPU: the model's own pointers).
  const ModelWeights& W = model.weights();
  auto vec = [&](const float* p, size_t n) { return p ? be.weights(p, 1, n) : nullptr; };
  s.embed = be.weights(W.embed, c.vocab, H);
  s.lm_head = be.weights(W.lm_head, c.vocab, H);
  s.norm = vec(W.norm, H);
  s.layers.resize(W.layers.size());
  for (size_t l = 0; l < W.layers.size(); ++l) {
    const LayerWeights& L = W.layers[l];
    LayerWeights& D = s.layers[l];
    D.attn_norm = vec(L.attn_norm, H);
    D.ffn_norm = vec(L.ffn_norm, H);
    for (int p = 0; p < kNumProj; ++p) D.w[p] = be.weights(L.w[p], proj_out(c, p), proj_in(c, p));
    D.bq = vec(L.bq, Q);
    D.bk = vec(L.bk, KV);
    D.bv = vec(L.bv, KV);
  }
  s.inv_freq = rope_inv_freq(c);
  s.x = be.alloc(T * H);
  s.xn = be.alloc(T * std::max(H, Q));
  s.q = be.alloc(T * Q);
  s.k = be.alloc(T * KV);
  s.v = be.alloc(T * KV);
  s.att = be.alloc(T * Q);
  s.tmp = be.alloc(T * H);
  s.g = be.alloc(T * I);
  s.u = be.alloc(T * I);
  s.lora_tmp = be.alloc(T * 256);
  s.last = be.alloc(size_t(s.max_seqs) * H);
  if (!be.host_memory()) s.logits = be.alloc(size_t(s.max_seqs) * c.vocab);
  s.cos.resize(T * (c.head_dim / 2));
  s.sin.resize(T * (c.head_dim / 2));
  s.tokens.resize(T);
  s.pos.resize(T);
  s.views.resize(T);
  s.seq_blocks.resize(s.max_seqs);
  s.segs.resize(size_t(c.layers) * kNumProj * s.max_seqs);
  s.seg_off.resize(size_t(c.layers) * kNumProj);
  s.seg_n.resize(size_t(c.layers) * kNumProj);
  s.seq_adapter.resize(s.max_seqs);
  s.seq_rows.resize(s.max_seqs);
  s.seq_start.resize(s.max_seqs);
  // KV cache: a byte budget split into blocks.
  s.block_tokens = o.kv_block_tokens > 0 ? o.kv_block_tokens : 16;
  const size_t kv_budget = o.kv_cache_bytes > 0 ? o.kv_cache_bytes : (size_t(1) << 30);
  const size_t block_bytes = size_t(c.layers) * 2 * s.block_tokens * KV * sizeof(float);
  s.n_blocks = int(std::min<size_t>(kv_budget / block_bytes, 1 << 24));
  if (s.n_blocks < 1) {
    throw Error("kv_cache_bytes = " + std::to_string(kv_budget) + " is less than one KV block (" +
                std::to_string(block_bytes) + " bytes of " + std::to_string(s.block_tokens) + " positions)");
  }
  const size_t layer_floats = size_t(s.n_blocks) * s.block_tokens * KV;
  s.kv = be.alloc(size_t(c.layers) * 2 * layer_floats);
  if (!s.kv) throw Error("cannot allocate the KV cache (" + std::to_string(s.n_blocks * block_bytes) + " bytes)");
  for (int l = 0; l < c.layers; ++l) {
    float* k = s.kv + size_t(l) * 2 * layer_floats;
    s.kv_layers.push_back({k, k + layer_floats, s.block_tokens});
  }
  s.free_blocks.resize(s.n_blocks);
  for (int b = 0; b < s.n_blocks; ++b) s.free_blocks[b] = s.n_blocks - 1 - b;  // pop_back hands out 0, 1, ...
}

Engine::~Engine() = default;

Backend& engine_backend(Engine& e) { return *e.state_->be; }

int Engine::threads() const { return state_->threads; }
const char* Engine::backend_name() const { return state_->be->name(); }
bool Engine::batch_invariant() const { return state_->invariant; }

// The rows of `a` as the backend's kernels read them: the view's own row pointers when reachable,
// else (a device backend given host rows) a device mirror made once and cached per view.
static const float* const* adapter_rows(EngineState& s, const ModelConfig& c, const AdapterView* a) {
  Backend& be = *s.be;
  if (a->rows.empty() || be.reachable(a->rows[0])) return a->rows.data();
  AdapterMirror& m = s.mirrors[a];
  if (m.host_rows == a->rows.data() && m.n == a->rows.size() && m.first == a->rows[0]) return m.rows.data();
  if (m.data) be.free(m.data);
  m = AdapterMirror{};
  size_t floats = 0;
  for (const auto& layer : a->layers)
    for (int p = 0; p < kNumProj; ++p) floats += size_t(layer[p].rank) * (proj_in(c, p) + proj_out(c, p));
  m.data = be.alloc(std::max<size_t>(floats, 1));
  if (!m.data) throw Error("cannot allocate device memory for an adapter mirror");
  m.rows.assign(a->rows.size(), nullptr);
  size_t at = 0;
  for (const auto& layer : a->layers) {
    for (int p = 0; p < kNumProj; ++p) {
      const LoraRows& r = layer[p];
      for (int k = 0; k < r.rank; ++k) {
        for (int b = 0; b < 2; ++b) {
          const float* const* base = b ? r.Bt : r.A;
          const size_t len = b ? proj_out(c, p) : proj_in(c, p);
          const size_t idx = size_t(base + k - a->rows.data());
          if (idx >= a->rows.size()) throw Error("adapter view rows are not in its row store");
          be.upload(m.data + at, base[k], len);
          m.rows[idx] = m.data + at;
          at += len;
        }
      }
    }
  }
  be.sync();
  m.host_rows = a->rows.data();
  m.n = a->rows.size();
  m.first = a->rows[0];
  return m.rows.data();
}

SeqId Engine::create_sequence(int max_tokens) {
  if (max_tokens < 0) throw Error("create_sequence: max_tokens must not be negative");
  EngineState& s = *state_;
  const SeqId id = s.next_id++;
  s.seqs[id] = Sequence{};
  if (max_tokens > 0 && !reserve(id, max_tokens)) {
    s.seqs.erase(id);
    throw Error("create_sequence: out of KV blocks for " + std::to_string(max_tokens) + " positions (" +
                std::to_string(s.free_blocks.size()) + " of " + std::to_string(s.n_blocks) + " blocks free)");
  }
  return id;
}

bool Engine::reserve(SeqId id, int positions) {
  EngineState& s = *state_;
  auto it = s.seqs.find(id);
  if (it == s.seqs.end()) throw Error("unknown sequence " + std::to_string(id));
  if (positions > model_.config().max_pos) {
    throw Error("sequence " + std::to_string(id) + ": " + std::to_string(positions) +
                " positions exceed max_position_embeddings " + std::to_string(model_.config().max_pos));
  }
  Sequence& seq = it->second;
  const size_t need = (size_t(std::max(positions, 0)) + s.block_tokens - 1) / s.block_tokens;
  if (need <= seq.blocks.size()) return true;
  if (need - seq.blocks.size() > s.free_blocks.size()) return false;
  while (seq.blocks.size() < need) {
    seq.blocks.push_back(s.free_blocks.back());
    s.free_blocks.pop_back();
  }
  if (s.cpu) cpu_backend_ensure_context(s.cpu, int(seq.blocks.size()) * s.block_tokens);
  return true;
}

void Engine::release_sequence(SeqId id) {
  EngineState& s = *state_;
  auto it = s.seqs.find(id);
  if (it == s.seqs.end()) return;
  for (int32_t b : it->second.blocks) s.free_blocks.push_back(b);
  s.seqs.erase(it);
}

int Engine::sequence_length(SeqId id) const {
  auto it = state_->seqs.find(id);
  if (it == state_->seqs.end()) throw Error("unknown sequence " + std::to_string(id));
  return it->second.length;
}

int Engine::kv_block_tokens() const { return state_->block_tokens; }
int Engine::kv_blocks_total() const { return state_->n_blocks; }
int Engine::kv_blocks_free() const { return int(state_->free_blocks.size()); }

void Engine::step(const StepBatch& batch, float* logits) {
  const ModelConfig& c = model_.config();
  EngineState& s = *state_;
  Backend& be = *s.be;
  const int nseq = int(batch.seqs.size());
  const int H = c.hidden, Qd = c.heads * c.head_dim, KVd = c.kv_heads * c.head_dim, I = c.intermediate;
  const int half = c.head_dim / 2;

  // --- plan: validate, pack tokens, build segments (no allocation: vectors are pre-sized) ---
  if (nseq == 0) return;
  if (nseq > s.max_seqs) throw Error("step: " + std::to_string(nseq) + " sequences exceed max_seqs_per_step " + std::to_string(s.max_seqs));
  int T = 0;
  for (int i = 0; i < nseq; ++i) {
    const SequenceStep& ss = batch.seqs[i];
    auto it = s.seqs.find(ss.seq);
    if (it == s.seqs.end()) throw Error("step: unknown sequence " + std::to_string(ss.seq));
    Sequence& seq = it->second;
    for (int j = 0; j < i; ++j) {
      if (batch.seqs[j].seq == ss.seq) throw Error("step: sequence " + std::to_string(ss.seq) + " appears twice");
    }
    if (ss.n_tokens <= 0 || !ss.tokens) throw Error("step: sequence " + std::to_string(ss.seq) + " has no tokens");
    if (ss.pos != seq.length) {
      throw Error("step: sequence " + std::to_string(ss.seq) + " is at position " + std::to_string(seq.length) +
                  " but the step says " + std::to_string(ss.pos));
    }
    if (ss.pos + ss.n_tokens > int(seq.blocks.size()) * s.block_tokens) {
      throw Error("step: sequence " + std::to_string(ss.seq) + " has KV blocks for " +
                  std::to_string(seq.blocks.size() * s.block_tokens) + " positions, the step needs " +
                  std::to_string(ss.pos + ss.n_tokens) + " (reserve first)");
    }
    if (T + ss.n_tokens > s.max_tokens) throw Error("step: more than max_tokens_per_step = " + std::to_string(s.max_tokens) + " tokens");
    if (ss.adapter && ss.adapter->base != &model_) throw Error("step: an adapter of sequence " + std::to_string(ss.seq) + " was validated against another model");
    s.seq_start[i] = T;
    s.seq_adapter[i] = ss.adapter;
    for (int j = 0; j < ss.n_tokens; ++j) {
      const int32_t tok = ss.tokens[j];
      if (tok < 0 || tok >= c.vocab) throw Error("step: token " + std::to_string(tok) + " is out of range (vocab " + std::to_string(c.vocab) + ")");
      s.tokens[T] = tok;
      s.pos[T] = ss.pos + j;
      ++T;
    }
  }
  // RoPE angles for this step's positions: [T, head_dim/2].
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < half; ++i) {
      const double a = double(s.pos[t]) * s.inv_freq[i];
      s.cos[size_t(t) * half + i] = float(std::cos(a));
      s.sin[size_t(t) * half + i] = float(std::sin(a));
    }
  }
  const AttentionShape shape{c.heads, c.kv_heads, c.head_dim};

  // Stage the plan where the kernels read it (CPU: plan_put returns the host pointers).
  be.plan_begin();
  const int32_t* tokens_p = static_cast<const int32_t*>(be.plan_put(s.tokens.data(), size_t(T) * sizeof(int32_t)));
  const int* pos_p = static_cast<const int*>(be.plan_put(s.pos.data(), size_t(T) * sizeof(int)));
  const float* cos_p = static_cast<const float*>(be.plan_put(s.cos.data(), size_t(T) * half * sizeof(float)));
  const float* sin_p = static_cast<const float*>(be.plan_put(s.sin.data(), size_t(T) * half * sizeof(float)));
  for (int i = 0; i < nseq; ++i) {
    const Sequence& seq = s.seqs.find(batch.seqs[i].seq)->second;
    s.seq_blocks[i] = static_cast<const int32_t*>(be.plan_put(seq.blocks.data(), seq.blocks.size() * sizeof(int32_t)));
    for (int j = 0; j < batch.seqs[i].n_tokens; ++j) s.views[s.seq_start[i] + j].blocks = s.seq_blocks[i];
  }
  const KvView* views_p = static_cast<const KvView*>(be.plan_put(s.views.data(), size_t(T) * sizeof(KvView)));
  // Each distinct adapter's row-pointer store, once (CPU: the view's own rows).
  for (int i = 0; i < nseq; ++i) {
    const AdapterView* a = s.seq_adapter[i];
    s.seq_rows[i] = nullptr;
    if (!a) continue;
    for (int j = 0; j < i; ++j) {
      if (s.seq_adapter[j] == a) {
        s.seq_rows[i] = s.seq_rows[j];
        break;
      }
    }
    if (s.seq_rows[i]) continue;
    const float* const* rows = adapter_rows(s, c, a);
    s.seq_rows[i] = static_cast<const float* const*>(be.plan_put(rows, a->rows.size() * sizeof(const float*)));
  }
  // LoRA segments of every (layer, projection): one per run of adjacent sequences on the same
  // adapter (callers group a step's sequences by adapter to make the runs long).
  int nsegs_total = 0;
  for (int l = 0; l < c.layers; ++l) {
    for (int p = 0; p < kNumProj; ++p) {
      const int lp = l * kNumProj + p;
      s.seg_off[lp] = nsegs_total;
      int n = 0;
      for (int i = 0; i < nseq; ++i) {
        const AdapterView* a = s.seq_adapter[i];
        if (!a) continue;
        const LoraRows& m = a->layers[l][p];
        if (m.rank == 0) continue;
        const int start = s.seq_start[i], len = batch.seqs[i].n_tokens;
        const size_t ia = size_t(m.A - a->rows.data()), ib = size_t(m.Bt - a->rows.data());
        const float* const* A = s.seq_rows[i] + ia;
        LoraSegment* prev = n ? &s.segs[nsegs_total + n - 1] : nullptr;
        if (prev && prev->A == A && prev->start + prev->len == start) {
          prev->len += len;  // adjacent sequences on the same adapter: one segment, A/B read once
          continue;
        }
        LoraSegment& g = s.segs[nsegs_total + n++];
        g.start = start;
        g.len = len;
        g.rank = m.rank;
        g.scale = m.scale;
        g.A = A;
        g.Bt = s.seq_rows[i] + ib;
      }
      s.seg_n[lp] = n;
      nsegs_total += n;
    }
  }
  const LoraSegment* segs_p =
      nsegs_total ? static_cast<const LoraSegment*>(be.plan_put(s.segs.data(), size_t(nsegs_total) * sizeof(LoraSegment)))
                  : nullptr;
  be.plan_commit();

  auto lora = [&](int l, int p, const float* in_act, float* out_act) {
    const int lp = l * kNumProj + p;
    if (s.seg_n[lp]) be.lora(segs_p + s.seg_off[lp], s.seg_n[lp], proj_in(c, p), proj_out(c, p), in_act, out_act, s.lora_tmp);
  };

  // --- forward ---
  be.embed(tokens_p, T, s.embed, H, s.x);  // x [T, hidden]
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& L = s.layers[l];
    // Attention block.
    be.rmsnorm(s.x, L.attn_norm, T, H, c.rms_eps, s.xn);          // xn [T, hidden]
    be.gemm(T, Qd, H, s.xn, L.w[kQ], L.bq, s.q);                   // q [T, heads*hd]
    lora(l, kQ, s.xn, s.q);
    be.gemm(T, KVd, H, s.xn, L.w[kK], L.bk, s.k);                  // k [T, kv_heads*hd]
    lora(l, kK, s.xn, s.k);
    be.gemm(T, KVd, H, s.xn, L.w[kV], L.bv, s.v);                  // v [T, kv_heads*hd]
    lora(l, kV, s.xn, s.v);
    be.rope(s.q, s.k, T, shape, cos_p, sin_p);
    be.kv_store(s.k, s.v, T, s.kv_layers[l], views_p, pos_p, KVd);
    be.attention(s.q, T, s.kv_layers[l], views_p, pos_p, shape, s.att);  // att [T, heads*hd]
    be.gemm(T, H, Qd, s.att, L.w[kO], nullptr, s.tmp);             // tmp [T, hidden]
    lora(l, kO, s.att, s.tmp);
    be.add(s.x, s.tmp, size_t(T) * H);
    // MLP block (SwiGLU).
    be.rmsnorm(s.x, L.ffn_norm, T, H, c.rms_eps, s.xn);
    be.gemm(T, I, H, s.xn, L.w[kGate], nullptr, s.g);              // g [T, inter]
    lora(l, kGate, s.xn, s.g);
    be.gemm(T, I, H, s.xn, L.w[kUp], nullptr, s.u);                // u [T, inter]
    lora(l, kUp, s.xn, s.u);
    be.silu_mul(s.g, s.u, size_t(T) * I);
    be.gemm(T, H, I, s.g, L.w[kDown], nullptr, s.tmp);             // tmp [T, hidden]
    lora(l, kDown, s.g, s.tmp);
    be.add(s.x, s.tmp, size_t(T) * H);
  }
  // Final norm and lm_head on each sequence's last token only: logits [nseq, vocab].
  if (T == nseq) {
    be.rmsnorm(s.x, s.norm, T, H, c.rms_eps, s.last);  // decode only: the last tokens are all of x
  } else {
    for (int i = 0; i < nseq; ++i) {
      const int t = s.seq_start[i] + batch.seqs[i].n_tokens - 1;
      be.rmsnorm(s.x + size_t(t) * H, s.norm, 1, H, c.rms_eps, s.last + size_t(i) * H);
    }
  }
  if (be.host_memory()) {
    be.gemm(nseq, c.vocab, H, s.last, s.lm_head, nullptr, logits);
    be.sync();
  } else {
    be.gemm(nseq, c.vocab, H, s.last, s.lm_head, nullptr, s.logits);
    be.download(logits, s.logits, size_t(nseq) * c.vocab);
  }
  for (int i = 0; i < nseq; ++i) s.seqs[batch.seqs[i].seq].length += batch.seqs[i].n_tokens;
}

}  // namespace longtail
