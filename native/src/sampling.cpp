// Token sampling: penalties, temperature, top-k, top-p, min-p, a counter-based seeded draw, and
// log-probabilities of the raw logits. See sampling.h for the contract.
//
// Order (as vLLM / HF): logprobs of the raw logits; penalties on a copy (repetition, then
// frequency and presence); greedy argmax when temperature is (near) zero; otherwise temperature,
// top-k, top-p over the top-k renormalised distribution, min-p, renormalise, and an inverse-CDF
// draw over the kept tokens in a fixed order (descending probability, ties by lower token id)
// with u = hash(seed, output position).
//
// Cost (vocab up to ~128k, per token per sequence): the full vocabulary is touched only by linear
// passes (copy, max, one vectorised exp pass that also yields the normaliser, a gather). Nothing is
// fully sorted: top-k is a k-heap scan; top-p and the draw use a weighted quickselect (partition
// around a pivot, sum the mass in front, descend into the side that holds the crossing), O(n)
// expected, giving exactly the token that a walk over the fully sorted order would give. Both
// start on the pool of tokens within 12 nats (scaled) of the maximum and touch the rest of the
// vocabulary only when the crossing lies past the pool's mass. Scratch lives in the Sampler.
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LONGTAIL_SAMPLING_AVX2 1
#endif

namespace longtail {

// ---------------------------------------------------------------------------------------------
// Validation

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

[[noreturn]] void bad(const std::string& what, const std::string& got) {
  throw Error(what + ", got " + got);
}

}  // namespace

