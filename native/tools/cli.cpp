// longtail-engine: command-line front end of the engine.
//   logits   run a forward pass and print the last position's logits as JSON
//   inspect  validate a model (and adapter) and print a JSON summary
//   generate run the runtime (paged KV, continuous batching, sampling) and print the tokens
//   bench    decode/prefill benchmark with rooflines (see bench/README.md)
//   serve-bench  the runtime under an open-loop many-adapter workload (see bench/README.md)
// Errors: one line "error: <message>" on stderr, exit 1. Usage errors: exit 2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "longtail/engine.h"
#include "longtail/runtime.h"

using json = nlohmann::json;
using namespace longtail;

int bench_main(const std::map<std::string, std::string>& opts, const std::string& command_line);
int serve_bench_main(const std::map<std::string, std::string>& opts, const std::string& command_line);

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kHelp =
    "usage: longtail-engine <command> [options]\n"
    "\n"
    "commands:\n"
    "  logits   --model DIR [--adapter DIR] --tokens 1,2,3     print {\"logits\":[...]} of the last position\n"
    "  logits   --model DIR --batch FILE.json                   run many sequences batched; FILE is\n"
    "           [{\"tokens\":[...],\"adapter\":\"DIR\"|null,\"chunk\":N}, ...]; prints {\"results\":[{\"logits\":[...]}, ...]}\n"
    "  inspect  --model DIR [--adapter DIR]                      validate and print a JSON summary\n"
    "  generate --model DIR [--adapter DIR] --tokens 1,2,3 [--max-tokens 16]\n"
    "           [--temperature T] [--top-k K] [--top-p P] [--min-p M] [--seed S] [--stop 2,3]\n"
    "           [--repetition-penalty R] [--frequency-penalty F] [--presence-penalty P] [--logprobs N]\n"
    "           prints {\"tokens\":[...],\"finish_reason\":...} (greedy without --temperature)\n"
    "  serve-bench --model DIR --adapters DIR1,DIR2,... [--names 1000] [--requests 2000] [--prompt 128]\n"
    "           [--output 64] [--pool 64] [--rate RPS] [--zipf 1] [--out FILE]   open-loop workload\n"
    "  bench    --model DIR --adapters DIR1,DIR2,... [--batches 1,8,32] [--context 128]\n"
    "           [--prefill-chunk 512] [--iters 5] [--skip-gemm-shapes 1] [--skip-invariance 1]\n"
    "           [--invariant-gemm chain|dot] [--out FILE]      decode/prefill benchmark with rooflines,\n"
    "           and the cost of batch invariance (on vs off, interleaved)\n"
    "\n"
    "options:\n"
    "  --threads N   worker threads (default: all cores)\n"
    "  --batch-invariant on|off   bitwise batch-invariant CPU forward (default on): a sequence's logits\n"
    "                the same whatever else is in the step; off: faster kernels chosen by batch size\n"
    "  --help        this text\n";

std::map<std::string, std::string> parse_opts(int argc, char** argv, int first) {
  std::map<std::string, std::string> o;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      o["help"] = "1";
      continue;
    }
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "'");
    std::string key = a.substr(2), val;
    auto eq = key.find('=');
    if (eq != std::string::npos) {
      val = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else {
      if (i + 1 >= argc) throw UsageError("option --" + key + " needs a value");
      val = argv[++i];
    }
    o[key] = val;
  }
  return o;
}

// --batch-invariant on|off (checked in main); default: EngineOptions' default.
bool batch_invariant_opt(const std::map<std::string, std::string>& o) {
  return o.count("batch-invariant") ? o.at("batch-invariant") == "on" : EngineOptions{}.batch_invariant;
}

int parse_int(const std::string& s, const std::string& what) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < INT32_MIN || v > INT32_MAX) throw UsageError(what + ": '" + s + "' is not an integer");
  return int(v);
}

std::vector<int32_t> parse_tokens(const std::string& s) {
  std::vector<int32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    out.push_back(parse_int(item, "--tokens"));
  }
  if (out.empty()) throw UsageError("--tokens is empty");
  return out;
}

void print_logits(std::string& out, const float* v, int n) {
  out += "{\"logits\":[";
  char buf[32];
  for (int i = 0; i < n; ++i) {
    if (i) out += ',';
    if (std::isfinite(v[i])) {
      std::snprintf(buf, sizeof buf, "%.9g", double(v[i]));
      out += buf;
    } else {
      out += "null";
    }
  }
  out += "]}";
}

struct Job {
  std::vector<int32_t> tokens;
  const Adapter* adapter = nullptr;
  int chunk = 0;
};

