// The batched forward against a naive reference: merged weights W + scale·B·A, one sequence at a
// time, double precision, no batching. Also: a step mixing prefill chunks and decode tokens of
// sequences with different adapters (and none) equals running each sequence alone.
#include <algorithm>

#include "model_internal.h"
#include "test_util.h"

using namespace longtail;

// Plain reference forward: returns the last position's logits.
static std::vector<double> reference_logits(const Model& m, const Adapter* a, const std::vector<int32_t>& toks) {
  const ModelConfig& c = m.config();
  const ModelWeights& W = m.weights();
  const int H = c.hidden, hd = c.head_dim, NH = c.heads, NKV = c.kv_heads, I = c.intermediate;
  // Merged weights as double matrices.
  auto merged = [&](int l, int p) {
    const int in = proj_in(c, p), out = proj_out(c, p);
    std::vector<double> w(size_t(in) * out);
    for (size_t i = 0; i < w.size(); ++i) w[i] = W.layers[l].w[p][i];
    if (a) {
      const LoraModule& lm = a->weights().layers[l][p];
      for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i) {
          double s = 0;
          for (int k = 0; k < lm.rank; ++k) s += double(lm.Bt[size_t(k) * out + o]) * lm.A[size_t(k) * in + i];
          w[size_t(o) * in + i] += lm.scale * s;
        }
    }
    return w;
  };
  auto matvec = [](const std::vector<double>& w, const std::vector<double>& x, int out, const float* bias) {
    const int in = int(x.size());
    std::vector<double> y(out);
    for (int o = 0; o < out; ++o) {
      double s = bias ? bias[o] : 0;
      for (int i = 0; i < in; ++i) s += w[size_t(o) * in + i] * x[i];
      y[o] = s;
    }
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const float* w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    double inv = 1.0 / std::sqrt(ss / x.size() + c.rms_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
    return y;
  };
  // inv_freq as in transformers (incl. scaling).
  std::vector<double> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv[i] = 1.0 / std::pow(c.rope_theta, 2.0 * i / hd);
  if (c.rope_scaling == RopeScaling::kLinear)
    for (double& f : inv) f /= c.rope_factor;
  if (c.rope_scaling == RopeScaling::kLlama3) {
    for (double& f : inv) {
      double wl = 2 * M_PI / f, lo = c.rope_original_max_pos / c.rope_low_freq_factor, hi = c.rope_original_max_pos / c.rope_high_freq_factor;
      if (wl > lo) f /= c.rope_factor;
      else if (wl >= hi) {
        double sm = (c.rope_original_max_pos / wl - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
        f = (1 - sm) * f / c.rope_factor + sm * f;
      }
    }
  }
  auto rope = [&](std::vector<double>& v, int heads, int pos) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        double cs = std::cos(pos * inv[i]), sn = std::sin(pos * inv[i]);
        double x1 = v[h * hd + i], x2 = v[h * hd + i + hd / 2];
        v[h * hd + i] = x1 * cs - x2 * sn;
        v[h * hd + i + hd / 2] = x2 * cs + x1 * sn;
      }
  };
  std::vector<std::vector<std::vector<double>>> K(c.layers), V(c.layers);
  std::vector<double> last;
  std::vector<std::vector<std::vector<double>>> mw(c.layers);
  for (int l = 0; l < c.layers; ++l)
    for (int p = 0; p < kNumProj; ++p) mw[l].push_back(merged(l, p));
  for (size_t pos = 0; pos < toks.size(); ++pos) {
    std::vector<double> x(H);
    for (int i = 0; i < H; ++i) x[i] = W.embed[size_t(toks[pos]) * H + i];
    for (int l = 0; l < c.layers; ++l) {
      const LayerWeights& L = W.layers[l];
      auto xn = norm(x, L.attn_norm);
      auto q = matvec(mw[l][kQ], xn, NH * hd, L.bq);
      auto k = matvec(mw[l][kK], xn, NKV * hd, L.bk);
      auto v = matvec(mw[l][kV], xn, NKV * hd, L.bv);
      rope(q, NH, int(pos));
      rope(k, NKV, int(pos));
      K[l].push_back(k);
      V[l].push_back(v);
      std::vector<double> att(NH * hd);
      for (int h = 0; h < NH; ++h) {
        int kh = h / (NH / NKV);
        std::vector<double> sc(pos + 1);
        double mx = -1e300;
        for (size_t j = 0; j <= pos; ++j) {
          double s = 0;
          for (int i = 0; i < hd; ++i) s += q[h * hd + i] * K[l][j][kh * hd + i];
          sc[j] = s / std::sqrt(double(hd));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& s : sc) sum += (s = std::exp(s - mx));
        for (size_t j = 0; j <= pos; ++j)
          for (int i = 0; i < hd; ++i) att[h * hd + i] += sc[j] / sum * V[l][j][kh * hd + i];
      }
      auto o = matvec(mw[l][kO], att, H, nullptr);
      for (int i = 0; i < H; ++i) x[i] += o[i];
      xn = norm(x, L.ffn_norm);
      auto g = matvec(mw[l][kGate], xn, I, nullptr);
      auto u = matvec(mw[l][kUp], xn, I, nullptr);
      for (int i = 0; i < I; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      auto d = matvec(mw[l][kDown], g, H, nullptr);
      for (int i = 0; i < H; ++i) x[i] += d[i];
    }
    last = x;
  }
  auto xn = norm(last, W.norm);
  std::vector<double> lm(size_t(c.vocab) * H);
  for (size_t i = 0; i < lm.size(); ++i) lm[i] = W.lm_head[i];
  return matvec(lm, xn, c.vocab, nullptr);
}

