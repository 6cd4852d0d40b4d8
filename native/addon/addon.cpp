// Node-API binding of longtail::Runtime (node-addon-api, C++ exceptions on).
//
// JS surface (wrapped by libs/engine/src/index.ts, which is the API to use):
//   new Runtime(modelDir, options, onEvents)        loads synchronously; throws Error(native message)
//   openRuntime(modelDir, options, onEvents)        → Promise<Runtime>, loads on the libuv pool
//   rt.registerAdapter(name, dir) → number           rt.unregisterAdapter(id)
//   rt.registerAdapterAsync(name, dir) → Promise<number>  (validates on the libuv pool)
//   rt.submit({prompt, adapter, sampling}) → number  request id (ids fit in 53 bits)
//   rt.cancel(id)   rt.stats() → object (camelCase RuntimeStats)   rt.close() → Promise<number>
//   onEvents(events: Event[]) is called on the JS thread with batches of events of all requests.
//
// Threading. Event sinks run on the engine's stepping thread (or on the thread that destroys the
// Runtime). A sink only appends the event to a mutex-guarded queue and, when no drain is already
// scheduled, schedules one with ThreadSafeFunction::NonBlockingCall: the engine thread never
// waits for JS. The drain (JS thread) hands the whole queue to onEvents as one array.
// The TSFN is ref'd only while requests are in flight (submitted, final event not yet delivered),
// so an idle Runtime never keeps the process alive. close() destroys the Runtime (joins its
// threads; sinks get kCancelled) on a libuv pool thread, then delivers what is left, releases the
// TSFN and resolves with the number of requests that never got a final event from the runtime
// (a runtime bug: each of those is given a synthetic final event with finish "error").
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "longtail/engine.h"
#include "longtail/runtime.h"

namespace {

using longtail::FinishReason;
using longtail::GenerationEvent;

const char* finish_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "error";
}

struct QueuedEvent {
  GenerationEvent event;
  bool logprobs;
};

struct Shared;
void drain_to_js(Napi::Env env, Napi::Function callback, Shared* shared);

// Called by the TSFN on the JS thread (env is null when Node drops a pending call at teardown).
void call_js(Napi::Env env, Napi::Function cb, Shared* s, void*) {
  if (env == nullptr || s == nullptr) return;
  drain_to_js(env, cb, s);
}
using EventTsfn = Napi::TypedThreadSafeFunction<Shared, void, call_js>;

// State shared by the wrapper object, the sinks (engine thread) and the TSFN (JS thread).
struct Shared {
  // Any thread.
  std::mutex mu;
  std::vector<QueuedEvent> queue;
  bool scheduled = false;  // a NonBlockingCall is pending
  EventTsfn tsfn;
  // JS thread only.
  napi_env env = nullptr;
  std::unordered_set<uint64_t> in_flight;  // submitted, final event not delivered yet
  bool refed = false;
  bool released = false;

  void update_ref() {
    if (released) return;
    const bool want = !in_flight.empty();
    if (want && !refed) tsfn.Ref(env);
    if (!want && refed) tsfn.Unref(env);
    refed = want;
  }
};

// One sink per request; runs on the stepping thread; never blocks on JS.
void push_event(const std::shared_ptr<Shared>& s, const GenerationEvent& ev, bool logprobs) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->queue.push_back(QueuedEvent{ev, logprobs});
    if (!s->scheduled) notify = s->scheduled = true;
  }
  if (notify && s->tsfn.NonBlockingCall() != napi_ok) {
    // Closing (environment teardown): nothing can be delivered any more.
    std::lock_guard<std::mutex> lock(s->mu);
    s->scheduled = false;
  }
}

Napi::Object event_to_js(Napi::Env env, const QueuedEvent& q) {
  const GenerationEvent& ev = q.event;
  Napi::Object o = Napi::Object::New(env);
  o.Set("request", Napi::Number::New(env, static_cast<double>(ev.request)));
  o.Set("token", Napi::Number::New(env, ev.token));
  if (q.logprobs && ev.token >= 0) {
    o.Set("logprob", Napi::Number::New(env, ev.logprob));
    Napi::Array top = Napi::Array::New(env, ev.top.size());
    for (size_t i = 0; i < ev.top.size(); ++i) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("token", Napi::Number::New(env, ev.top[i].token));
      t.Set("logprob", Napi::Number::New(env, ev.top[i].logprob));
      top.Set(static_cast<uint32_t>(i), t);
    }
    o.Set("top", top);
  }
  o.Set("finish", Napi::String::New(env, finish_name(ev.finish)));
  if (ev.finish == FinishReason::kError) o.Set("error", Napi::String::New(env, ev.error));
  o.Set("promptTokens", Napi::Number::New(env, ev.prompt_tokens));
  o.Set("completionTokens", Napi::Number::New(env, ev.completion_tokens));
  return o;
}

