// Sampling: greedy, seeded determinism (per position, independent of history), the empirical
// distribution against softmax, temperature / top-k / top-p / min-p, the three penalties, raw
// logprobs, parameter validation, and a large-vocabulary timing smoke test.
#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <set>
#include <ctime>

#include "sampling.h"
#include "test_util.h"

using namespace longtail;

static double thread_cpu_us() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e6 + double(t.tv_nsec) / 1e3;
}

static SamplingParams sampled(float temperature, uint64_t seed = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = seed;
  p.max_tokens = 1000000;
  return p;
}

static std::vector<double> softmax(const std::vector<float>& x, double t = 1.0) {
  double mx = -INFINITY;
  for (float v : x) mx = std::max(mx, double(v));
  std::vector<double> p(x.size());
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) z += (p[i] = std::exp((double(x[i]) - mx) / t));
  for (double& v : p) v /= z;
  return p;
}

// One draw per seed from a fresh sampler at position 0; returns frequencies.
static std::vector<double> freq_over_seeds(const SamplingParams& base, const std::vector<float>& logits,
                                           int draws, uint64_t seed0 = 1000) {
  std::vector<double> f(logits.size(), 0.0);
  for (int s = 0; s < draws; ++s) {
    SamplingParams p = base;
    p.seed = seed0 + uint64_t(s);
    Sampler sm(p, nullptr, 0, int(logits.size()));
    f[size_t(sm.next(logits.data()).token)] += 1.0;
  }
  for (double& v : f) v /= draws;
  return f;
}

// Independent reference: the same uniform (splitmix64 of seed and position; duplicated here on
// purpose), everything else in double with a full sort.
static double ref_uniform(uint64_t seed, int position) {
  uint64_t z = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t(uint32_t(position)) + 1));
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

struct RefState {
  std::vector<int32_t> prompt;
  std::map<int32_t, int> counts;
  int pos = 0;
};

static int32_t ref_next(const SamplingParams& p, RefState& st, const std::vector<float>& raw) {
  const int n = int(raw.size());
  std::vector<double> x(raw.begin(), raw.end());
  std::vector<char> seen(size_t(n), 0);
  for (int32_t t : st.prompt) seen[size_t(t)] = 1;
  for (auto& kv : st.counts) seen[size_t(kv.first)] = 1;
  for (int i = 0; i < n; ++i)
    if (seen[size_t(i)]) x[size_t(i)] = x[size_t(i)] > 0 ? x[size_t(i)] / p.repetition_penalty : x[size_t(i)] * p.repetition_penalty;
  for (auto& kv : st.counts) x[size_t(kv.first)] -= double(p.frequency_penalty) * kv.second + p.presence_penalty;
  int32_t tok;
  if (p.temperature <= 0) {
    tok = int32_t(std::max_element(x.begin(), x.end()) - x.begin());
  } else {
    std::vector<int32_t> ord(static_cast<size_t>(n));
    std::iota(ord.begin(), ord.end(), 0);
    std::stable_sort(ord.begin(), ord.end(), [&](int32_t a, int32_t b) { return x[size_t(a)] > x[size_t(b)]; });
    const double mx = x[size_t(ord[0])];
    std::vector<double> e(static_cast<size_t>(n));
    for (int j = 0; j < n; ++j) e[size_t(j)] = std::exp((x[size_t(ord[size_t(j)])] - mx) / p.temperature);
    int keep = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
    double mass = 0;
    for (int j = 0; j < keep; ++j) mass += e[size_t(j)];
    if (p.top_p < 1) {
      double cum = 0;
      int j = 0;
      while (j < keep) {
        cum += e[size_t(j++)];
        if (cum >= p.top_p * mass) break;
      }
      keep = j;
    }
    if (p.min_p > 0) {
      int j = 1;
      while (j < keep && e[size_t(j)] >= p.min_p) ++j;
      keep = j;
    }
    double kept = 0;
    for (int j = 0; j < keep; ++j) kept += e[size_t(j)];
    const double target = ref_uniform(p.seed, st.pos) * kept;
    double cum = 0;
    tok = ord[size_t(keep - 1)];
    for (int j = 0; j < keep; ++j) {
      cum += e[size_t(j)];
      if (cum > target) {
        tok = ord[size_t(j)];
        break;
      }
    }
  }
  st.counts[tok]++;
  st.pos++;
  return tok;
}

