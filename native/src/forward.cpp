// The batched heterogeneous forward step.
//
// One step = many sequences, each contributing a prefill chunk (n > 1 tokens) or one decode token,
// each with its own adapter or none. All tokens of the step are packed into one activation matrix
// x [T, hidden]; every base projection is one GEMM over all T tokens; the LoRA delta of each
// projection runs per adapter segment (SGMV for prefill chunks, BGMV for decode tokens).
// Buffers are sized in the constructor (and KV in create_sequence); step() allocates nothing.
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "backend.h"
#include "model_internal.h"
#include "threadpool.h"

namespace longtail {

struct Sequence {
  int capacity = 0;  // positions
  int length = 0;    // positions consumed
  float* kv = nullptr;  // [layers][2][capacity][kv_dim]
};

struct EngineState {
  CpuBackend* cpu = nullptr;
  Backend* be = nullptr;
  int max_tokens = 0, max_seqs = 0;
  std::vector<double> inv_freq;  // [head_dim / 2]
  std::map<SeqId, Sequence> seqs;
  SeqId next_id = 1;
  // Step scratch, sized at construction.
  float *x = nullptr, *xn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr,
        *tmp = nullptr, *g = nullptr, *u = nullptr, *lora_tmp = nullptr, *last = nullptr,
        *cos = nullptr, *sin = nullptr;
  std::vector<int32_t> tokens;  // [T]
  std::vector<int> pos;         // [T] absolute position of each token
  std::vector<Sequence*> tok_seq;  // [T]
  std::vector<KvView> views;    // [T]
  std::vector<LoraSegment> segs;  // [max_seqs]
  std::vector<int> seg_seq;       // [max_seqs] sequence index of each segment
  std::vector<const Adapter*> seq_adapter;  // [max_seqs]
  std::vector<int> seq_start;     // [max_seqs]
  ~EngineState() {
    if (cpu) {
      for (float* p : {x, xn, q, k, v, att, tmp, g, u, lora_tmp, last, cos, sin}) be->free(p);
      for (auto& kv : seqs) be->free(kv.second.kv);
      destroy_cpu_backend(cpu);
    }
  }
};

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
  CpuBackendOptions bo;
  bo.threads = o.threads;
  bo.max_context = 256;
  s.cpu = make_cpu_backend(bo);
  s.be = as_backend(s.cpu);
  s.inv_freq = rope_inv_freq(c);
  const size_t T = s.max_tokens, H = c.hidden, Q = size_t(c.heads) * c.head_dim, KV = size_t(c.kv_heads) * c.head_dim;
  const size_t I = c.intermediate;
  Backend& be = *s.be;
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
  s.cos = be.alloc(T * (c.head_dim / 2));
  s.sin = be.alloc(T * (c.head_dim / 2));
  s.tokens.resize(T);
  s.pos.resize(T);
  s.tok_seq.resize(T);
  s.views.resize(T);
  s.segs.resize(s.max_seqs);
  s.seg_seq.resize(s.max_seqs);
  s.seq_adapter.resize(s.max_seqs);
  s.seq_start.resize(s.max_seqs);
}

Engine::~Engine() = default;

int Engine::threads() const { return cpu_backend_pool(state_->cpu).size(); }

SeqId Engine::create_sequence(int max_tokens) {
  const ModelConfig& c = model_.config();
  if (max_tokens <= 0) throw Error("create_sequence: max_tokens must be positive");
  if (max_tokens > c.max_pos) {
    throw Error("create_sequence: " + std::to_string(max_tokens) + " tokens exceed max_position_embeddings " + std::to_string(c.max_pos));
  }
  EngineState& s = *state_;
  Sequence seq;
  seq.capacity = max_tokens;
  const size_t kv_dim = size_t(c.kv_heads) * c.head_dim;
  seq.kv = s.be->alloc(size_t(c.layers) * 2 * max_tokens * kv_dim);
  if (!seq.kv) throw Error("create_sequence: out of memory for the KV buffer");
  cpu_backend_ensure_context(s.cpu, max_tokens);
  const SeqId id = s.next_id++;
  s.seqs[id] = seq;
  return id;
}

void Engine::release_sequence(SeqId id) {
  auto it = state_->seqs.find(id);
  if (it == state_->seqs.end()) return;
  state_->be->free(it->second.kv);
  state_->seqs.erase(it);
}