void validate_sampling(const SamplingParams& p, int vocab) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f || p.temperature > 100.0f)
    bad("temperature must be a finite number in [0, 100] (0 = greedy)", num(p.temperature));
  if (p.top_k < 0) bad("top_k must be >= 0 (0 = off)", std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad("top_p must be in (0, 1]", num(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) bad("min_p must be in [0, 1)", num(p.min_p));
  if (!std::isfinite(p.repetition_penalty) || !(p.repetition_penalty > 0.0f))
    bad("repetition_penalty must be a finite number > 0 (1 = off)", num(p.repetition_penalty));
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    bad("frequency_penalty must be in [-2, 2]", num(p.frequency_penalty));
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    bad("presence_penalty must be in [-2, 2]", num(p.presence_penalty));
  if (p.max_tokens < 1) bad("max_tokens must be >= 1", std::to_string(p.max_tokens));
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i) {
    const int32_t t = p.stop_token_ids[i];
    if (t < 0 || t >= vocab)
      bad("stop_token_ids[" + std::to_string(i) + "] must be a token id in [0, " +
              std::to_string(vocab) + ")",
          std::to_string(t));
  }
  if (p.top_logprobs < 0 || p.top_logprobs > 20)
    bad("top_logprobs must be in [0, 20]", std::to_string(p.top_logprobs));
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Below this temperature the draw is the argmax (as vLLM's _SAMPLING_EPS); it also keeps 1/T finite.
constexpr float kMinTemperature = 1e-5f;
// Tokens whose scaled logit is within this many nats of the maximum are ranked first.
constexpr float kPoolNats = 12.0f;

// exp(z) for z <= ~88, Cephes-style (1-2 ulp); z <= -87.5 or NaN gives 0. The scalar and AVX2
// versions evaluate the same polynomial.
inline float fexp(float z) {
  if (!(z > -87.5f)) return 0.0f;
  if (z > 88.0f) z = 88.0f;
  const float t = z * 1.44269504088896341f;
  const int ni = int(t >= 0.0f ? t + 0.5f : t - 0.5f);  // round to nearest (no libm call)
  const float fx = float(ni);
  float r = z - fx * 0.693359375f;
  r = r + fx * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const uint32_t bits = uint32_t(ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return y * scale;
}

// Computes e_i = exp((x[i] - shift) * scale) for every i (NaN and -inf give 0), stores them in
// out when out is not null (out may be x), and returns their sum in double. When pool_sum is not
// null it also receives the sum of the e_i >= pool_cut, and pool_ids (if not null) those i in
// increasing order (their number in *pool_count).
double exp_pass(const float* x, float* out, int n, float shift, float scale, float pool_cut = 0.0f,
                double* pool_sum = nullptr, int32_t* pool_ids = nullptr, int* pool_count = nullptr) {
  double total = 0.0, pooled = 0.0;
  int i = 0, count = 0;
#ifdef LONGTAIL_SAMPLING_AVX2
  const __m256 vshift = _mm256_set1_ps(shift), vscale = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(-87.5f), hi = _mm256_set1_ps(88.0f);
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 p0 = _mm256_set1_ps(1.9875691500e-4f), p1 = _mm256_set1_ps(1.3981999507e-3f),
               p2 = _mm256_set1_ps(8.3334519073e-3f), p3 = _mm256_set1_ps(4.1665795894e-2f),
               p4 = _mm256_set1_ps(1.6666665459e-1f), p5 = _mm256_set1_ps(5.0000001201e-1f);
  const __m256 one = _mm256_set1_ps(1.0f), vcut = _mm256_set1_ps(pool_cut);
  const __m256i bias = _mm256_set1_epi32(127);
  while (i + 8 <= n) {
    // Blocks of up to 1024 values summed in float lanes, then added in double.
    __m256 acc = _mm256_setzero_ps(), pacc = _mm256_setzero_ps();
    const int end = std::min(n - (n - i) % 8, i + 1024);
    for (; i < end; i += 8) {
      __m256 z = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vshift), vscale);
      const __m256 keep = _mm256_cmp_ps(z, lo, _CMP_GT_OQ);  // false for NaN and tiny
      z = _mm256_min_ps(_mm256_max_ps(z, lo), hi);             // NaN → lo
      const __m256 fx = _mm256_round_ps(_mm256_mul_ps(z, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m256 r = _mm256_fnmadd_ps(fx, c1, z);
      r = _mm256_fnmadd_ps(fx, c2, r);
      __m256 y = p0;
      y = _mm256_fmadd_ps(y, r, p1);
      y = _mm256_fmadd_ps(y, r, p2);
      y = _mm256_fmadd_ps(y, r, p3);
      y = _mm256_fmadd_ps(y, r, p4);
      y = _mm256_fmadd_ps(y, r, p5);
      y = _mm256_fmadd_ps(_mm256_mul_ps(y, r), r, _mm256_add_ps(r, one));
      const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), bias), 23);
      y = _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
      if (out) _mm256_storeu_ps(out + i, y);
      acc = _mm256_add_ps(acc, y);
      if (pool_sum) {
        const __m256 in = _mm256_cmp_ps(y, vcut, _CMP_GE_OQ);
        pacc = _mm256_add_ps(pacc, _mm256_and_ps(y, in));
        if (pool_ids) {
          unsigned mask = unsigned(_mm256_movemask_ps(in));
          while (mask) {
            pool_ids[count++] = i + __builtin_ctz(mask);
            mask &= mask - 1;
          }
        }
      }
    }
    alignas(32) float lanes[8], plan[8];
    _mm256_store_ps(lanes, acc);
    _mm256_store_ps(plan, pacc);
    double s = 0.0, ps = 0.0;
    for (int l = 0; l < 8; ++l) {
      s += lanes[l];
      ps += plan[l];
    }
    total += s;
    pooled += ps;
  }
#endif
  for (; i < n; ++i) {
    const float e = fexp((x[i] - shift) * scale);
    if (out) out[i] = e;
    total += e;
    if (e >= pool_cut) {
      pooled += e;
      if (pool_ids) pool_ids[count++] = i;
    }
  }
  if (pool_sum) *pool_sum = pooled;
  if (pool_count) *pool_count = count;
  return total;
}

// splitmix64 of (seed, position): the uniform for output position i, in [0, 1).
double uniform_at(uint64_t seed, int position) {
  uint64_t z = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t(uint32_t(position)) + 1));
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