static void test_validate() {
  const int V = 100;
  SamplingParams ok;
  validate_sampling(ok, V);  // defaults are valid
  SamplingParams edge;
  edge.temperature = 100.0f;
  edge.top_p = 1.0f;
  edge.min_p = 0.0f;
  edge.frequency_penalty = -2.0f;
  edge.presence_penalty = 2.0f;
  edge.top_logprobs = 20;
  edge.stop_token_ids = {0, V - 1};
  edge.max_tokens = 1;
  bool threw = false;
  try {
    validate_sampling(edge, V);
  } catch (const Error&) {
    threw = true;
  }
  CHECK(!threw);

  auto bad = [&](std::function<void(SamplingParams&)> edit) {
    SamplingParams p;
    edit(p);
    return [p]() { validate_sampling(p, V); };
  };
  EXPECT_ERROR(bad([](SamplingParams& p) { p.temperature = -0.5f; }), "temperature", "-0.5");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.temperature = NAN; }), "temperature", "nan");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.temperature = INFINITY; }), "temperature", "inf");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.temperature = 101.0f; }), "temperature", "101");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.top_k = -1; }), "top_k", "-1");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.top_p = 0.0f; }), "top_p must be in (0, 1], got 0");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.top_p = 1.5f; }), "top_p", "1.5");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.top_p = NAN; }), "top_p", "nan");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.min_p = 1.0f; }), "min_p", "got 1");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.min_p = -0.25f; }), "min_p", "-0.25");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.repetition_penalty = 0.0f; }), "repetition_penalty", "got 0");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.repetition_penalty = INFINITY; }), "repetition_penalty", "inf");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.frequency_penalty = 2.5f; }), "frequency_penalty", "2.5");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.frequency_penalty = NAN; }), "frequency_penalty", "nan");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.presence_penalty = -3.0f; }), "presence_penalty", "-3");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.max_tokens = 0; }), "max_tokens", "got 0");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.stop_token_ids = {5, 100}; }), "stop_token_ids[1]", "100");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.stop_token_ids = {-1}; }), "stop_token_ids[0]", "-1");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.top_logprobs = 21; }), "top_logprobs", "21");
  EXPECT_ERROR(bad([](SamplingParams& p) { p.top_logprobs = -1; }), "top_logprobs", "-1");
  // The first bad field is named.
  EXPECT_ERROR(bad([](SamplingParams& p) {
                 p.top_k = -2;
                 p.max_tokens = 0;
               }),
               "top_k", "-2");

  CHECK(std::string(finish_reason_name(FinishReason::kNone)) == "");
  CHECK(std::string(finish_reason_name(FinishReason::kStop)) == "stop");
  CHECK(std::string(finish_reason_name(FinishReason::kLength)) == "length");
  CHECK(std::string(finish_reason_name(FinishReason::kCancelled)) == "cancelled");
  CHECK(std::string(finish_reason_name(FinishReason::kError)) == "error");
}