void drain_to_js(Napi::Env env, Napi::Function callback, Shared* s) {
  std::vector<QueuedEvent> batch;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    batch.swap(s->queue);
    s->scheduled = false;
  }
  if (batch.empty()) return;
  Napi::HandleScope scope(env);
  Napi::Array arr = Napi::Array::New(env, batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    arr.Set(static_cast<uint32_t>(i), event_to_js(env, batch[i]));
    if (batch[i].event.finish != FinishReason::kNone) s->in_flight.erase(batch[i].event.request);
  }
  s->update_ref();
  try {
    callback.Call({arr});
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();  // reported by Node as an uncaught exception
  }
}

// ---- argument parsing -------------------------------------------------------------------------

[[noreturn]] void type_error(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

double number_of(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) type_error(env, std::string(what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) type_error(env, std::string(what) + " must be finite");
  return d;
}

int64_t integer_of(Napi::Env env, const Napi::Value& v, const char* what, int64_t lo, int64_t hi) {
  double d;
  if (v.IsBigInt()) {
    bool lossless = false;
    const int64_t i = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) type_error(env, std::string(what) + " is out of range");
    d = static_cast<double>(i);
    if (i < lo || i > hi) type_error(env, std::string(what) + " is out of range");
    return i;
  }
  d = number_of(env, v, what);
  if (std::floor(d) != d) type_error(env, std::string(what) + " must be an integer");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    type_error(env, std::string(what) + " is out of range");
  return static_cast<int64_t>(d);
}

std::string string_of(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsString()) type_error(env, std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool has(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return false;
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kI32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kSafeMax = (int64_t{1} << 53) - 1;

std::vector<int32_t> int32_list(Napi::Env env, const Napi::Value& v, const char* what) {
  std::vector<int32_t> out;
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_int32_array)
      type_error(env, std::string(what) + " must be an Int32Array or an array of integers");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return out;
  }
  if (!v.IsArray()) type_error(env, std::string(what) + " must be an Int32Array or an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i)
    out.push_back(static_cast<int32_t>(integer_of(env, a.Get(i), what, kI32Min, kI32Max)));
  return out;
}

longtail::RuntimeOptions parse_options(Napi::Env env, const Napi::Value& v) {
  longtail::RuntimeOptions o;
  o.background = true;
  if (v.IsUndefined() || v.IsNull()) return o;
  if (!v.IsObject()) type_error(env, "options must be an object");
  Napi::Object obj = v.As<Napi::Object>();
  if (has(obj, "threads")) o.threads = static_cast<int>(integer_of(env, obj.Get("threads"), "threads", 0, 4096));
  if (has(obj, "kvCacheBytes"))
    o.kv_cache_bytes = static_cast<size_t>(integer_of(env, obj.Get("kvCacheBytes"), "kvCacheBytes", 0, kSafeMax));
  if (has(obj, "kvBlockTokens"))
    o.kv_block_tokens = static_cast<int>(integer_of(env, obj.Get("kvBlockTokens"), "kvBlockTokens", 1, kI32Max));
  if (has(obj, "maxBatchTokens"))
    o.max_batch_tokens = static_cast<int>(integer_of(env, obj.Get("maxBatchTokens"), "maxBatchTokens", 1, kI32Max));
  if (has(obj, "maxRunning"))
    o.max_running = static_cast<int>(integer_of(env, obj.Get("maxRunning"), "maxRunning", 1, kI32Max));
  if (has(obj, "adapterPoolBytes"))
    o.adapter_pool_bytes =
        static_cast<size_t>(integer_of(env, obj.Get("adapterPoolBytes"), "adapterPoolBytes", 0, kSafeMax));
  if (has(obj, "adapterHostBytes"))
    o.adapter_host_bytes =
        static_cast<size_t>(integer_of(env, obj.Get("adapterHostBytes"), "adapterHostBytes", 0, kSafeMax));
  if (has(obj, "backend")) o.backend = string_of(env, obj.Get("backend"), "backend");  // checked by the engine
  if (has(obj, "batchInvariant")) {
    Napi::Value b = obj.Get("batchInvariant");
    if (!b.IsBoolean()) type_error(env, "batchInvariant must be a boolean");
    o.batch_invariant = b.As<Napi::Boolean>().Value();
  }
  return o;
}

longtail::SamplingParams parse_sampling(Napi::Env env, const Napi::Value& v) {
  longtail::SamplingParams p;
  if (v.IsUndefined() || v.IsNull()) return p;
  if (!v.IsObject()) type_error(env, "sampling must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auto f = [&](const char* key, float& dst) {
    if (has(o, key)) dst = static_cast<float>(number_of(env, o.Get(key), key));
  };
  auto i = [&](const char* key, int& dst) {
    if (has(o, key)) dst = static_cast<int>(integer_of(env, o.Get(key), key, kI32Min, kI32Max));
  };
  f("temperature", p.temperature);
  i("topK", p.top_k);
  f("topP", p.top_p);
  f("minP", p.min_p);
  f("repetitionPenalty", p.repetition_penalty);
  f("frequencyPenalty", p.frequency_penalty);
  f("presencePenalty", p.presence_penalty);
  if (has(o, "seed")) {
    Napi::Value s = o.Get("seed");
    if (s.IsBigInt()) {
      bool lossless = false;
      p.seed = s.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) type_error(env, "seed is out of range");
    } else {
      p.seed = static_cast<uint64_t>(integer_of(env, s, "seed", 0, kSafeMax));
    }
  }
  i("maxTokens", p.max_tokens);
  if (has(o, "stopTokenIds")) p.stop_token_ids = int32_list(env, o.Get("stopTokenIds"), "stopTokenIds");
  if (has(o, "logprobs")) {
    Napi::Value b = o.Get("logprobs");
    if (!b.IsBoolean()) type_error(env, "logprobs must be a boolean");
    p.logprobs = b.As<Napi::Boolean>().Value();
  }
  i("topLogprobs", p.top_logprobs);
  return p;
}

