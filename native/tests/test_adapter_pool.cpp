// The tiered adapter pool: views over pool pages equal the adapter's own data, LRU eviction
// around pinned adapters, host/disk tiers, page accounting, load failures, registration errors,
// and a stress run (one engine thread acquiring/releasing while the loader and a registration
// thread run). Also prints load times for a ~100M-shape model with rank-16 adapters.
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "adapter_pool.h"
#include "model_internal.h"
#include "test_util.h"

using namespace longtail;

namespace {

using Clock = std::chrono::steady_clock;

// Polls acquire() until it returns a view (or the timeout passes: nullptr).
const AdapterView* wait_acquire(AdapterPool& pool, AdapterId id, int timeout_ms = 10000) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (const AdapterView* v = pool.acquire(id)) return v;
    if (Clock::now() > end) return nullptr;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

bool wait_idle(const AdapterPool& pool, int timeout_ms = 10000) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pool.loads_pending()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

RuntimeStats stats_of(const AdapterPool& pool) {
  RuntimeStats s;
  pool.fill_stats(s);
  return s;
}

// Every row, rank and scale of `got` equals `want` (bit for bit).
bool same_view(const AdapterView& got, const AdapterView& want, const ModelConfig& c) {
  if (got.base != want.base || got.max_rank != want.max_rank || got.layers.size() != want.layers.size()) return false;
  for (size_t l = 0; l < want.layers.size(); ++l) {
    for (int p = 0; p < kNumProj; ++p) {
      const LoraRows& g = got.layers[l][p];
      const LoraRows& w = want.layers[l][p];
      if (g.rank != w.rank || std::memcmp(&g.scale, &w.scale, sizeof(float)) != 0) return false;
      for (int k = 0; k < w.rank; ++k) {
        if (std::memcmp(g.A[k], w.A[k], sizeof(float) * size_t(proj_in(c, p))) != 0) return false;
        if (std::memcmp(g.Bt[k], w.Bt[k], sizeof(float) * size_t(proj_out(c, p))) != 0) return false;
      }
    }
  }
  return true;
}

struct Range {
  const float* begin;
  const float* end;
};

void add_ranges(const AdapterView& v, const ModelConfig& c, std::vector<Range>& out) {
  for (size_t l = 0; l < v.layers.size(); ++l)
    for (int p = 0; p < kNumProj; ++p)
      for (int k = 0; k < v.layers[l][p].rank; ++k) {
        out.push_back({v.layers[l][p].A[k], v.layers[l][p].A[k] + proj_in(c, p)});
        out.push_back({v.layers[l][p].Bt[k], v.layers[l][p].Bt[k] + proj_out(c, p)});
      }
}

bool disjoint(std::vector<Range> r) {
  std::sort(r.begin(), r.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < r.size(); ++i)
    if (r[i].begin < r[i - 1].end) return false;
  return true;
}

bool aligned(const AdapterView& v) {
  for (const float* r : v.rows)
    if (reinterpret_cast<uintptr_t>(r) % 64 != 0) return false;
  return true;
}

// A model with the tensor layout of write_tiny_model but zero weights in a sparse file: the
// ~100M shape is written instantly (the pool never reads the base weights).
std::string write_sparse_model(const std::string& dir, const TinySpec& s) {
  mkdir_p(dir);
  write_file(dir + "/config.json", tiny_config(s).dump());
  nlohmann::json h = nlohmann::json::object();
  uint64_t at = 0;
  const int hd = s.hidden / s.heads;
  auto add = [&](const std::string& n, std::vector<int64_t> shape) {
    uint64_t numel = 1;
    for (auto d : shape) numel *= uint64_t(d);
    h[n] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {at, at + numel * 4}}};
    at += numel * 4;
  };
  add("model.embed_tokens.weight", {s.vocab, s.hidden});
  for (int l = 0; l < s.layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {s.hidden});
    add(p + "post_attention_layernorm.weight", {s.hidden});
    add(p + "self_attn.q_proj.weight", {s.heads * hd, s.hidden});
    add(p + "self_attn.k_proj.weight", {s.kv_heads * hd, s.hidden});
    add(p + "self_attn.v_proj.weight", {s.kv_heads * hd, s.hidden});
    add(p + "self_attn.o_proj.weight", {s.hidden, s.heads * hd});
    add(p + "mlp.gate_proj.weight", {s.inter, s.hidden});
    add(p + "mlp.up_proj.weight", {s.inter, s.hidden});
    add(p + "mlp.down_proj.weight", {s.hidden, s.inter});
  }
  add("model.norm.weight", {s.hidden});
  if (!s.tied) add("lm_head.weight", {s.vocab, s.hidden});
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  std::string head(8, '\0');
  const uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) head[i] = char((n >> (8 * i)) & 0xff);
  head += hs;
  const std::string path = dir + "/model.safetensors";
  write_file(path, head);
  if (::truncate(path.c_str(), off_t(head.size() + at)) != 0) std::perror("truncate");
  return dir;
}