static void test_greedy() {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 20; ++trial) {
    auto logits = random_values(rng, 257, 4.0f);
    Sampler s(SamplingParams{}, nullptr, 0, 257);
    const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    const auto copy = logits;
    CHECK(s.next(logits.data()).token == want);
    CHECK(logits == copy);  // not modified
  }
  // Ties go to the lowest id.
  std::vector<float> tie = {0.5f, 2.0f, -1.0f, 2.0f, 2.0f};
  Sampler s(SamplingParams{}, nullptr, 0, 5);
  CHECK(s.next(tie.data()).token == 1);
  CHECK(s.generated() == 1);
  // -inf (masked) and NaN entries are never chosen.
  std::vector<float> masked = {NAN, -INFINITY, 0.25f, NAN};
  Sampler s2(SamplingParams{}, nullptr, 0, 4);
  CHECK(s2.next(masked.data()).token == 2);
  SamplingParams hot = sampled(1.0f, 3);
  for (int seed = 0; seed < 200; ++seed) {
    hot.seed = uint64_t(seed);
    Sampler s3(hot, nullptr, 0, 4);
    CHECK(s3.next(masked.data()).token == 2);
  }
  // +inf logits win (the first of them); a temperature below 1e-5 is greedy.
  std::vector<float> infs = {1.0f, INFINITY, 2.0f, INFINITY};
  Sampler s4(sampled(1.0f, 5), nullptr, 0, 4);
  CHECK(s4.next(infs.data()).token == 1);
  std::vector<float> close = {1.0f, 1.0001f, 0.9999f};
  for (int seed = 0; seed < 50; ++seed) {
    Sampler s5(sampled(1e-6f, uint64_t(seed)), nullptr, 0, 3);
    CHECK(s5.next(close.data()).token == 1);
  }
  // top_k = 1 is greedy whatever the temperature and seed.
  for (int trial = 0; trial < 30; ++trial) {
    auto logits = random_values(rng, 1000, 3.0f);
    SamplingParams p = sampled(1.5f, uint64_t(trial));
    p.top_k = 1;
    Sampler a(p, nullptr, 0, 1000), g(SamplingParams{}, nullptr, 0, 1000);
    CHECK(a.next(logits.data()).token == g.next(logits.data()).token);
  }
}

static void test_determinism() {
  std::mt19937 rng(2);
  const int V = 300;
  auto logits = random_values(rng, V, 1.0f);  // flat-ish: the draw matters
  auto run = [&](uint64_t seed) {
    Sampler s(sampled(1.0f, seed), nullptr, 0, V);
    std::vector<int32_t> toks;
    for (int i = 0; i < 50; ++i) toks.push_back(s.next(logits.data()).token);
    return toks;
  };
  const auto a = run(42), b = run(42), c = run(43);
  CHECK(a == b);
  CHECK(a != c);
  int distinct = int(std::set<int32_t>(a.begin(), a.end()).size());
  CHECK(distinct > 10);  // positions get different uniforms

  // Position independence: the draw at position i depends only on (seed, i, logits at i).
  int diverged = 0;
  for (int trial = 0; trial < 40; ++trial) {
    Sampler x(sampled(0.9f, 7), nullptr, 0, V), y(sampled(0.9f, 7), nullptr, 0, V);
    bool earlier_differ = false;
    for (int i = 0; i < 5; ++i) {  // different histories
      auto lx = random_values(rng, V, 3.0f), ly = random_values(rng, V, 3.0f);
      earlier_differ |= x.next(lx.data()).token != y.next(ly.data()).token;
    }
    diverged += earlier_differ;
    auto shared = random_values(rng, V, 1.0f);
    CHECK(x.next(shared.data()).token == y.next(shared.data()).token);
  }
  CHECK(diverged > 30);
}

static void test_distribution() {
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f};
  const int N = 20000;
  const double tol = 0.012;  // > 4 sigma for p(1-p)/N <= 0.25/20000
  auto f = freq_over_seeds(sampled(1.0f), logits, N);
  auto p = softmax(logits);
  for (size_t i = 0; i < p.size(); ++i) CHECK_NEAR(f[i], p[i], tol);
  // One sampler over many positions: the same distribution.
  {
    Sampler s(sampled(1.0f, 99), nullptr, 0, 5);
    std::vector<double> g(5, 0);
    for (int i = 0; i < N; ++i) g[size_t(s.next(logits.data()).token)] += 1.0 / N;
    for (size_t i = 0; i < p.size(); ++i) CHECK_NEAR(g[i], p[i], tol);
  }
  // Temperature: colder sharpens, hotter flattens, each matching softmax(logits / T).
  auto cold = freq_over_seeds(sampled(0.5f), logits, N), hot = freq_over_seeds(sampled(2.0f), logits, N);
  auto pc = softmax(logits, 0.5), ph = softmax(logits, 2.0);
  for (size_t i = 0; i < p.size(); ++i) {
    CHECK_NEAR(cold[i], pc[i], tol);
    CHECK_NEAR(hot[i], ph[i], tol);
  }
  CHECK(cold[3] > f[3] + 0.1 && f[3] > hot[3] + 0.1);  // the top token
  CHECK(cold[2] < f[2] && f[2] < hot[2]);              // the bottom token
}