int Engine::sequence_length(SeqId id) const {
  auto it = state_->seqs.find(id);
  if (it == state_->seqs.end()) throw Error("unknown sequence " + std::to_string(id));
  return it->second.length;
}

void Engine::step(const StepBatch& batch, float* logits) {
  const ModelConfig& c = model_.config();
  const ModelWeights& W = model_.weights();
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
    if (ss.pos + ss.n_tokens > seq.capacity) throw Error("step: sequence " + std::to_string(ss.seq) + " exceeds its KV capacity");
    if (T + ss.n_tokens > s.max_tokens) throw Error("step: more than max_tokens_per_step = " + std::to_string(s.max_tokens) + " tokens");
    if (ss.adapter && ss.adapter->weights().base != &model_) throw Error("step: adapter " + ss.adapter->dir() + " was validated against another model");
    s.seq_start[i] = T;
    s.seq_adapter[i] = ss.adapter;
    for (int j = 0; j < ss.n_tokens; ++j) {
      const int32_t tok = ss.tokens[j];
      if (tok < 0 || tok >= c.vocab) throw Error("step: token " + std::to_string(tok) + " is out of range (vocab " + std::to_string(c.vocab) + ")");
      s.tokens[T] = tok;
      s.pos[T] = ss.pos + j;
      s.tok_seq[T] = &seq;
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

  // LoRA segments of projection p in layer l: one per sequence whose adapter targets it.
  auto lora = [&](int l, int p, const float* in_act, float* out_act) {
    int n = 0;
    for (int i = 0; i < nseq; ++i) {
      const Adapter* a = s.seq_adapter[i];
      if (!a) continue;
      const LoraModule& m = a->weights().layers[l][p];
      if (m.rank == 0) continue;
      LoraSegment& g = s.segs[n++];
      g.start = s.seq_start[i];
      g.len = batch.seqs[i].n_tokens;
      g.rank = m.rank;
      g.scale = m.scale;
      g.A = m.A;
      g.Bt = m.Bt;
    }
    if (n) be.lora(s.segs.data(), n, proj_in(c, p), proj_out(c, p), in_act, out_act, s.lora_tmp);
  };

  // --- forward ---
  be.embed(s.tokens.data(), T, W.embed, H, s.x);  // x [T, hidden]
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& L = W.layers[l];
    for (int t = 0; t < T; ++t) {
      float* base = s.tok_seq[t]->kv + size_t(l) * 2 * s.tok_seq[t]->capacity * KVd;
      s.views[t].k = base;
      s.views[t].v = base + size_t(s.tok_seq[t]->capacity) * KVd;
    }
    // Attention block.
    be.rmsnorm(s.x, L.attn_norm, T, H, c.rms_eps, s.xn);          // xn [T, hidden]
    be.gemm(T, Qd, H, s.xn, L.w[kQ], L.bq, s.q);                   // q [T, heads*hd]
    lora(l, kQ, s.xn, s.q);
    be.gemm(T, KVd, H, s.xn, L.w[kK], L.bk, s.k);                  // k [T, kv_heads*hd]
    lora(l, kK, s.xn, s.k);
    be.gemm(T, KVd, H, s.xn, L.w[kV], L.bv, s.v);                  // v [T, kv_heads*hd]
    lora(l, kV, s.xn, s.v);
    be.rope(s.q, s.k, T, shape, s.cos, s.sin);
    be.kv_store(s.k, s.v, T, s.views.data(), s.pos.data(), KVd);
    be.attention(s.q, T, s.views.data(), s.pos.data(), shape, s.att);  // att [T, heads*hd]
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
  for (int i = 0; i < nseq; ++i) {
    const int t = s.seq_start[i] + batch.seqs[i].n_tokens - 1;
    be.rmsnorm(s.x + size_t(t) * H, W.norm, 1, H, c.rms_eps, s.last + size_t(i) * H);
  }
  be.gemm(nseq, c.vocab, H, s.last, W.lm_head, nullptr, logits);
  be.sync();
  for (int i = 0; i < nseq; ++i) s.seqs[batch.seqs[i].seq].length += batch.seqs[i].n_tokens;
}

}  // namespace longtail