struct Fixture {
  std::string root;
  TinySpec spec;
  std::unique_ptr<Model> model;
  CpuBackend* cpu = nullptr;
  Backend* be = nullptr;
  explicit Fixture(const std::string& tag) {
    root = temp_dir(tag);
    model = load_model(write_tiny_model(root + "/model", spec));
    CpuBackendOptions o;
    o.threads = 1;
    cpu = make_cpu_backend(o);
    be = as_backend(cpu);
  }
  ~Fixture() {
    destroy_cpu_backend(cpu);
    std::string cmd = "rm -rf '" + root + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", root.c_str());
  }
  std::string adapter(const std::string& name, const TinyAdapterSpec& a) {
    return write_tiny_adapter(root + "/" + name, spec, a);
  }
};

TinyAdapterSpec spec_r(int r, unsigned seed) {
  TinyAdapterSpec a;
  a.r = r;
  a.seed = seed;
  return a;
}

// 1. Views over pool pages equal the adapters' own data; rows of resident adapters never overlap.
void test_views() {
  Fixture f("pool-views");
  const ModelConfig& c = f.model->config();
  std::vector<TinyAdapterSpec> specs;
  {
    TinyAdapterSpec a = spec_r(2, 21);
    a.modules = {"q_proj", "v_proj"};
    specs.push_back(a);
    specs.push_back(spec_r(4, 22));
    TinyAdapterSpec b = spec_r(8, 23);
    b.rank_pattern = {{"q_proj", 2}, {"down_proj", 16}};
    b.alpha = 3;
    specs.push_back(b);
    TinyAdapterSpec d = spec_r(3, 24);
    d.modules = {"o_proj", "gate_proj", "down_proj"};
    d.rslora = true;
    d.dtype = "BF16";
    specs.push_back(d);
  }
  std::vector<std::string> dirs;
  std::vector<std::unique_ptr<Adapter>> refs;
  for (size_t i = 0; i < specs.size(); ++i) {
    dirs.push_back(f.adapter("a" + std::to_string(i), specs[i]));
    refs.push_back(load_adapter(dirs.back(), *f.model));
  }
  for (size_t host : {size_t(0), size_t(64) << 20}) {  // copies from disk, then from the host tier
    AdapterPoolOptions o;
    o.pool_bytes = 1 << 20;
    o.host_bytes = host;
    AdapterPool pool(*f.model, *f.be, o);
    CHECK(pool.page_floats() == 48);  // max(32, 48) rounded to 16
    std::vector<AdapterId> ids;
    for (size_t i = 0; i < specs.size(); ++i) ids.push_back(pool.add("a" + std::to_string(i), dirs[i]));
    CHECK(pool.find("a2") == ids[2]);
    CHECK(pool.find("nope") == -1);
    std::vector<Range> ranges;
    for (size_t i = 0; i < ids.size(); ++i) {
      CHECK(pool.acquire(ids[i]) == nullptr);  // not resident yet: starts the load
      const AdapterView* v = wait_acquire(pool, ids[i]);
      CHECK(v != nullptr);
      if (!v) continue;
      CHECK(same_view(*v, refs[i]->view(), c));
      CHECK(v->rows.size() == refs[i]->view().rows.size());
      CHECK(v->rows.empty() || v->rows[0] != refs[i]->view().rows[0]);
      CHECK(aligned(*v));
      add_ranges(*v, c, ranges);
    }
    CHECK(disjoint(ranges));
    RuntimeStats s = stats_of(pool);
    CHECK(s.adapters_registered == 4);
    CHECK(s.adapters_resident == 4);
    CHECK(s.adapters_in_use == 4);
    CHECK(s.pool_page_bytes == 48 * 4);
    size_t pages = 0, bytes = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      pages += pool.pages_needed(ids[i]);
      bytes += refs[i]->bytes();
    }
    CHECK(s.pool_pages_total == (size_t(1) << 20) / (48 * 4));
    CHECK(s.pool_pages_free == s.pool_pages_total - pages);
    CHECK(s.adapter_bytes_loaded == bytes);
    CHECK(s.load_from_disk.count == (host ? 0u : 4u));
    CHECK(s.load_from_host.count == (host ? 4u : 0u));
    CHECK(s.host_bytes_used == (host ? bytes : 0u));
    // Pinned twice, released twice.
    CHECK(pool.acquire(ids[0]) != nullptr);
    pool.release(ids[0]);
    for (AdapterId id : ids) pool.release(id);
    EXPECT_ERROR([&] { pool.release(ids[1]); }, "not pinned");
    CHECK(stats_of(pool).adapters_in_use == 0);
    // Packing on the tiny model (48-float pages; rows of 32 and 48 floats take a page each, the
    // 16-float k/v Bt rows fill gaps): per layer q 8, k 4+1, v 4+1, o 8, gate 8, up 8, down 8.
    CHECK(pool.pages_needed(ids[1]) == 2 * 50);
  }
}