static double max_diff(const float* a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

int main() {
  const std::string root = temp_dir("forward");
  struct Case { TinySpec spec; };
  std::vector<TinySpec> specs(4);
  specs[1].qkv_bias = true;
  specs[1].rope = "llama3";
  specs[1].kv_heads = 1;
  specs[2].tied = true;
  specs[2].rope = "linear";
  specs[2].dtype = "BF16";
  specs[3].kv_heads = 4;
  specs[3].dtype = "F16";
  for (size_t si = 0; si < specs.size(); ++si) {
    const TinySpec& spec = specs[si];
    auto model = load_model(write_tiny_model(root + "/m" + std::to_string(si), spec));
    TinyAdapterSpec a1;
    a1.r = 4;
    a1.seed = 11;
    TinyAdapterSpec a2;
    a2.r = 16;
    a2.alpha = 4;
    a2.rslora = true;
    a2.modules = {"q_proj", "v_proj", "down_proj"};
    a2.rank_pattern = {{"v_proj", 2}};
    a2.seed = 12;
    a2.dtype = "BF16";
    auto ad1 = load_adapter(write_tiny_adapter(root + "/a1_" + std::to_string(si), spec, a1), *model);
    auto ad2 = load_adapter(write_tiny_adapter(root + "/a2_" + std::to_string(si), spec, a2), *model);
    const Adapter* adapters[] = {nullptr, ad1.get(), ad2.get(), ad1.get(), nullptr};
    std::vector<std::vector<int32_t>> prompts = {
        {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {7}, {40, 41, 42, 43, 44, 45, 46}, {3, 3, 3, 9, 12, 30, 31, 32, 33, 1, 2, 3, 4}, {49, 0}};
    const int chunks[] = {4, 1, 3, 13, 1};
    const int V = spec.vocab;
    // Reference per sequence.
    std::vector<std::vector<double>> refs;
    for (size_t i = 0; i < prompts.size(); ++i) refs.push_back(reference_logits(*model, adapters[i], prompts[i]));
    // Each sequence alone, whole prompt in one step.
    for (int threads : {1, 2}) {
      EngineOptions eo;
      eo.threads = threads;
      eo.max_tokens_per_step = 64;
      Engine engine(*model, eo);
      std::vector<float> logits(size_t(V) * prompts.size());
      for (size_t i = 0; i < prompts.size(); ++i) {
        SeqId id = engine.create_sequence(int(prompts[i].size()));
        StepBatch b;
        b.seqs.push_back({id, prompts[i].data(), int(prompts[i].size()), 0, adapters[i]});
        engine.step(b, logits.data());
        CHECK(max_diff(logits.data(), refs[i]) < 2e-4);
        CHECK(engine.sequence_length(id) == int(prompts[i].size()));
      }
      // All together, chunked: steps mix prefill chunks and decode tokens.
      std::vector<SeqId> ids;
      for (auto& p : prompts) ids.push_back(engine.create_sequence(int(p.size())));
      std::vector<int> done(prompts.size(), 0);
      std::vector<std::vector<float>> outs(prompts.size());
      int steps = 0;
      for (;;) {
        StepBatch b;
        std::vector<size_t> which;
        for (size_t i = 0; i < prompts.size(); ++i) {
          int left = int(prompts[i].size()) - done[i];
          if (left <= 0) continue;
          b.seqs.push_back({ids[i], prompts[i].data() + done[i], std::min(left, chunks[i]), done[i], adapters[i]});
          which.push_back(i);
        }
        if (b.seqs.empty()) break;
        engine.step(b, logits.data());
        ++steps;
        for (size_t k = 0; k < which.size(); ++k) {
          size_t i = which[k];
          done[i] += b.seqs[k].n_tokens;
          if (done[i] == int(prompts[i].size())) outs[i].assign(logits.begin() + k * V, logits.begin() + (k + 1) * V);
        }
      }
      CHECK(steps == 3);  // longest: 11 tokens in chunks of 4
      for (size_t i = 0; i < prompts.size(); ++i) {
        double d = max_diff(outs[i].data(), refs[i]);
        if (d >= 2e-4) std::fprintf(stderr, "spec %zu seq %zu diff %g\n", si, i, d);
        CHECK(d < 2e-4);
      }
      // Plan errors leave the engine usable.
      StepBatch bad;
      int32_t tok = V;  // out of range
      SeqId s = engine.create_sequence(4);
      bad.seqs.push_back({s, &tok, 1, 0, nullptr});
      EXPECT_ERROR([&] { engine.step(bad, logits.data()); }, "token");
      tok = 1;
      bad.seqs[0].pos = 2;
      EXPECT_ERROR([&] { engine.step(bad, logits.data()); }, "position");
      bad.seqs[0].pos = 0;
      engine.step(bad, logits.data());
      CHECK(engine.sequence_length(s) == 1);
      EXPECT_ERROR([&] { engine.step(bad, logits.data()); }, "position");
    }
  }
  return finish("test_forward");
}