static void test_filters() {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (shuffled ids).
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  const int N = 10000;
  const double tol = 0.015;
  // top_p tiny: only the top token.
  {
    SamplingParams p = sampled(1.0f);
    p.top_p = 1e-6f;
    auto f = freq_over_seeds(p, logits, 2000);
    CHECK(f[1] == 1.0);
  }
  // top_p 0.7 keeps {0.5, 0.3} (0.5 < 0.7 <= 0.8), renormalised.
  {
    SamplingParams p = sampled(1.0f);
    p.top_p = 0.7f;
    auto f = freq_over_seeds(p, logits, N);
    CHECK_NEAR(f[1], 0.5 / 0.8, tol);
    CHECK_NEAR(f[3], 0.3 / 0.8, tol);
    CHECK(f[0] == 0.0 && f[2] == 0.0);
  }
  // top_k 2.
  {
    SamplingParams p = sampled(1.0f);
    p.top_k = 2;
    auto f = freq_over_seeds(p, logits, N);
    CHECK_NEAR(f[1], 0.5 / 0.8, tol);
    CHECK_NEAR(f[3], 0.3 / 0.8, tol);
    CHECK(f[0] == 0.0 && f[2] == 0.0);
  }
  // top_p applies to the top-k renormalised distribution: top_k 2 → {0.625, 0.375}, top_p 0.6
  // then keeps only the top token (top_p 0.6 alone would keep two).
  {
    SamplingParams p = sampled(1.0f);
    p.top_k = 2;
    p.top_p = 0.6f;
    auto f = freq_over_seeds(p, logits, 2000);
    CHECK(f[1] == 1.0);
    p.top_k = 0;
    auto g = freq_over_seeds(p, logits, 2000);
    CHECK(g[3] > 0.3);
  }
  // min_p 0.2: threshold 0.1 drops the 0.05 token.
  {
    SamplingParams p = sampled(1.0f);
    p.min_p = 0.2f;
    auto f = freq_over_seeds(p, logits, N);
    CHECK(f[2] == 0.0);
    CHECK_NEAR(f[1], 0.5 / 0.95, tol);
    CHECK_NEAR(f[0], 0.15 / 0.95, tol);
    p.min_p = 0.5f;  // threshold 0.25: {0.5, 0.3}
    f = freq_over_seeds(p, logits, N);
    CHECK(f[0] == 0.0 && f[2] == 0.0);
    CHECK_NEAR(f[1], 0.625, tol);
    p.min_p = 0.7f;  // threshold 0.35: only the top
    f = freq_over_seeds(p, logits, 2000);
    CHECK(f[1] == 1.0);
  }
  // With temperature: T = 0.5 squares the probabilities before the filters.
  {
    SamplingParams p = sampled(0.5f);
    p.min_p = 0.3f;  // squared: .25 .09 .0225 .0025; threshold .075 keeps .25 and .09
    auto f = freq_over_seeds(p, logits, N);
    CHECK(f[0] == 0.0 && f[2] == 0.0);
    CHECK_NEAR(f[1], 0.25 / 0.34, tol);
  }
}