// Largest value, NaN ignored (-inf when there is none).
float max_of(const float* x, int n) {
  float m = kNegInf;
  int i = 0;
#ifdef LONGTAIL_SAMPLING_AVX2
  __m256 a = _mm256_set1_ps(kNegInf), b = a;
  for (; i + 16 <= n; i += 16) {
    a = _mm256_max_ps(_mm256_loadu_ps(x + i), a);  // max_ps(v, m) returns m when v is NaN
    b = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), b);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(a, b));
  for (float v : lanes) m = std::max(m, v);
#endif
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// dst = src with NaN replaced by -inf; returns the largest value.
float copy_sanitized(const float* src, float* dst, int n) {
  int i = 0;
  float m = kNegInf;
#ifdef LONGTAIL_SAMPLING_AVX2
  const __m256 ninf = _mm256_set1_ps(kNegInf);
  __m256 vm = ninf;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    const __m256 c = _mm256_blendv_ps(v, ninf, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    _mm256_storeu_ps(dst + i, c);
    vm = _mm256_max_ps(vm, c);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vm);
  for (float v : lanes) m = std::max(m, v);
#endif
  for (; i < n; ++i) {
    dst[i] = src[i] == src[i] ? src[i] : kNegInf;
    m = std::max(m, dst[i]);
  }
  return m;
}

// Appends to out, in id order, every i with x[i] >= cut (ge) or x[i] < cut (!ge); x has no NaN.
// Returns the new count.
int gather(const float* x, int n, float cut, bool ge, int32_t* out, int count) {
  int i = 0;
#ifdef LONGTAIL_SAMPLING_AVX2
  const __m256 vcut = _mm256_set1_ps(cut);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    unsigned mask = unsigned(_mm256_movemask_ps(ge ? _mm256_cmp_ps(v, vcut, _CMP_GE_OQ)
                                                    : _mm256_cmp_ps(v, vcut, _CMP_LT_OQ)));
    while (mask) {
      out[count++] = i + __builtin_ctz(mask);
      mask &= mask - 1;
    }
  }
#endif
  for (; i < n; ++i) {
    out[count] = i;
    count += ((x[i] >= cut) == ge) ? 1 : 0;
  }
  return count;
}

// Position of the first element equal to v (n when none).
int first_equal(const float* x, int n, float v) {
  int i = 0;
#ifdef LONGTAIL_SAMPLING_AVX2
  const __m256 vv = _mm256_set1_ps(v);
  for (; i + 8 <= n; i += 8) {
    const unsigned mask = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vv, _CMP_EQ_OQ)));
    if (mask) return i + __builtin_ctz(mask);
  }
#endif
  while (i < n && !(x[i] == v)) ++i;
  return i;
}

// The k (<= 20) largest raw logits, best first, ties to the lower id; NaN counts as -inf.
int top_raw(const float* x, int n, int k, TokenLogprob* best) {
  int have = 0;
  auto offer = [&](int i) {
    float v = x[i];
    if (v != v) v = kNegInf;
    if (have == k && !(v > best[k - 1].logprob)) return;
    int j = have < k ? have++ : k - 1;
    while (j > 0 && v > best[j - 1].logprob) {  // an equal value never passes an earlier id
      best[j] = best[j - 1];
      --j;
    }
    best[j] = {int32_t(i), v};
  };
  int i = 0;
  for (; i < n && have < k; ++i) offer(i);
#ifdef LONGTAIL_SAMPLING_AVX2
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    unsigned mask = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(best[k - 1].logprob), _CMP_GT_OQ)));
    while (mask) {
      offer(i + __builtin_ctz(mask));
      mask &= mask - 1;
    }
  }
#endif
  for (; i < n; ++i) offer(i);
  return have;
}