uint64_t id_of(Napi::Env env, const Napi::Value& v, const char* what) {
  return static_cast<uint64_t>(integer_of(env, v, what, 0, std::numeric_limits<int64_t>::max()));
}

// Runs f, turning engine errors into JS Errors whose message is the native message, unchanged.
template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const longtail::Error& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", Napi::String::New(env, "LONGTAIL_ENGINE"));
    throw err;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// ---- Runtime wrapper ----------------------------------------------------------------------------

class RuntimeWrap : public Napi::ObjectWrap<RuntimeWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Runtime",
                       {InstanceMethod<&RuntimeWrap::RegisterAdapter>("registerAdapter"),
                        InstanceMethod<&RuntimeWrap::RegisterAdapterAsync>("registerAdapterAsync"),
                        InstanceMethod<&RuntimeWrap::UnregisterAdapter>("unregisterAdapter"),
                        InstanceMethod<&RuntimeWrap::Submit>("submit"),
                        InstanceMethod<&RuntimeWrap::Cancel>("cancel"),
                        InstanceMethod<&RuntimeWrap::Stats>("stats"),
                        InstanceMethod<&RuntimeWrap::Close>("close"),
                        InstanceAccessor<&RuntimeWrap::Closed>("closed")});
  }

  // (modelDir: string, options?: object, onEvents: function) or, from openRuntime,
  // (External<unique_ptr<Runtime>>, undefined, onEvents).
  explicit RuntimeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RuntimeWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[2].IsFunction()) type_error(env, "Runtime(modelDir, options, onEvents)");
    if (info[0].IsExternal()) {
      auto* slot = info[0].As<Napi::External<std::unique_ptr<longtail::Runtime>>>().Data();
      rt_ = std::move(*slot);
    } else {
      const std::string dir = string_of(env, info[0], "modelDir");
      const longtail::RuntimeOptions opts = parse_options(env, info[1]);
      rt_ = guarded(env, [&] { return std::make_unique<longtail::Runtime>(dir, opts); });
    }
    if (!rt_) type_error(env, "Runtime: no runtime");
    Napi::Function cb = info[2].As<Napi::Function>();
    on_events_ = Napi::Persistent(cb);
    shared_ = std::make_shared<Shared>();
    shared_->env = env;
    // The TSFN's context pointer stays valid until its finalizer, which drops this extra owner.
    auto* owner = new std::shared_ptr<Shared>(shared_);
    shared_->tsfn = EventTsfn::New(env, cb, "longtail-engine-events", 0, 1, shared_.get(),
                                   [owner](Napi::Env, void*, Shared*) { delete owner; });
    shared_->tsfn.Unref(env);
    has_cleanup_ = napi_add_env_cleanup_hook(env, &RuntimeWrap::OnEnvCleanup, this) == napi_ok;
  }

  ~RuntimeWrap() override { Teardown(); }

 private:
  friend class CloseWorker;
  friend class RegisterWorker;

  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<RuntimeWrap*>(arg);
    self->has_cleanup_ = false;  // a hook that ran is gone
    self->Teardown();
  }

  void RemoveCleanupHook(napi_env env) {
    if (!has_cleanup_) return;
    has_cleanup_ = false;
    napi_remove_env_cleanup_hook(env, &RuntimeWrap::OnEnvCleanup, this);
  }

  // Environment teardown or GC without close(): destroy the runtime here (joins its threads).
  void Teardown() {
    RemoveCleanupHook(Env());
    if (pending_ops_ > 0) {
      (void)rt_.release();  // a pool thread still uses it: leak rather than free under it (teardown only)
    }
    rt_.reset();
    if (shared_ && !shared_->released) {
      shared_->released = true;
      shared_->tsfn.Release();
    }
  }

  longtail::Runtime& runtime(Napi::Env env) {
    if (!rt_ || closing_) throw Napi::Error::New(env, "engine is closed");
    return *rt_;
  }

  // Work on a libuv pool thread that uses the runtime (registerAdapterAsync): close() waits for it.
  void OpStarted() { ++pending_ops_; }
  void OpDone(Napi::Env env) {
    if (--pending_ops_ == 0 && closing_ && rt_) StartClose(env);
  }
  void StartClose(Napi::Env env);

  Napi::Value RegisterAdapter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string name = string_of(env, info[0], "name");
    const std::string dir = string_of(env, info[1], "dir");
    longtail::Runtime& rt = runtime(env);
    const longtail::AdapterId id = guarded(env, [&] { return rt.register_adapter(name, dir); });
    return Napi::Number::New(env, id);
  }

  Napi::Value RegisterAdapterAsync(const Napi::CallbackInfo& info);

  Napi::Value UnregisterAdapter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto id = static_cast<longtail::AdapterId>(integer_of(env, info[0], "adapter id", kI32Min, kI32Max));
    longtail::Runtime& rt = runtime(env);
    guarded(env, [&] { rt.unregister_adapter(id); });
    return env.Undefined();
  }

  // submit({prompt, adapter?, sampling?}) → request id (number)
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "submit(request): request must be an object");
    Napi::Object req = info[0].As<Napi::Object>();
    longtail::GenerateRequest r;
    if (!has(req, "prompt")) type_error(env, "prompt is required");
    r.prompt = int32_list(env, req.Get("prompt"), "prompt");
    r.adapter = has(req, "adapter")
                    ? static_cast<longtail::AdapterId>(integer_of(env, req.Get("adapter"), "adapter", -1, kI32Max))
                    : -1;
    r.sampling = parse_sampling(env, req.Get("sampling"));
    const bool logprobs = r.sampling.logprobs || r.sampling.top_logprobs > 0;
    longtail::Runtime& rt = runtime(env);
    std::shared_ptr<Shared> s = shared_;
    const longtail::RequestId id = guarded(env, [&] {
      return rt.submit(std::move(r), [s, logprobs](const GenerationEvent& ev) { push_event(s, ev, logprobs); });
    });
    if (id > static_cast<uint64_t>(kSafeMax)) throw Napi::Error::New(env, "request id does not fit in 53 bits");
    shared_->in_flight.insert(id);
    shared_->update_ref();
    return Napi::Number::New(env, static_cast<double>(id));
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint64_t id = id_of(env, info[0], "request id");
    if (rt_) guarded(env, [&] { rt_->cancel(id); });  // after close: nothing left to cancel
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    longtail::Runtime& rt = runtime(env);
    const longtail::RuntimeStats st = guarded(env, [&] { return rt.stats(); });
    Napi::Object o = Napi::Object::New(env);
    auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    n("waiting", st.waiting);
    n("running", st.running);
    n("steps", static_cast<double>(st.steps));
    n("promptTokens", static_cast<double>(st.prompt_tokens));
    n("generatedTokens", static_cast<double>(st.generated_tokens));
    n("preemptions", static_cast<double>(st.preemptions));
    n("finished", static_cast<double>(st.finished));
    n("kvBlocksTotal", st.kv_blocks_total);
    n("kvBlocksFree", st.kv_blocks_free);
    n("kvBlockTokens", st.kv_block_tokens);
    o.Set("batchInvariant", Napi::Boolean::New(env, st.batch_invariant));
    n("adaptersRegistered", st.adapters_registered);
    n("adaptersResident", st.adapters_resident);
    n("adaptersInUse", st.adapters_in_use);
    n("poolPagesTotal", static_cast<double>(st.pool_pages_total));
    n("poolPagesFree", static_cast<double>(st.pool_pages_free));
    n("poolPageBytes", static_cast<double>(st.pool_page_bytes));
    n("hostBytesUsed", static_cast<double>(st.host_bytes_used));
    n("hostBytesBudget", static_cast<double>(st.host_bytes_budget));
    n("adapterHits", static_cast<double>(st.adapter_hits));
    n("adapterMisses", static_cast<double>(st.adapter_misses));
    n("adapterEvictions", static_cast<double>(st.adapter_evictions));
    n("adapterBytesLoaded", static_cast<double>(st.adapter_bytes_loaded));
    auto times = [&](const longtail::LoadTimes& t) {
      Napi::Object x = Napi::Object::New(env);
      x.Set("count", Napi::Number::New(env, static_cast<double>(t.count)));
      x.Set("p50Ms", Napi::Number::New(env, t.p50_ms));
      x.Set("p99Ms", Napi::Number::New(env, t.p99_ms));
      x.Set("maxMs", Napi::Number::New(env, t.max_ms));
      return x;
    };
    o.Set("loadFromDisk", times(st.load_from_disk));
    o.Set("loadFromHost", times(st.load_from_host));
    return o;
  }

  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !rt_ || closing_); }

  Napi::Value Close(const Napi::CallbackInfo& info);

  std::unique_ptr<longtail::Runtime> rt_;
  std::shared_ptr<Shared> shared_;
  Napi::FunctionReference on_events_;
  bool has_cleanup_ = false;
  bool closing_ = false;
  int pending_ops_ = 0;
  std::vector<Napi::Promise::Deferred> close_waiters_;
};