static void test_penalties() {
  // Repetition (HF): positive logits divided, negative multiplied; flips the argmax.
  auto greedy_with = [](const SamplingParams& p, std::vector<int32_t> prompt, std::vector<float> logits) {
    Sampler s(p, prompt.data(), int(prompt.size()), int(logits.size()));
    return s.next(logits.data()).token;
  };
  SamplingParams rp;
  rp.repetition_penalty = 1.5f;
  CHECK(greedy_with(rp, {}, {2.0f, 2.9f}) == 1);
  CHECK(greedy_with(rp, {1}, {2.0f, 2.9f}) == 0);   // 2.9 / 1.5 = 1.93 < 2
  CHECK(greedy_with(rp, {1}, {2.0f, 3.1f}) == 1);   // 3.1 / 1.5 = 2.07 > 2
  CHECK(greedy_with(rp, {1}, {-1.6f, -1.0f}) == 1); // -1.5 > -1.6
  CHECK(greedy_with(rp, {1}, {-1.4f, -1.0f}) == 0); // -1.5 < -1.4
  CHECK(greedy_with(rp, {1, 1, 1}, {-1.4f, -1.0f}) == 0);  // once per distinct token
  rp.repetition_penalty = 0.5f;  // < 1 rewards repetition
  CHECK(greedy_with(rp, {1}, {1.0f, 0.8f}) == 1);   // 1.6 > 1
  CHECK(greedy_with(rp, {1}, {1.0f, 0.4f}) == 0);   // 0.8 < 1
  // Output tokens count for repetition too.
  {
    SamplingParams p;
    p.repetition_penalty = 2.0f;
    Sampler s(p, nullptr, 0, 2);
    std::vector<float> l = {1.0f, 1.5f};
    CHECK(s.next(l.data()).token == 1);
    CHECK(s.next(l.data()).token == 0);  // 0.75 < 1
  }
  // Frequency: logit -= fp * count; alternates as the counts grow.
  {
    SamplingParams p;
    p.frequency_penalty = 0.3f;
    Sampler s(p, nullptr, 0, 3);
    std::vector<float> l = {1.0f, 0.75f, 0.0f};
    std::vector<int32_t> got, want = {0, 1, 0, 1, 0, 1};
    // 1 | .7 .75 | .7 .45 | .4 .45 | .4 .15 | .1 .15
    for (int i = 0; i < 6; ++i) got.push_back(s.next(l.data()).token);
    CHECK(got == want);
  }
  // Presence: a flat penalty once seen, so after every token is seen the original argmax returns.
  {
    SamplingParams p;
    p.presence_penalty = 0.5f;
    Sampler s(p, nullptr, 0, 3);
    std::vector<float> l = {1.0f, 0.9f, 0.85f};
    std::vector<int32_t> got, want = {0, 1, 2, 0, 0, 0};
    for (int i = 0; i < 6; ++i) got.push_back(s.next(l.data()).token);
    CHECK(got == want);
  }
  // Negative presence/frequency rewards repetition.
  {
    SamplingParams p;
    p.frequency_penalty = -0.5f;
    Sampler s(p, nullptr, 0, 2);
    std::vector<float> a = {0.0f, 1.0f}, b = {1.2f, 1.0f};
    CHECK(s.next(a.data()).token == 1);
    CHECK(s.next(b.data()).token == 1);  // 1.5 > 1.2
  }
  // Penalties do not touch the prompt for frequency/presence.
  {
    SamplingParams p;
    p.frequency_penalty = 2.0f;
    p.presence_penalty = 2.0f;
    CHECK(greedy_with(p, {0}, {1.0f, 0.5f}) == 0);
  }
  // Against the reference over random logits and mixed parameters, greedy and sampled.
  std::mt19937 rng(5);
  int mismatches = 0, total = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int V = 50 + trial * 7;
    SamplingParams p;
    p.temperature = trial % 3 == 0 ? 0.0f : 0.5f + 0.05f * float(trial % 11);
    p.repetition_penalty = 0.8f + 0.1f * float(trial % 7);
    p.frequency_penalty = -0.6f + 0.2f * float(trial % 8);
    p.presence_penalty = 0.9f - 0.3f * float(trial % 5);
    p.top_k = trial % 4 == 1 ? 5 + trial % 13 : 0;
    p.top_p = trial % 5 == 2 ? 0.8f : 1.0f;
    p.min_p = trial % 6 == 3 ? 0.05f : 0.0f;
    p.seed = uint64_t(trial) * 31;
    p.max_tokens = 100;
    validate_sampling(p, V);
    RefState st;
    for (int i = 0; i < 8; ++i) st.prompt.push_back(int32_t(rng() % unsigned(V)));
    Sampler s(p, st.prompt.data(), int(st.prompt.size()), V);
    for (int step = 0; step < 40; ++step) {
      auto l = random_values(rng, size_t(V), 2.0f);
      for (int j = 0; j < 4; ++j) l[rng() % unsigned(V)] += 3.0f;  // a few favourites repeat
      const int32_t want = ref_next(p, st, l), got = s.next(l.data()).token;
      mismatches += want != got;
      ++total;
    }
  }
  // Larger flat or tied vocabularies exercise the selection (quickselect on mass, ties by id).
  for (int trial = 0; trial < 24; ++trial) {
    const int V = trial % 2 ? 20000 : 3001;
    SamplingParams p;
    p.temperature = 0.6f + 0.2f * float(trial % 4);
    p.top_k = trial % 6 == 1 ? 700 : trial % 6 == 4 ? 2500 : 0;
    p.top_p = trial % 3 == 0 ? 0.9f : trial % 3 == 1 ? 0.5f : 1.0f;
    p.min_p = trial % 4 == 3 ? 0.3f : 0.0f;
    p.repetition_penalty = 1.2f;
    p.seed = uint64_t(trial) + 500;
    RefState st;
    Sampler s(p, nullptr, 0, V);
    for (int step = 0; step < 6; ++step) {
      auto l = random_values(rng, size_t(V), trial % 5 == 0 ? 0.2f : 1.5f);
      if (trial % 4 == 2)
        for (float& v : l) v = std::round(v * 2.0f) / 2.0f;  // many exact ties
      const int32_t want = ref_next(p, st, l), got = s.next(l.data()).token;
      mismatches += want != got;
      ++total;
    }
  }
  // One dominant token and a long tail, each tail token far below it (more than 12 nats) but the
  // tail together ~10% of the mass: the nucleus and the draw reach past the first-ranked pool.
  {
    const int V = 50000;
    int tail_draws = 0;
    for (int trial = 0; trial < 3; ++trial) {
      SamplingParams p = sampled(1.0f, 900 + uint64_t(trial));
      p.top_p = trial == 0 ? 1.0f : trial == 1 ? 0.9f : 0.97f;
      RefState st;
      Sampler s(p, nullptr, 0, V);
      for (int step = 0; step < 60; ++step) {
        auto l = random_values(rng, size_t(V), 0.5f);
        l[size_t(step * 7)] = 12.5f;
        const int32_t want = ref_next(p, st, l), got = s.next(l.data()).token;
        mismatches += want != got;
        tail_draws += got != step * 7;
        ++total;
      }
    }
    CHECK(tail_draws > 8);
    std::fprintf(stderr, "long tail: %d of 180 draws past the pool\n", tail_draws);
  }
  std::fprintf(stderr, "reference agreement: %d mismatches of %d draws\n", mismatches, total);
  CHECK(mismatches <= 2);  // float vs double rounding at a CDF boundary only
}