// 2. LRU eviction in a pool that holds exactly K adapters; pinned adapters are never evicted.
void test_lru_and_pins() {
  Fixture f("pool-lru");
  const int K = 4, N = K + 3;
  std::vector<std::string> dirs;
  for (int i = 0; i < N; ++i) dirs.push_back(f.adapter("a" + std::to_string(i), spec_r(4, 100 + i)));
  size_t pages_each;
  {
    AdapterPool probe(*f.model, *f.be, {size_t(1) << 20, 0});
    pages_each = probe.pages_needed(probe.add("p", dirs[0]));
  }
  AdapterPoolOptions o;
  o.pool_bytes = K * pages_each * 48 * 4 + 48 * 4 - 1;  // K adapters and a partial page's worth
  o.host_bytes = size_t(64) << 20;
  AdapterPool pool(*f.model, *f.be, o);
  CHECK(stats_of(pool).pool_pages_total == K * pages_each);
  std::vector<AdapterId> ids;
  for (int i = 0; i < N; ++i) ids.push_back(pool.add("a" + std::to_string(i), dirs[i]));
  for (int i = 0; i < N; ++i) {
    const AdapterView* v = wait_acquire(pool, ids[i]);
    CHECK(v != nullptr);
    if (v) pool.release(ids[i]);
    CHECK(stats_of(pool).adapter_evictions == uint64_t(std::max(0, i + 1 - K)));
  }
  RuntimeStats s = stats_of(pool);
  CHECK(s.adapters_resident == K);
  CHECK(s.pool_pages_free == 0);
  // The K most recently used are resident (acquire answers at once), the first three are not.
  for (int i = N - K; i < N; ++i) {
    const AdapterView* v = pool.acquire(ids[i]);
    CHECK(v != nullptr);
    if (v) pool.release(ids[i]);
  }
  CHECK(!pool.loads_pending());
  // Touch order now: 3,4,5,6 (6 most recent). Touch 3 again → 4 becomes the LRU one.
  CHECK(pool.acquire(ids[3]) != nullptr);
  pool.release(ids[3]);
  CHECK(pool.acquire(ids[0]) == nullptr);  // starts a load that evicts 4
  CHECK(wait_acquire(pool, ids[0]) != nullptr);
  pool.release(ids[0]);
  CHECK(stats_of(pool).adapter_evictions == 4);
  CHECK(pool.acquire(ids[3]) != nullptr);
  pool.release(ids[3]);
  CHECK(pool.acquire(ids[4]) == nullptr);  // was evicted: loads again (evicting 5)
  CHECK(wait_acquire(pool, ids[4]) != nullptr);
  pool.release(ids[4]);
  CHECK(stats_of(pool).adapter_evictions == 5);
  // Resident now: 6, 3, 0, 4. Pin all of them; another one cannot load.
  const int pinned[] = {6, 3, 0, 4};
  for (int i : pinned) CHECK(pool.acquire(ids[i]) != nullptr);
  CHECK(stats_of(pool).adapters_in_use == K);
  for (int round = 0; round < 5; ++round) {
    CHECK(pool.acquire(ids[1]) == nullptr);
    CHECK(!pool.loads_pending());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  s = stats_of(pool);
  CHECK(s.adapter_evictions == 5);
  CHECK(s.adapters_resident == K);
  // Views of pinned adapters still hold their data.
  auto ref = load_adapter(dirs[6], *f.model);
  const AdapterView* v6 = pool.acquire(ids[6]);
  CHECK(v6 && same_view(*v6, ref->view(), f.model->config()));
  pool.release(ids[6]);
  // Release one: adapter 1 loads in its place.
  pool.release(ids[3]);
  const AdapterView* v1 = wait_acquire(pool, ids[1]);
  CHECK(v1 != nullptr);
  CHECK(stats_of(pool).adapter_evictions == 6);
  CHECK(pool.acquire(ids[3]) == nullptr);  // evicted; cannot load while the others are pinned
  CHECK(!pool.loads_pending());
  for (int i : {6, 0, 4, 1}) pool.release(ids[i]);
  CHECK(wait_acquire(pool, ids[3]) != nullptr);
  pool.release(ids[3]);
}

// 3. Tiers: host-tier copies when the budget allows, disk loads otherwise.
void test_tiers() {
  Fixture f("pool-tiers");
  const std::string d0 = f.adapter("a0", spec_r(4, 31)), d1 = f.adapter("a1", spec_r(4, 32));
  const uint64_t bytes = load_adapter(d0, *f.model)->bytes();
  size_t pages_each;
  {
    AdapterPool probe(*f.model, *f.be, {size_t(1) << 20, 0});
    pages_each = probe.pages_needed(probe.add("p", d0));
  }
  const size_t one = pages_each * 48 * 4;  // pool for exactly one adapter
  auto cycle = [&](AdapterPool& pool, AdapterId a, AdapterId b, int rounds) {
    for (int i = 0; i < rounds; ++i)
      for (AdapterId id : {a, b}) {
        const AdapterView* v = wait_acquire(pool, id);
        CHECK(v != nullptr);
        if (v) pool.release(id);
      }
  };
  {  // large host budget: every load is a copy from the host tier
    AdapterPool pool(*f.model, *f.be, {one, size_t(64) << 20});
    AdapterId a = pool.add("a", d0), b = pool.add("b", d1);
    CHECK(stats_of(pool).host_bytes_used == 2 * bytes);
    cycle(pool, a, b, 3);
    RuntimeStats s = stats_of(pool);
    CHECK(s.load_from_host.count == 6);
    CHECK(s.load_from_disk.count == 0);
    CHECK(s.adapter_evictions == 5);
    CHECK(s.adapter_bytes_loaded == 6 * bytes);
    CHECK(s.load_from_host.p50_ms <= s.load_from_host.p99_ms && s.load_from_host.p99_ms <= s.load_from_host.max_ms);
    CHECK(s.load_from_host.max_ms > 0);
    CHECK(s.host_bytes_budget == size_t(64) << 20);
  }
  {  // no host tier: every load parses the folder
    AdapterPool pool(*f.model, *f.be, {one, 0});
    AdapterId a = pool.add("a", d0), b = pool.add("b", d1);
    CHECK(stats_of(pool).host_bytes_used == 0);
    cycle(pool, a, b, 2);
    RuntimeStats s = stats_of(pool);
    CHECK(s.load_from_disk.count == 4);
    CHECK(s.load_from_host.count == 0);
    CHECK(s.host_bytes_used == 0);
    CHECK(s.load_from_disk.max_ms > 0);
  }
  {  // host tier for one adapter: the one loaded from disk replaces the other there
    AdapterPool pool(*f.model, *f.be, {one, bytes});
    AdapterId a = pool.add("a", d0), b = pool.add("b", d1);  // a leaves the host tier for b
    CHECK(stats_of(pool).host_bytes_used == bytes);
    CHECK(wait_acquire(pool, b) != nullptr);  // from host
    pool.release(b);
    CHECK(wait_acquire(pool, a) != nullptr);  // from disk; a replaces b in the host tier
    pool.release(a);
    CHECK(wait_acquire(pool, b) != nullptr);  // from disk
    pool.release(b);
    CHECK(wait_acquire(pool, a) != nullptr);  // from disk again (b took the host slot)
    pool.release(a);
    RuntimeStats s = stats_of(pool);
    CHECK(s.load_from_host.count == 1);
    CHECK(s.load_from_disk.count == 3);
    CHECK(s.host_bytes_used == bytes);
  }
}

// 4. Page and byte accounting returns to zero; 5. load failures; 6. registration errors.
void test_accounting_failures_errors() {
  Fixture f("pool-errors");
  const ModelConfig& c = f.model->config();
  const std::string d0 = f.adapter("a0", spec_r(4, 41)), d1 = f.adapter("a1", spec_r(8, 42));
  {  // 4
    AdapterPool pool(*f.model, *f.be, {size_t(1) << 20, size_t(64) << 20});
    std::vector<AdapterId> ids = {pool.add("a", d0), pool.add("b", d1), pool.add("c", d0)};
    for (AdapterId id : ids) CHECK(wait_acquire(pool, id) != nullptr);
    CHECK(pool.acquire(ids[1]) != nullptr);
    EXPECT_ERROR([&] { pool.remove(ids[1]); }, "adapter b is in use");
    for (AdapterId id : ids) pool.release(id);
    EXPECT_ERROR([&] { pool.remove(ids[1]); }, "adapter b is in use");  // still pinned once
    pool.release(ids[1]);
    for (AdapterId id : ids) pool.remove(id);
    RuntimeStats s = stats_of(pool);
    CHECK(s.pool_pages_free == s.pool_pages_total);
    CHECK(s.host_bytes_used == 0);
    CHECK(s.adapters_registered == 0);
    CHECK(s.adapters_resident == 0);
    EXPECT_ERROR([&] { pool.acquire(ids[0]); }, "unknown adapter");
    EXPECT_ERROR([&] { pool.remove(ids[0]); }, "unknown adapter");
    EXPECT_ERROR([&] { pool.pages_needed(ids[0]); }, "unknown adapter");
    CHECK(pool.find("a") == -1);
    CHECK(!pool.take_failure(ids[0], nullptr));
    // The name is free again; removing a loading adapter waits for the load.
    AdapterId again = pool.add("a", d1);
    CHECK(pool.acquire(again) == nullptr);
    pool.remove(again);
    CHECK(!pool.loads_pending());
    s = stats_of(pool);
    CHECK(s.pool_pages_free == s.pool_pages_total);
    CHECK(s.adapters_registered == 0);
  }
  {  // 5: the folder is corrupted after registration; no host tier, so the reload reads it
    const std::string d = f.adapter("bad", spec_r(4, 43));
    AdapterPool pool(*f.model, *f.be, {size_t(1) << 20, 0});
    AdapterId id = pool.add("bad", d);
    write_file(d + "/adapter_model.safetensors", std::string("\x10\0\0\0\0\0\0\0garbage!garbage!", 24));
    CHECK(pool.acquire(id) == nullptr);
    CHECK(wait_idle(pool));
    std::string msg;
    CHECK(pool.take_failure(id, &msg));
    CHECK(msg.find("adapter_model.safetensors") != std::string::npos);
    CHECK(msg.find("adapter bad") != std::string::npos);
    CHECK(!pool.take_failure(id, &msg));  // reported once
    RuntimeStats s = stats_of(pool);
    CHECK(s.pool_pages_free == s.pool_pages_total);
    CHECK(s.adapters_resident == 0);
    CHECK(s.load_from_disk.count == 0);
    // A folder rewritten with another rank no longer matches the layout.
    write_tiny_adapter(d, f.spec, spec_r(8, 43));
    CHECK(pool.acquire(id) == nullptr);
    CHECK(wait_idle(pool));
    CHECK(pool.take_failure(id, &msg));
    CHECK(msg.find("changed on disk") != std::string::npos);
    // A pending failure holds off retries until it is taken.
    write_tiny_adapter(d, f.spec, spec_r(8, 44));
    CHECK(pool.acquire(id) == nullptr);
    CHECK(wait_idle(pool));
    write_tiny_adapter(d, f.spec, spec_r(4, 43));  // restored
    CHECK(pool.acquire(id) == nullptr);
    CHECK(!pool.loads_pending());  // nothing started: the failure is not taken yet
    CHECK(pool.take_failure(id, &msg));
    CHECK(msg.find("rank of layer 0 q_proj is 8, was 4") != std::string::npos);
    const AdapterView* v = wait_acquire(pool, id);  // restored: loads
    CHECK(v != nullptr);
    auto ref = load_adapter(d, *f.model);
    CHECK(v && same_view(*v, ref->view(), c));
    if (v) pool.release(id);
    s = stats_of(pool);
    CHECK(s.pool_pages_free == s.pool_pages_total - pool.pages_needed(id));
  }
  {  // 6
    size_t pages_each;
    {
      AdapterPool probe(*f.model, *f.be, {size_t(1) << 20, 0});
      pages_each = probe.pages_needed(probe.add("p", d1));
    }
    AdapterPool small(*f.model, *f.be, {(pages_each - 1) * 48 * 4, 0});
    EXPECT_ERROR([&] { small.add("big", d1); }, "adapter big needs " + std::to_string(pages_each) + " pages",
                 "the pool has " + std::to_string(pages_each - 1));
    CHECK(small.find("big") == -1);
    AdapterPool empty(*f.model, *f.be, {0, 0});
    EXPECT_ERROR([&] { empty.add("x", d0); }, "the pool has 0");
    AdapterPool pool(*f.model, *f.be, {size_t(1) << 20, size_t(1) << 20});
    pool.add("a", d0);
    EXPECT_ERROR([&] { pool.add("a", d1); }, "already registered");
    const std::string bad = f.root + "/malformed";
    mkdir_p(bad);
    write_file(bad + "/adapter_config.json", "{not json");
    EXPECT_ERROR([&] { pool.add("m", bad); }, "adapter_config.json", "invalid JSON");
    EXPECT_ERROR([&] { pool.add("n", f.root + "/does-not-exist"); }, "missing");
    CHECK(pool.find("m") == -1);
    CHECK(stats_of(pool).adapters_registered == 1);
  }
}

// 7. Stress: 200 adapters (a few folders under many names), a pool for 16 of the largest,
// 5,000 random acquire/release cycles on the engine thread while the loader runs and another
// thread registers and removes adapters.
void test_stress() {
  Fixture f("pool-stress");
  const ModelConfig& c = f.model->config();
  std::vector<TinyAdapterSpec> specs = {spec_r(2, 51), spec_r(4, 52), spec_r(8, 53), spec_r(1, 54), spec_r(6, 55)};
  specs[3].modules = {"k_proj"};
  specs[4].rank_pattern = {{"up_proj", 12}};
  std::vector<std::string> dirs;
  std::vector<std::unique_ptr<Adapter>> refs;
  for (size_t i = 0; i < specs.size(); ++i) {
    dirs.push_back(f.adapter("s" + std::to_string(i), specs[i]));
    refs.push_back(load_adapter(dirs.back(), *f.model));
  }
  size_t max_pages = 0;
  {
    AdapterPool probe(*f.model, *f.be, {size_t(16) << 20, 0});
    for (size_t i = 0; i < dirs.size(); ++i)
      max_pages = std::max(max_pages, probe.pages_needed(probe.add("p" + std::to_string(i), dirs[i])));
  }
  AdapterPoolOptions o;
  o.pool_bytes = 16 * max_pages * 48 * 4;
  o.host_bytes = 40 * refs[2]->bytes();  // some reloads from host, some from disk
  AdapterPool pool(*f.model, *f.be, o);
  const int N = 200;
  std::vector<AdapterId> ids(N);
  for (int i = 0; i < N; ++i) ids[i] = pool.add("n" + std::to_string(i), dirs[size_t(i) % dirs.size()]);

  // Registration churn on another thread: names x0..x19, added and removed repeatedly.
  std::atomic<bool> done{false};
  std::atomic<int> churn_ops{0}, churn_in_use{0};
  std::thread churn([&] {
    std::mt19937 rng(99);
    while (!done.load()) {
      const std::string name = "x" + std::to_string(rng() % 20);
      try {
        AdapterId id = pool.find(name);
        if (id < 0) pool.add(name, dirs[rng() % dirs.size()]);
        else pool.remove(id);
        ++churn_ops;
      } catch (const Error& e) {
        std::string m = e.what();
        if (m.find("in use") != std::string::npos) ++churn_in_use;
        else if (m.find("unknown adapter") == std::string::npos && m.find("already registered") == std::string::npos) {
          std::fprintf(stderr, "churn: unexpected error: %s\n", m.c_str());
          ++g_failures;
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });

  std::mt19937 rng(7);
  struct Pin {
    AdapterId id;
    size_t ref;
    const AdapterView* v;
  };
  std::vector<Pin> pins;
  int hits = 0, misses = 0, bad_views = 0, failures = 0;
  std::vector<Range> ranges;
  for (int cycle = 0; cycle < 5000; ++cycle) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    if (cycle % 10 == 0) CHECK(wait_idle(pool));  // progress whatever the speed (sanitizers)
    const unsigned r = rng() % 10;
    if (r < 6 || pins.empty()) {
      AdapterId id;
      size_t ref;
      if (rng() % 8 == 0) {  // a churned adapter (may vanish between find and acquire)
        id = pool.find("x" + std::to_string(rng() % 20));
        if (id < 0) continue;
        ref = size_t(-1);
      } else {
        const int i = int(rng() % 4 ? rng() % 12 : rng() % N);  // a hot set and a long tail
        id = ids[size_t(i)];
        ref = size_t(i) % dirs.size();
      }
      const AdapterView* v = nullptr;
      try {
        v = pool.acquire(id);
      } catch (const Error&) {
        continue;  // a churned adapter was removed
      }
      if (!v) {
        ++misses;
        std::string m;
        if (pool.take_failure(id, &m)) {
          ++failures;
          std::fprintf(stderr, "stress: load failed: %s\n", m.c_str());
        }
        continue;
      }
      ++hits;
      if (ref != size_t(-1) && !same_view(*v, refs[ref]->view(), c)) ++bad_views;
      pins.push_back({id, ref, v});
    } else {
      const size_t k = rng() % pins.size();
      pool.release(pins[k].id);
      pins.erase(pins.begin() + std::ptrdiff_t(k));
    }
    if (pins.size() > 10) {  // keep room for loads: release the oldest
      pool.release(pins.front().id);
      pins.erase(pins.begin());
    }
    if (cycle % 500 == 0) {  // pinned views still hold their data and do not overlap
      ranges.clear();
      std::vector<AdapterId> seen;
      for (const Pin& p : pins) {
        if (p.ref != size_t(-1) && !same_view(*p.v, refs[p.ref]->view(), c)) ++bad_views;
        if (std::find(seen.begin(), seen.end(), p.id) == seen.end()) {
          seen.push_back(p.id);
          add_ranges(*p.v, c, ranges);
        }
      }
      CHECK(disjoint(ranges));
      RuntimeStats s = stats_of(pool);
      CHECK(s.pool_pages_free <= s.pool_pages_total);
      CHECK(s.adapters_in_use == int(seen.size()));
    }
  }
  for (const Pin& p : pins) pool.release(p.id);
  done = true;
  churn.join();
  CHECK(wait_idle(pool));
  CHECK(bad_views == 0);
  CHECK(failures == 0);
  CHECK(hits > 1000);
  CHECK(misses > 100);
  RuntimeStats s = stats_of(pool);
  CHECK(s.adapters_in_use == 0);
  CHECK(s.adapter_evictions > 0);
  CHECK(s.load_from_disk.count > 0);
  CHECK(s.load_from_host.count > 0);
  CHECK(s.host_bytes_used <= o.host_bytes);
  std::fprintf(stderr, "stress: %d hits, %d misses, %llu evictions, %llu disk + %llu host loads, %d churn ops (%d in use)\n",
               hits, misses, (unsigned long long)s.adapter_evictions, (unsigned long long)s.load_from_disk.count,
               (unsigned long long)s.load_from_host.count, churn_ops.load(), churn_in_use.load());
  // Everything out again.
  for (AdapterId id : ids) pool.remove(id);
  for (int i = 0; i < 20; ++i)
    if (AdapterId id = pool.find("x" + std::to_string(i)); id >= 0) pool.remove(id);
  s = stats_of(pool);
  CHECK(s.adapters_registered == 0);
  CHECK(s.pool_pages_free == s.pool_pages_total);
  CHECK(s.host_bytes_used == 0);
}

// A pool destroyed with loads queued and in flight.
void test_destroy_busy() {
  Fixture f("pool-destroy");
  const std::string d = f.adapter("a", spec_r(8, 61));
  for (int round = 0; round < 3; ++round) {
    AdapterPool pool(*f.model, *f.be, {size_t(4) << 20, 0});
    std::vector<AdapterId> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(pool.add("a" + std::to_string(i), d));
    for (AdapterId id : ids) CHECK(pool.acquire(id) == nullptr);
    CHECK(pool.loads_pending());
  }  // the destructor drops the queue and joins
}

// Load times for a ~100M-parameter shape (hidden 768, intermediate 2048, 12 layers, 12 heads),
// rank 16 on all projections.
void bench_load_times() {
  const std::string root = temp_dir("pool-bench");
  TinySpec s;
  s.hidden = 768, s.inter = 2048, s.layers = 12, s.heads = 12, s.kv_heads = 12, s.vocab = 32000;
  auto model = load_model(write_sparse_model(root + "/model", s));
  CpuBackendOptions bo;
  bo.threads = 1;
  CpuBackend* cpu = make_cpu_backend(bo);
  std::vector<std::string> dirs;
  for (int i = 0; i < 3; ++i) {
    TinyAdapterSpec a = spec_r(16, 70 + unsigned(i));
    dirs.push_back(write_tiny_adapter(root + "/a" + std::to_string(i), s, a));
  }
  auto ref = load_adapter(dirs[0], *model);
  for (size_t host : {size_t(1) << 30, size_t(0)}) {
    AdapterPool probe(*model, *as_backend(cpu), {size_t(1) << 30, 0});
    const size_t pages = probe.pages_needed(probe.add("p", dirs[0]));
    AdapterPool pool(*model, *as_backend(cpu), {2 * pages * probe.page_floats() * sizeof(float), host});
    std::vector<AdapterId> ids;
    for (size_t i = 0; i < dirs.size(); ++i) ids.push_back(pool.add("a" + std::to_string(i), dirs[i]));
    const int rounds = 5;
    // The engine thread never waits on a load: while one runs, acquire() answers at once.
    uint64_t calls_while_loading = 0;
    double max_call_ms = 0;
    for (int r = 0; r < rounds; ++r)
      for (AdapterId id : ids) {
        CHECK(pool.acquire(id) == nullptr);
        const auto end = Clock::now() + std::chrono::seconds(60);
        const AdapterView* v = nullptr;
        while (!v && Clock::now() < end) {
          const auto t0 = Clock::now();
          v = pool.acquire(id);
          const bool pending = pool.loads_pending();
          max_call_ms = std::max(max_call_ms, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (!v && pending) ++calls_while_loading;
          if (!v) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        CHECK(v != nullptr);
        if (v && id == ids[0] && r == 0) CHECK(same_view(*v, ref->view(), model->config()));
        if (v) pool.release(id);
      }
    RuntimeStats st = stats_of(pool);
    const LoadTimes& t = host ? st.load_from_host : st.load_from_disk;
    CHECK(t.count == uint64_t(rounds) * dirs.size());
    std::fprintf(stderr,
                 "load times (hidden 768, inter 2048, 12 layers, rank 16 all projections: %.1f MB f32, %zu pages of %llu B): "
                 "from %s p50 %.2f ms, p99 %.2f ms, max %.2f ms (%llu loads)\n",
                 ref->bytes() / 1e6, pages, (unsigned long long)st.pool_page_bytes, host ? "host" : "disk", t.p50_ms,
                 t.p99_ms, t.max_ms, (unsigned long long)t.count);
    std::fprintf(stderr, "  engine thread meanwhile: %llu acquire+loads_pending calls answered during loads, slowest %.3f ms\n",
                 (unsigned long long)calls_while_loading, max_call_ms);
    // An acquire that waited for the load would answer about once per load.
    if (!host) CHECK(calls_while_loading > 3 * t.count);
  }
  destroy_cpu_backend(cpu);
  std::string cmd = "rm -rf '" + root + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", root.c_str());
}

}  // namespace

int main() {
  test_views();
  test_lru_and_pins();
  test_tiers();
  test_accounting_failures_errors();
  test_stress();
  test_destroy_busy();
  bench_load_times();
  return finish("test_adapter_pool");
}