// Destroys the Runtime off the JS thread, then finishes delivery and releases the TSFN.
class CloseWorker : public Napi::AsyncWorker {
 public:
  CloseWorker(Napi::Env env, RuntimeWrap* wrap, std::unique_ptr<longtail::Runtime> rt)
      : Napi::AsyncWorker(env, "longtail-engine-close"), wrap_(wrap), rt_(std::move(rt)) {
    wrap_ref_ = Napi::Persistent(wrap->Value());
  }

  void Execute() override { rt_.reset(); }

  void OnOK() override {
    Napi::Env env = Env();
    Shared* s = wrap_->shared_.get();
    // Deliver every event the runtime produced, in order, before anything synthetic.
    drain_to_js(env, wrap_->on_events_.Value(), s);
    uint32_t orphans = 0;
    if (!s->in_flight.empty()) {
      std::vector<QueuedEvent> synth;
      for (uint64_t id : s->in_flight) {
        GenerationEvent ev;
        ev.request = id;
        ev.finish = FinishReason::kError;
        ev.error = "engine closed: the runtime sent no final event for this request";
        synth.push_back(QueuedEvent{ev, false});
        ++orphans;
      }
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->queue.insert(s->queue.begin(), synth.begin(), synth.end());
      }
      drain_to_js(env, wrap_->on_events_.Value(), s);
    }
    if (!s->released) {
      s->update_ref();
      s->released = true;
      s->tsfn.Release();
    }
    wrap_->closing_ = false;
    for (auto& d : wrap_->close_waiters_) d.Resolve(Napi::Number::New(env, orphans));
    wrap_->close_waiters_.clear();
    wrap_ref_.Reset();
  }

  void OnError(const Napi::Error& e) override {  // Execute never sets an error; kept for completeness
    for (auto& d : wrap_->close_waiters_) d.Reject(e.Value());
    wrap_->close_waiters_.clear();
    wrap_ref_.Reset();
  }

 private:
  RuntimeWrap* wrap_;
  Napi::ObjectReference wrap_ref_;  // keeps the wrapper alive until OnOK
  std::unique_ptr<longtail::Runtime> rt_;
};