static void test_ties_sampled() {
  // All-equal logits: uniform over the vocabulary, and deterministic per seed.
  const int V = 64;
  std::vector<float> flat(V, 0.5f);
  std::vector<int> count(V, 0);
  for (int s = 0; s < 6400; ++s) {
    Sampler sm(sampled(1.0f, uint64_t(s)), nullptr, 0, V);
    count[size_t(sm.next(flat.data()).token)]++;
  }
  const int lo = *std::min_element(count.begin(), count.end()), hi = *std::max_element(count.begin(), count.end());
  CHECK(lo > 50 && hi < 150);  // expected 100 each
  // top_k among ties keeps the lowest ids.
  SamplingParams p = sampled(1.0f);
  p.top_k = 3;
  std::vector<int> hit(V, 0);
  for (int s = 0; s < 300; ++s) {
    p.seed = uint64_t(s);
    Sampler sm(p, nullptr, 0, V);
    hit[size_t(sm.next(flat.data()).token)]++;
  }
  CHECK(hit[0] > 0 && hit[1] > 0 && hit[2] > 0 && hit[0] + hit[1] + hit[2] == 300);
  // top_p among ties: 0.05 of 64 equal tokens is 3.2 tokens → the 4 lowest ids.
  p.top_k = 0;
  p.top_p = 0.05f;
  std::fill(hit.begin(), hit.end(), 0);
  for (int s = 0; s < 400; ++s) {
    p.seed = uint64_t(s);
    Sampler sm(p, nullptr, 0, V);
    hit[size_t(sm.next(flat.data()).token)]++;
  }
  CHECK(hit[0] + hit[1] + hit[2] + hit[3] == 400 && hit[3] > 0);
}

