// longtail-engine serve-bench: the runtime under an open-loop many-adapter workload.
//
// Requests arrive on their own clock (Poisson at --rate, or all at once with --rate 0), each
// naming one of --names adapters with Zipf(--zipf) popularity; the same arrivals and prompts run
// twice: every request on the base model, then every request on its adapter. Reported per pass:
// throughput (generated tokens/s), time to first token and inter-token latency p50/p99, adapter
// hit rate and load times; and the ratios the targets are about. Also: the load time of one
// rank-16 all-projection adapter from the host tier and from disk (page cache warm).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "longtail/runtime.h"

using json = nlohmann::json;
using namespace longtail;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int opt_int(const std::map<std::string, std::string>& o, const char* k, int def) {
  return o.count(k) ? std::stoi(o.at(k)) : def;
}
double opt_num(const std::map<std::string, std::string>& o, const char* k, double def) {
  return o.count(k) ? std::stod(o.at(k)) : def;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())))];
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

struct Workload {
  std::vector<double> arrival_s;
  std::vector<int> name;  // adapter name index
  std::vector<std::vector<int32_t>> prompt;
};

struct Trace {
  double arrival = 0, first = -1, last = 0;
  std::vector<double> gaps;
  int tokens = 0;
  FinishReason finish = FinishReason::kNone;
};

json load_times(const LoadTimes& t) {
  return {{"count", t.count}, {"p50_ms", t.p50_ms}, {"p99_ms", t.p99_ms}, {"max_ms", t.max_ms}};
}

// One pass: a fresh runtime, the names registered (adapters pass), the workload replayed.
json run_pass(const std::string& model, const std::vector<std::string>& dirs, int names, bool adapters,
              const Workload& w, int output, RuntimeOptions ro) {
  Runtime rt(model, ro);
  std::vector<AdapterId> ids;
  const auto t_reg = Clock::now();
  if (adapters) {
    for (int i = 0; i < names; ++i) ids.push_back(rt.register_adapter("a" + std::to_string(i), dirs[size_t(i) % dirs.size()]));
  }
  const double reg_s = std::chrono::duration<double>(Clock::now() - t_reg).count();
  const size_t n = w.arrival_s.size();
  std::vector<Trace> tr(n);
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  const auto t0 = Clock::now();
  auto since = [&](Clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); };
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(w.arrival_s[i])));
    GenerateRequest r;
    r.prompt = w.prompt[i];
    r.adapter = adapters ? ids[size_t(w.name[i])] : -1;
    r.sampling.max_tokens = output;
    tr[i].arrival = since(Clock::now());
    rt.submit(std::move(r), [&, i](const GenerationEvent& ev) {
      const double t = since(Clock::now());
      Trace& x = tr[i];
      if (ev.token >= 0) {
        if (x.first < 0) x.first = t;
        else x.gaps.push_back(t - x.last);
        x.last = t;
        ++x.tokens;
      }
      if (ev.finish != FinishReason::kNone) {
        x.finish = ev.finish;
        std::lock_guard<std::mutex> lk(mu);
        ++done;
        cv.notify_all();
      }
    });
  }
  {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return done == n; });
  }
  const double wall = since(Clock::now());
  std::vector<double> ttft, itl;
  uint64_t tokens = 0, failed = 0;
  for (const Trace& x : tr) {
    tokens += uint64_t(x.tokens);
    if (x.finish != FinishReason::kLength) ++failed;
    if (x.first >= 0) ttft.push_back((x.first - x.arrival) * 1e3);
    for (double g : x.gaps) itl.push_back(g * 1e3);
  }
  const RuntimeStats st = rt.stats();
  json j = {{"mode", adapters ? "adapters" : "base"},
            {"wall_s", wall},
            {"generated_tokens", tokens},
            {"failed_requests", failed},
            {"tokens_per_s", double(tokens) / wall},
            {"ttft_ms", {{"p50", pct(ttft, 50)}, {"p99", pct(ttft, 99)}}},
            {"itl_ms", {{"p50", pct(itl, 50)}, {"p99", pct(itl, 99)}}},
            {"steps", st.steps},
            {"preemptions", st.preemptions}};
  if (adapters) {
    const double lookups = double(st.adapter_hits + st.adapter_misses);
    j["registration_s"] = reg_s;
    j["adapter_hit_rate"] = lookups > 0 ? double(st.adapter_hits) / lookups : 0.0;
    j["adapter_hits"] = st.adapter_hits;
    j["adapter_misses"] = st.adapter_misses;
    j["adapter_evictions"] = st.adapter_evictions;
    j["adapter_bytes_loaded"] = st.adapter_bytes_loaded;
    j["load_from_host"] = load_times(st.load_from_host);
    j["load_from_disk"] = load_times(st.load_from_disk);
    j["pool_pages"] = st.pool_pages_total;
    j["pool_page_bytes"] = st.pool_page_bytes;
  }
  std::fprintf(stderr, "serve-bench %s: %.1f tokens/s, ttft p50 %.1f p99 %.1f ms, itl p50 %.1f p99 %.1f ms (%.1f s)\n",
               adapters ? "adapters" : "base", double(tokens) / wall, pct(ttft, 50), pct(ttft, 99), pct(itl, 50),
               pct(itl, 99), wall);
  return j;
}