Napi::Value RuntimeWrap::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  Napi::Promise p = d.Promise();
  if (!rt_ && !closing_) {
    d.Resolve(Napi::Number::New(env, 0));
    return p;
  }
  close_waiters_.push_back(d);
  if (closing_) return p;
  closing_ = true;
  RemoveCleanupHook(env);
  if (pending_ops_ == 0) StartClose(env);  // else the last op to finish starts it
  return p;
}

void RuntimeWrap::StartClose(Napi::Env env) { (new CloseWorker(env, this, std::move(rt_)))->Queue(); }

// registerAdapterAsync(name, dir) → Promise<id>: validates the adapter on a libuv pool thread
// (Runtime::register_adapter is thread-safe); close() waits for it.
class RegisterWorker : public Napi::AsyncWorker {
 public:
  RegisterWorker(Napi::Env env, RuntimeWrap* wrap, longtail::Runtime* rt, std::string name, std::string dir)
      : Napi::AsyncWorker(env, "longtail-engine-register-adapter"),
        deferred_(Napi::Promise::Deferred::New(env)),
        wrap_(wrap),
        rt_(rt),
        name_(std::move(name)),
        dir_(std::move(dir)) {
    wrap_ref_ = Napi::Persistent(wrap->Value());
    wrap_->OpStarted();
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      id_ = rt_->register_adapter(name_, dir_);
    } catch (const std::exception& e) {
      engine_error_ = dynamic_cast<const longtail::Error*>(&e) != nullptr;
      SetError(e.what());
    }
  }

  void OnOK() override {
    deferred_.Resolve(Napi::Number::New(Env(), id_));
    Done();
  }

  void OnError(const Napi::Error& e) override {
    Napi::Error err = Napi::Error::New(Env(), e.Message());
    if (engine_error_) err.Set("code", Napi::String::New(Env(), "LONGTAIL_ENGINE"));
    deferred_.Reject(err.Value());
    Done();
  }

 private:
  void Done() {
    wrap_->OpDone(Env());
    wrap_ref_.Reset();
  }

  Napi::Promise::Deferred deferred_;
  RuntimeWrap* wrap_;
  Napi::ObjectReference wrap_ref_;
  longtail::Runtime* rt_;
  std::string name_, dir_;
  longtail::AdapterId id_ = -1;
  bool engine_error_ = false;
};