// Rank order: descending value, ties to the lower id (a strict total order; values have no NaN).
struct Better {
  const float* v;
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

// The k best ids of x (rank order) into a[0, k), unordered: one scan with a heap whose top is
// the worst kept id; an AVX2 prefilter skips the blocks that cannot enter. x has no NaN.
void top_k_ids(const float* x, int n, int k, int32_t* a) {
  const Better better{x};
  for (int i = 0; i < k; ++i) a[i] = i;
  std::make_heap(a, a + k, better);  // "less" = better, so the top is the worst kept
  auto offer = [&](int i) {
    // Later ids lose ties, so only a strictly larger value enters.
    if (x[i] > x[a[0]]) {
      std::pop_heap(a, a + k, better);
      a[k - 1] = i;
      std::push_heap(a, a + k, better);
    }
  };
  int i = k;
#ifdef LONGTAIL_SAMPLING_AVX2
  for (; i < n && (i & 7); ++i) offer(i);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    unsigned mask = unsigned(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(x[a[0]]), _CMP_GT_OQ)));
    while (mask) {
      offer(i + __builtin_ctz(mask));
      mask &= mask - 1;
    }
  }
#endif
  for (; i < n; ++i) offer(i);
}

// Sum of e over the ids a[0, n), in double (four chains, so it is not latency-bound).
double mass_of(const int32_t* a, int n, const float* e) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += e[a[i]];
    s1 += e[a[i + 1]];
    s2 += e[a[i + 2]];
    s3 += e[a[i + 3]];
  }
  for (; i < n; ++i) s0 += e[a[i]];
  return (s0 + s1) + (s2 + s3);
}

// Weighted selection: walking a[lo, hi) in rank order by the probabilities e (unnormalised),
// finds the first token at which the cumulative mass reaches t (cum >= t; cum > t when strict)
// without sorting the range: quickselect on mass, O(hi - lo) expected. Rearranges a so that the
// tokens ranked before the answer lie (unordered) in front of it, and returns the answer's
// position; *before receives their mass (relative to lo). When rounding keeps the cumulative mass
// short of t, the answer is the last token of the range (for strict: the last with e > 0).
int select_mass(int32_t* a, int lo, int hi, const float* e, double t, bool strict, double* before) {
  const Better better{e};
  auto crosses = [&](double c) { return strict ? c > t : c >= t; };
  double acc = 0.0;  // mass of the tokens in front of lo
  for (int rounds = 0; hi - lo > 32 && rounds < 64; ++rounds) {
    // Median-of-three pivot, moved to hi - 1.
    const int mid = lo + (hi - lo) / 2;
    int32_t x = a[lo], y = a[mid], z = a[hi - 1];
    if (better(y, x)) std::swap(x, y);
    if (better(z, y)) std::swap(y, z);
    if (better(y, x)) std::swap(x, y);
    const int32_t pivot = y;
    const int at = pivot == a[lo] ? lo : pivot == a[mid] ? mid : hi - 1;
    std::swap(a[at], a[hi - 1]);
    // Branchless Lomuto partition: tokens ranked before the pivot go to the front. (When a token
    // stays, the write pair swaps two tokens of the back part, which is harmless.)
    int s = lo;
    const float ep = e[pivot];
    for (int i = lo; i < hi - 1; ++i) {
      const int32_t id = a[i];
      const float ei = e[id];
      const bool b = (ei > ep) | ((ei == ep) & (id < pivot));
      a[i] = a[s];
      a[s] = id;
      s += b ? 1 : 0;
    }
    const double front = mass_of(a + lo, s - lo, e);
    std::swap(a[s], a[hi - 1]);
    if (crosses(acc + front)) {
      hi = s;
      continue;
    }
    const double through = acc + front + e[pivot];
    if (crosses(through)) {
      *before = acc + front;
      return s;
    }
    acc = through;
    lo = s + 1;
  }
  std::sort(a + lo, a + hi, better);
  for (int j = lo; j < hi; ++j) {
    const double c = acc + e[a[j]];
    if (crosses(c)) {
      *before = acc;
      return j;
    }
    acc = c;
  }
  // Rounding: the range holds slightly less than t.
  int j = hi - 1;
  if (strict)
    while (j > lo && !(e[a[j]] > 0.0f)) --j;
  for (int i = j; i < hi; ++i) acc -= e[a[i]];
  *before = acc;
  return j;
}

