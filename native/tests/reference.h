// The naive reference forward for engine tests: merged weights W + scale·B·A, one sequence at a
// time, double precision, no batching, no cache.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "model_internal.h"

namespace longtail_test {
using namespace longtail;

// Plain reference forward: returns the last position's logits.
inline std::vector<double> reference_logits(const Model& m, const Adapter* a, const std::vector<int32_t>& toks) {
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

}  // namespace longtail_test