Napi::Value RuntimeWrap::RegisterAdapterAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = string_of(env, info[0], "name");
  const std::string dir = string_of(env, info[1], "dir");
  longtail::Runtime& rt = runtime(env);
  auto* w = new RegisterWorker(env, this, &rt, name, dir);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// openRuntime(modelDir, options, onEvents) → Promise<Runtime>: loads the model off the JS thread.
class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, std::string dir, longtail::RuntimeOptions opts, Napi::Function on_events)
      : Napi::AsyncWorker(env, "longtail-engine-open"),
        deferred_(Napi::Promise::Deferred::New(env)),
        dir_(std::move(dir)),
        opts_(opts) {
    on_events_ = Napi::Persistent(on_events);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      rt_ = std::make_unique<longtail::Runtime>(dir_, opts_);
    } catch (const std::exception& e) {
      message_ = e.what();
      engine_error_ = dynamic_cast<const longtail::Error*>(&e) != nullptr;
      SetError(message_);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      auto ext = Napi::External<std::unique_ptr<longtail::Runtime>>::New(env, &rt_);
      Napi::Object obj = env.GetInstanceData<Napi::FunctionReference>()->New({ext, env.Undefined(), on_events_.Value()});
      deferred_.Resolve(obj);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error&) override {
    Napi::Error err = Napi::Error::New(Env(), message_);
    if (engine_error_) err.Set("code", Napi::String::New(Env(), "LONGTAIL_ENGINE"));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  longtail::RuntimeOptions opts_;
  Napi::FunctionReference on_events_;
  std::unique_ptr<longtail::Runtime> rt_;
  std::string message_;
  bool engine_error_ = false;
};

Napi::Value OpenRuntime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string dir = string_of(env, info[0], "modelDir");
  const longtail::RuntimeOptions opts = parse_options(env, info[1]);
  if (!info[2].IsFunction()) type_error(env, "onEvents must be a function");
  auto* w = new OpenWorker(env, dir, opts, info[2].As<Napi::Function>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = RuntimeWrap::Init(env);
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(ctor)));
  exports.Set("Runtime", ctor);
  exports.Set("openRuntime", Napi::Function::New(env, OpenRuntime, "openRuntime"));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(longtail_engine, Init)