// Moves the tokens of a[0, n) with e >= cut to the front; returns their count and,
// in *mass, their mass.
int keep_at_least(int32_t* a, int n, const float* e, float cut, double* mass) {
  int s = 0;
  double m = 0.0;
  for (int i = 0; i < n; ++i) {
    const int32_t id = a[i];
    if (e[id] >= cut) {
      m += e[id];
      a[i] = a[s];
      a[s++] = id;
    }
  }
  *mass = m;
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sampler

Sampler::Sampler(const SamplingParams& params, const int32_t* prompt, int n_prompt, int vocab)
    : p_(params), vocab_(vocab) {
  for (int i = 0; i < n_prompt; ++i) {
    if (prompt[i] >= 0 && prompt[i] < vocab_) seen_.push_back(prompt[i]);
  }
  std::sort(seen_.begin(), seen_.end());
  seen_.erase(std::unique(seen_.begin(), seen_.end()), seen_.end());
  n_prompt_seen_ = seen_.size();
}

namespace {
// [vocab] scratch of the sampling thread (the runtime samples on its engine thread). A Sampler
// per request with its own vocab-sized vectors cost a zero-fill and fresh page faults per request:
// with a 128k vocabulary that was ~60 % of the engine thread's CPU in the serving benchmark.
struct Scratch {
  std::vector<float> work;    // [vocab] logits after penalties, then unnormalised probabilities
  std::vector<int32_t> idx;   // [vocab] candidate token ids
};
thread_local Scratch scratch;
}  // namespace

Sampled Sampler::next(const float* logits) {
  Sampled out;
  const int n = vocab_;
  if (n <= 0) return out;
  if (scratch.work.size() < size_t(n)) {
    scratch.work.resize(size_t(n));
    scratch.idx.resize(size_t(n));
  }
  const bool want_lp = p_.logprobs || p_.top_logprobs > 0;

  // (a) Log-softmax of the raw logits: the normaliser and the top alternatives.
  double lse = 0.0;
  if (want_lp) {
    const float mx = max_of(logits, n);
    if (std::isinf(mx)) {
      lse = mx;  // all -inf (or some +inf): degenerate, logprobs are -inf / nan
    } else {
      lse = double(mx) + std::log(exp_pass(logits, nullptr, n, mx, 1.0f));
    }
    const int k = std::min(p_.top_logprobs, n);
    if (k > 0) {
      TokenLogprob best[20];
      const int have = top_raw(logits, n, k, best);
      out.top.resize(size_t(have));
      for (int j = 0; j < have; ++j)
        out.top[size_t(j)] = {best[j].token, float(double(best[j].logprob) - lse)};
    }
  }

  // (b) Penalties on a copy (NaN logits become -inf so they are never chosen).
  float* x = scratch.work.data();
  float mx = copy_sanitized(logits, x, n);
  const float rp = p_.repetition_penalty;
  const float fp = p_.frequency_penalty, pp = p_.presence_penalty;
  const bool penalised = (rp != 1.0f && rp > 0.0f && !seen_.empty()) ||
                         ((fp != 0.0f || pp != 0.0f) && !output_counts_.empty());
  if (rp != 1.0f && rp > 0.0f) {
    for (int32_t t : seen_) {
      const float v = x[t];
      x[t] = v > 0.0f ? v / rp : v * rp;
    }
  }
  if (fp != 0.0f || pp != 0.0f) {
    for (const auto& kv : output_counts_) {
      if (kv.second <= 0) continue;
      x[kv.first] -= fp * float(kv.second) + pp;
    }
  }

  // (c) Choose.
  int32_t token;
  const float T = p_.temperature;
  if (penalised) mx = max_of(x, n);
  if (!(T >= kMinTemperature) || !std::isfinite(mx)) {
    token = int32_t(first_equal(x, n, mx));  // greedy, ties to the lowest id; also when every
    if (token >= n) token = 0;               // token is -inf or some are +inf
  } else {
    const float inv_t = 1.0f / T;
    int32_t* a = scratch.idx.data();
    const float pool_cut = std::exp(-kPoolNats);  // probability relative to the maximum
    // The candidates are a[0, count), with unnormalised probabilities e[id] (in place of the
    // logits) and total `mass`. While `lazy`, only a[0, pool) is gathered (the tokens with
    // e >= pool_cut, mass pool_mass) and the candidates are the whole vocabulary: the rest is
    // gathered only when a walk needs it.
    int count = 0, pool = 0;
    bool lazy = false;
    double mass = 0.0, pool_mass = 0.0;
    if (p_.top_k > 0 && p_.top_k < n) {
      // Top-k by logit (the same order as by probability), then probabilities for those k only.
      const int k = p_.top_k;
      if (k <= 2048) {
        top_k_ids(x, n, k, a);
      } else {
        const float cut = mx - kPoolNats * T;
        pool = gather(x, n, cut, true, a, 0);
        if (pool < k) pool = gather(x, n, cut, false, a, pool);
        if (pool > k) std::nth_element(a, a + k, a + pool, Better{x});
      }
      count = k;
      for (int j = 0; j < k; ++j) {
        const int32_t id = a[j];
        x[id] = fexp((x[id] - mx) * inv_t);
        mass += x[id];
      }
    } else if (p_.top_p < 1.0f || p_.min_p <= 0.0f) {
      // The whole vocabulary's probabilities (top-p and the plain draw need the normaliser).
      mass = exp_pass(x, x, n, mx, inv_t, pool_cut, &pool_mass, a, &pool);
      count = n;
      lazy = pool < n;
    } else {
      // Min-p alone: only the tokens within -log(min_p) nats (scaled) of the maximum can stay.
      count = gather(x, n, mx + T * (std::log(p_.min_p) - 0.01f), true, a, 0);
      for (int j = 0; j < count; ++j) {
        const int32_t id = a[j];
        x[id] = fexp((x[id] - mx) * inv_t);
      }
    }
    const float* e = x;
    auto gather_rest = [&]() {
      gather(e, n, pool_cut, false, a, pool);
      lazy = false;
    };

    // Top-p over the (top-k) candidates: the smallest rank prefix whose mass reaches top_p.
    if (p_.top_p < 1.0f) {
      const double threshold = double(p_.top_p) * mass;
      double before = 0.0;
      int j;
      if (!lazy) {
        j = select_mass(a, 0, count, e, threshold, false, &before);
      } else if (pool_mass >= threshold) {
        j = select_mass(a, 0, pool, e, threshold, false, &before);
      } else {
        gather_rest();
        j = select_mass(a, pool, n, e, threshold - pool_mass, false, &before);
        before += pool_mass;
      }
      count = j + 1;
      mass = before + e[a[j]];
      lazy = false;
    }

    // Min-p: drop what is below min_p times the top probability (whose e is exactly 1).
    if (p_.min_p > 0.0f) count = keep_at_least(a, count, e, p_.min_p, &mass);

    // The draw: inverse CDF in rank order at u(seed, position).
    const double target = uniform_at(p_.seed, generated_) * mass;
    double before = 0.0;
    int j;
    if (!lazy) {
      j = select_mass(a, 0, count, e, target, true, &before);
    } else if (pool_mass > target) {
      j = select_mass(a, 0, pool, e, target, true, &before);
    } else {
      gather_rest();
      j = select_mass(a, pool, n, e, target - pool_mass, true, &before);
    }
    token = a[j];
  }

  out.token = token;
  if (want_lp) {
    const float v = logits[token];
    out.logprob = float(double(v == v ? v : kNegInf) - lse);
  }

  // (d) Record.
  if (++output_counts_[token] == 1 && !std::binary_search(seen_.begin(), seen_.begin() + ptrdiff_t(n_prompt_seen_), token))
    seen_.push_back(token);
  ++generated_;
  return out;
}

}  // namespace longtail