static void test_logprobs() {
  std::mt19937 rng(6);
  const int V = 1000;
  auto logits = random_values(rng, V, 6.0f);
  logits[17] = logits[400] = logits[999] = 9.0f;  // a three-way tie at the top
  double mx = -INFINITY, z = 0;
  for (float v : logits) mx = std::max(mx, double(v));
  for (float v : logits) z += std::exp(double(v) - mx);
  const double lse = mx + std::log(z);

  SamplingParams p = sampled(0.8f, 11);
  p.top_logprobs = 7;
  p.repetition_penalty = 1.3f;
  p.frequency_penalty = 1.0f;
  std::vector<int32_t> prompt = {17, 400};
  Sampler s(p, prompt.data(), 2, V);
  for (int step = 0; step < 5; ++step) {
    Sampled r = s.next(logits.data());
    CHECK_NEAR(r.logprob, double(logits[size_t(r.token)]) - lse, 1e-5);  // raw: penalties ignored
    CHECK(r.top.size() == 7);
    if (r.top.size() != 7) continue;
    CHECK(r.top[0].token == 17 && r.top[1].token == 400 && r.top[2].token == 999);  // ties: lower id
    std::vector<float> sorted = logits;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    for (size_t j = 0; j < r.top.size(); ++j) {
      CHECK_NEAR(r.top[j].logprob, double(logits[size_t(r.top[j].token)]) - lse, 1e-5);
      CHECK(logits[size_t(r.top[j].token)] == sorted[j]);
      if (j > 0) CHECK(r.top[j].logprob <= r.top[j - 1].logprob);
    }
  }
  // logprobs alone: no alternatives; nothing requested: nothing computed.
  SamplingParams q;
  q.logprobs = true;
  Sampler g(q, nullptr, 0, V);
  Sampled r = g.next(logits.data());
  CHECK(r.token == 17 && r.top.empty());
  CHECK_NEAR(r.logprob, 9.0 - lse, 1e-5);
  Sampler none(SamplingParams{}, nullptr, 0, V);
  r = none.next(logits.data());
  CHECK(r.logprob == 0.0f && r.top.empty());
  // Large logits stay stable (max subtraction).
  std::vector<float> big = {1000.0f, 999.0f, -1000.0f};
  Sampler b(q, nullptr, 0, 3);
  r = b.next(big.data());
  CHECK_NEAR(r.logprob, -std::log1p(std::exp(-1.0)), 1e-5);
  // Asking for more alternatives than the vocabulary has.
  SamplingParams t;
  t.top_logprobs = 20;
  Sampler small(t, nullptr, 0, 3);
  r = small.next(big.data());
  CHECK(r.top.size() == 3 && r.top[0].token == 0 && r.top[2].token == 2);
}