int cmd_logits(const std::map<std::string, std::string>& o) {
  if (!o.count("model")) throw UsageError("logits needs --model DIR");
  if (o.count("tokens") == o.count("batch")) throw UsageError("logits needs exactly one of --tokens or --batch");
  const int threads = o.count("threads") ? parse_int(o.at("threads"), "--threads") : 0;
  std::vector<int32_t> cli_tokens;
  json batch_json;
  if (o.count("tokens")) {
    cli_tokens = parse_tokens(o.at("tokens"));
  } else {
    std::ifstream f(o.at("batch"));
    if (!f) throw Error(o.at("batch") + ": cannot read batch file");
    batch_json = json::parse(f, nullptr, false);
    if (batch_json.is_discarded() || !batch_json.is_array() || batch_json.empty()) {
      throw Error(o.at("batch") + ": invalid JSON: want a non-empty array of {tokens, adapter, chunk}");
    }
  }
  auto model = load_model(o.at("model"));
  std::map<std::string, std::unique_ptr<Adapter>> adapters;
  auto adapter = [&](const std::string& dir) -> const Adapter* {
    auto it = adapters.find(dir);
    if (it == adapters.end()) it = adapters.emplace(dir, load_adapter(dir, *model)).first;
    return it->second.get();
  };
  std::vector<Job> jobs;
  if (!cli_tokens.empty()) {
    Job j;
    j.tokens = cli_tokens;
    if (o.count("adapter")) j.adapter = adapter(o.at("adapter"));
    jobs.push_back(j);
  } else {
    const std::string& bf = o.at("batch");
    for (const json& e : batch_json) {
      if (!e.is_object() || !e.contains("tokens") || !e["tokens"].is_array() || e["tokens"].empty()) {
        throw Error(bf + ": invalid JSON: every entry needs a non-empty \"tokens\" array");
      }
      Job j;
      for (const json& t : e["tokens"]) {
        if (!t.is_number_integer()) throw Error(bf + ": invalid JSON: tokens must be integers");
        j.tokens.push_back(t.get<int32_t>());
      }
      if (e.contains("adapter") && !e["adapter"].is_null()) {
        if (!e["adapter"].is_string()) throw Error(bf + ": invalid JSON: adapter must be a string or null");
        j.adapter = adapter(e["adapter"].get<std::string>());
      }
      if (e.contains("chunk") && !e["chunk"].is_null()) {
        if (!e["chunk"].is_number_integer() || e["chunk"].get<int64_t>() < 1) throw Error(bf + ": invalid JSON: chunk must be a positive integer");
        j.chunk = int(std::min<int64_t>(e["chunk"].get<int64_t>(), 1 << 30));
      }
      jobs.push_back(std::move(j));
    }
  }
  const int V = model->config().vocab;
  int per_step = 0;
  for (Job& j : jobs) {
    if (j.chunk <= 0 || j.chunk > int(j.tokens.size())) j.chunk = int(j.tokens.size());
    per_step += j.chunk;
  }
  EngineOptions eo;
  eo.threads = threads;
  eo.max_tokens_per_step = per_step;
  eo.max_seqs_per_step = int(jobs.size());
  eo.batch_invariant = batch_invariant_opt(o);
  Engine engine(*model, eo);
  std::vector<SeqId> ids;
  for (const Job& j : jobs) ids.push_back(engine.create_sequence(int(j.tokens.size())));
  std::vector<std::vector<float>> results(jobs.size());
  std::vector<int> consumed(jobs.size(), 0);
  std::vector<float> logits(size_t(jobs.size()) * V);
  std::vector<size_t> in_step;
  for (;;) {
    StepBatch b;
    in_step.clear();
    for (size_t i = 0; i < jobs.size(); ++i) {
      const int left = int(jobs[i].tokens.size()) - consumed[i];
      if (left <= 0) continue;
      SequenceStep ss;
      ss.seq = ids[i];
      ss.tokens = jobs[i].tokens.data() + consumed[i];
      ss.n_tokens = std::min(left, jobs[i].chunk);
      ss.pos = consumed[i];
      ss.adapter = jobs[i].adapter ? &jobs[i].adapter->view() : nullptr;
      b.seqs.push_back(ss);
      in_step.push_back(i);
    }
    if (b.seqs.empty()) break;
    engine.step(b, logits.data());
    for (size_t k = 0; k < in_step.size(); ++k) {
      const size_t i = in_step[k];
      consumed[i] += b.seqs[k].n_tokens;
      if (consumed[i] == int(jobs[i].tokens.size())) {
        results[i].assign(logits.begin() + k * V, logits.begin() + (k + 1) * V);
      }
    }
  }
  std::string out;
  out.reserve(size_t(jobs.size()) * V * 14 + 64);
  if (!cli_tokens.empty()) {
    print_logits(out, results[0].data(), V);
  } else {
    out += "{\"results\":[";
    for (size_t i = 0; i < results.size(); ++i) {
      if (i) out += ',';
      print_logits(out, results[i].data(), V);
    }
    out += "]}";
  }
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int cmd_inspect(const std::map<std::string, std::string>& o) {
  if (!o.count("model")) throw UsageError("inspect needs --model DIR");
  auto model = load_model(o.at("model"));
  json j;
  j["ok"] = true;
  j["model"] = json::parse(model->summary_json());
  j["adapter"] = nullptr;
  if (o.count("adapter")) {
    auto a = load_adapter(o.at("adapter"), *model);
    j["adapter"] = json::parse(a->summary_json());
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

float parse_float(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) throw UsageError(what + ": '" + s + "' is not a number");
  return float(v);
}

int cmd_generate(const std::map<std::string, std::string>& o) {
  if (!o.count("model")) throw UsageError("generate needs --model DIR");
  if (!o.count("tokens")) throw UsageError("generate needs --tokens 1,2,3");
  RuntimeOptions ro;
  ro.background = false;
  if (o.count("threads")) ro.threads = parse_int(o.at("threads"), "--threads");
  ro.batch_invariant = batch_invariant_opt(o);
  GenerateRequest req;
  req.prompt = parse_tokens(o.at("tokens"));
  SamplingParams& sp = req.sampling;
  if (o.count("max-tokens")) sp.max_tokens = parse_int(o.at("max-tokens"), "--max-tokens");
  if (o.count("temperature")) sp.temperature = parse_float(o.at("temperature"), "--temperature");
  if (o.count("top-k")) sp.top_k = parse_int(o.at("top-k"), "--top-k");
  if (o.count("top-p")) sp.top_p = parse_float(o.at("top-p"), "--top-p");
  if (o.count("min-p")) sp.min_p = parse_float(o.at("min-p"), "--min-p");
  if (o.count("repetition-penalty")) sp.repetition_penalty = parse_float(o.at("repetition-penalty"), "--repetition-penalty");
  if (o.count("frequency-penalty")) sp.frequency_penalty = parse_float(o.at("frequency-penalty"), "--frequency-penalty");
  if (o.count("presence-penalty")) sp.presence_penalty = parse_float(o.at("presence-penalty"), "--presence-penalty");
  if (o.count("seed")) {
    const std::string& v = o.at("seed");
    char* end = nullptr;
    sp.seed = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') throw UsageError("--seed: '" + v + "' is not an unsigned integer");
  }
  if (o.count("stop")) sp.stop_token_ids = parse_tokens(o.at("stop"));
  if (o.count("logprobs")) {
    sp.logprobs = true;
    sp.top_logprobs = parse_int(o.at("logprobs"), "--logprobs");
  }
  Runtime rt(o.at("model"), ro);
  if (o.count("adapter")) req.adapter = rt.register_adapter("cli", o.at("adapter"));
  nlohmann::ordered_json tokens = nlohmann::ordered_json::array(), logprobs = nlohmann::ordered_json::array();
  std::string finish, error;
  rt.submit(req, [&](const GenerationEvent& ev) {
    if (ev.token >= 0) {
      tokens.push_back(ev.token);
      if (sp.logprobs) {
        nlohmann::ordered_json top = nlohmann::ordered_json::array();
        for (const auto& t : ev.top) top.push_back({{"token", t.token}, {"logprob", t.logprob}});
        logprobs.push_back({{"token", ev.token}, {"logprob", ev.logprob}, {"top", top}});
      }
    }
    if (ev.finish != FinishReason::kNone) {
      finish = finish_reason_name(ev.finish);
      error = ev.error;
    }
  });
  rt.run_until_idle();
  if (finish == "error") throw Error(error);
  nlohmann::ordered_json j = {{"tokens", tokens}, {"finish_reason", finish}};
  if (sp.logprobs) j["logprobs"] = logprobs;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

std::string one_line(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  try {
    if (cmd.empty() || cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kHelp, cmd.empty() ? stderr : stdout);
      return cmd.empty() ? 2 : 0;
    }
    auto o = parse_opts(argc, argv, 2);
    if (o.count("help")) {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (o.count("batch-invariant") && o.at("batch-invariant") != "on" && o.at("batch-invariant") != "off") {
      throw UsageError("--batch-invariant: '" + o.at("batch-invariant") + "' is not on or off");
    }
    if (cmd == "logits") return cmd_logits(o);
    if (cmd == "inspect") return cmd_inspect(o);
    if (cmd == "generate") return cmd_generate(o);
    if (cmd == "bench") return bench_main(o, command_line);
    if (cmd == "serve-bench") return serve_bench_main(o, command_line);
    throw UsageError("unknown command '" + cmd + "' (logits, inspect, generate, bench, serve-bench)");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "usage error: %s\n%s", e.what(), kHelp);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
}