// Load time of one adapter folder, from the host tier and from disk: `reps` names of the same
// folder, each served one 1-token request (each is a miss that loads it into the pool).
json adapter_load(const std::string& model, const std::string& dir, int reps, RuntimeOptions ro) {
  json out;
  for (bool host : {true, false}) {
    ro.adapter_host_bytes = host ? (size_t(4) << 30) : 1;  // 1 byte: nothing stays on the host tier
    ro.background = false;
    Runtime rt(model, ro);
    for (int i = 0; i < reps; ++i) {
      const AdapterId id = rt.register_adapter("l" + std::to_string(i), dir);
      GenerateRequest r;
      r.prompt = {1};
      r.adapter = id;
      r.sampling.max_tokens = 1;
      rt.submit(r, nullptr);
      rt.run_until_idle();
    }
    out[host ? "from_host" : "from_disk"] = load_times(host ? rt.stats().load_from_host : rt.stats().load_from_disk);
  }
  return out;
}

}  // namespace

int serve_bench_main(const std::map<std::string, std::string>& o, const std::string& command_line) {
  if (!o.count("model") || !o.count("adapters")) throw Error("serve-bench needs --model DIR and --adapters DIR1,DIR2,...");
  const std::string model = o.at("model");
  const std::vector<std::string> dirs = split_list(o.at("adapters"));
  const int names = opt_int(o, "names", 1000), requests = opt_int(o, "requests", 2000);
  const int prompt = opt_int(o, "prompt", 128), output = opt_int(o, "output", 64), pool = opt_int(o, "pool", 64);
  const double rate = opt_num(o, "rate", 0), alpha = opt_num(o, "zipf", 1.0);
  const unsigned seed = unsigned(opt_int(o, "seed", 1));
  RuntimeOptions ro;
  ro.threads = opt_int(o, "threads", 0);
  if (o.count("batch-invariant")) ro.batch_invariant = o.at("batch-invariant") == "on";
  ro.max_running = opt_int(o, "max-running", 64);
  ro.max_batch_tokens = opt_int(o, "max-batch-tokens", 256);
  ro.kv_cache_bytes = size_t(opt_num(o, "kv-mib", 2048)) << 20;

  // Pool: `pool` adapters of the folders' mean size, plus slack for page packing.
  auto base = load_model(model);
  double mean_bytes = 0;
  std::string rank16;
  json ranks = json::array();
  for (const auto& d : dirs) {
    auto a = load_adapter(d, *base);
    mean_bytes += double(a->bytes()) / double(dirs.size());
    const int r = json::parse(a->summary_json())["max_rank"].get<int>();
    ranks.push_back(r);
    if (r == 16 && rank16.empty()) rank16 = d;
  }
  const int vocab = base->config().vocab;
  base.reset();
  ro.adapter_pool_bytes = size_t(mean_bytes * pool * 1.1);

  // The workload: arrivals, Zipf names (rank order shuffled), random prompts.
  std::mt19937_64 rng(seed);
  std::vector<double> cdf(static_cast<size_t>(names));
  double acc = 0;
  for (int i = 0; i < names; ++i) cdf[size_t(i)] = (acc += 1.0 / std::pow(double(i + 1), alpha));
  std::vector<int> perm(static_cast<size_t>(names));
  for (int i = 0; i < names; ++i) perm[size_t(i)] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Workload w;
  double t = 0;
  for (int i = 0; i < requests; ++i) {
    if (rate > 0) t += -std::log(1.0 - u(rng)) / rate;
    w.arrival_s.push_back(t);
    const size_t k = size_t(std::lower_bound(cdf.begin(), cdf.end(), u(rng) * acc) - cdf.begin());
    w.name.push_back(perm[std::min(k, size_t(names - 1))]);
    std::vector<int32_t> p(static_cast<size_t>(prompt));
    for (auto& x : p) x = int32_t(rng() % uint64_t(vocab));
    w.prompt.push_back(std::move(p));
  }
  std::map<int, int> distinct;
  for (int nm : w.name) ++distinct[nm];

  json out;
  out["name"] = "engine-runtime";
  out["command"] = command_line;
  out["date"] = utc_now();
  out["machine"] = {{"cpu", cpu_model()}, {"threads", int(std::thread::hardware_concurrency())}};
  out["batch_invariant"] = ro.batch_invariant;
  out["workload"] = {{"requests", requests},       {"adapter_names", names},    {"distinct_adapters_requested", distinct.size()},
                     {"adapter_folders", dirs.size()}, {"folder_ranks", ranks}, {"zipf_alpha", alpha},
                     {"prompt_tokens", prompt},   {"output_tokens", output},   {"rate_per_s", rate},
                     {"pool_adapters", pool},     {"pool_bytes", ro.adapter_pool_bytes},
                     {"max_running", ro.max_running}, {"max_batch_tokens", ro.max_batch_tokens}};
  std::fprintf(stderr, "serve-bench: %d requests over %zu distinct adapters (of %d names, %zu folders)\n", requests,
               distinct.size(), names, dirs.size());
  json b = run_pass(model, dirs, names, false, w, output, ro);
  json a = run_pass(model, dirs, names, true, w, output, ro);
  out["base"] = b;
  out["adapters"] = a;
  const double thr = a["tokens_per_s"].get<double>() / b["tokens_per_s"].get<double>();
  const double itl = a["itl_ms"]["p99"].get<double>() / std::max(1e-9, b["itl_ms"]["p99"].get<double>());
  out["throughput_vs_base"] = thr;
  out["itl_p99_vs_base"] = itl;
  json targets = {{"throughput_at_least_0.7x_base", thr >= 0.7}, {"itl_p99_at_most_2x_base", itl <= 2.0}};
  if (!rank16.empty()) {
    json l = adapter_load(model, rank16, opt_int(o, "load-reps", 20), ro);
    out["rank16_adapter_load"] = l;
    targets["rank16_host_load_under_5ms"] = l["from_host"]["p50_ms"].get<double>() < 5.0;
    targets["rank16_disk_load_under_20ms"] = l["from_disk"]["p50_ms"].get<double>() < 20.0;
    std::fprintf(stderr, "serve-bench: rank-16 load p50 host %.2f ms, disk %.2f ms\n", l["from_host"]["p50_ms"].get<double>(),
                 l["from_disk"]["p50_ms"].get<double>());
  }
  out["targets_met"] = targets;
  const std::string text = out.dump(2);
  if (o.count("out")) {
    std::ofstream f(o.at("out"));
    if (!f) throw Error(o.at("out") + ": cannot write");
    f << text << "\n";
  }
  std::printf("%s\n", text.c_str());
  return 0;
}