static void test_large_vocab() {
  const int V = 128256;
  std::mt19937 rng(8);
  // Roughly LM-like: a broad floor, a few hundred plausible tokens, a handful of strong ones.
  std::vector<std::vector<float>> steps;
  for (int k = 0; k < 8; ++k) {
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> l(static_cast<size_t>(V));
    for (float& v : l) v = nd(rng);
    for (int j = 0; j < 300; ++j) l[rng() % unsigned(V)] += 8.0f;
    for (int j = 0; j < 5; ++j) l[rng() % unsigned(V)] += 14.0f;
    steps.push_back(std::move(l));
  }
  struct Case {
    const char* name;
    SamplingParams p;
  };
  std::vector<Case> cases;
  cases.push_back({"greedy", SamplingParams{}});
  SamplingParams tp = sampled(1.0f, 1);
  tp.top_p = 0.9f;
  cases.push_back({"top_p 0.9", tp});
  SamplingParams tk = sampled(1.0f, 2);
  tk.top_k = 50;
  cases.push_back({"top_k 50", tk});
  SamplingParams both = sampled(0.7f, 3);
  both.top_k = 50;
  both.top_p = 0.95f;
  cases.push_back({"T0.7 top_k 50 top_p .95", both});
  SamplingParams mp = sampled(1.0f, 4);
  mp.min_p = 0.05f;
  cases.push_back({"min_p 0.05", mp});
  cases.push_back({"T1 unfiltered", sampled(1.0f, 5)});
  SamplingParams lp = tp;
  lp.top_logprobs = 5;
  lp.repetition_penalty = 1.1f;
  cases.push_back({"top_p 0.9 + top_logprobs 5 + rep", lp});
  for (auto& c : cases) {
    std::vector<int32_t> prompt(512);
    for (auto& t : prompt) t = int32_t(rng() % unsigned(V));
    Sampler s(c.p, prompt.data(), int(prompt.size()), V);
    s.next(steps[0].data());  // first call allocates
    const int calls = 200;
    bool ok = true;
    auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_us();
    for (int i = 0; i < calls; ++i) {
      const int32_t tok = s.next(steps[size_t(i) % steps.size()].data()).token;
      ok &= tok >= 0 && tok < V;
    }
    const double cpu = thread_cpu_us() - c0;
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    CHECK(ok);
    CHECK(s.generated() == calls + 1);
    std::fprintf(stderr, "vocab %d, %-34s %8.1f us/call wall, %8.1f us/call cpu\n", V, c.name, us / calls,
                 cpu / calls);
  }
  // Worst case for the lazy ranking: a flat distribution with top_p 0.9 sorts most of the vocab.
  {
    std::vector<float> flat = random_values(rng, size_t(V), 1.0f);
    SamplingParams p = sampled(1.0f, 6);
    p.top_p = 0.9f;
    Sampler s(p, nullptr, 0, V);
    auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_us();
    for (int i = 0; i < 20; ++i) CHECK(s.next(flat.data()).token >= 0);
    const double cpu = thread_cpu_us() - c0;
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "vocab %d, %-34s %8.1f us/call wall, %8.1f us/call cpu\n", V, "flat logits, top_p 0.9",
                 us / 20, cpu / 20);
  }
  // The large-vocabulary path against the reference (same seeds → same tokens).
  {
    SamplingParams p = sampled(1.0f, 77);
    p.top_p = 0.9f;
    RefState st;
    Sampler s(p, nullptr, 0, V);
    int mism = 0;
    for (int i = 0; i < 16; ++i) mism += ref_next(p, st, steps[size_t(i) % steps.size()]) != s.next(steps[size_t(i) % steps.size()].data()).token;
    CHECK(mism <= 1);
  }
}

int main() {
  test_validate();
  test_greedy();
  test_determinism();
  test_distribution();
  test_filters();
  test_penalties();
  test_ties_sampled();
  test_logprobs();
  test_large_vocab();
  return finish("test_sampling");
}
