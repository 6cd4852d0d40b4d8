/**
 * @longtail/engine-node: the longtail inference engine (longtail::Runtime) in Node.
 *
 *   const engine = await Engine.open(modelDir, { threads: 2 });
 *   const id = engine.registerAdapter('support-v3', adapterDir);
 *   const gen = engine.generate([1, 2, 3], { adapter: 'support-v3', sampling: { maxTokens: 32 } });
 *   for await (const t of gen) process.stdout.write(`${t.token} `);
 *   const { finishReason, completionTokens } = await gen.result;
 *   await engine.close();
 *
 * The engine steps on its own thread; events cross to the JS thread in batches and never block it.
 */
import { loadAddon, type NativeEvent, type NativeRuntime } from './native.js';

export { ADDON_PATH } from './native.js';

/** How the next token is chosen (defaults: greedy, 16 tokens). Validated by the engine. */
export interface SamplingOptions {
  /** <= 0: greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Same seed and inputs → same tokens, whatever else is batched. */
  seed?: number | bigint;
  maxTokens?: number;
  /** Not emitted; finishReason 'stop'. */
  stopTokenIds?: readonly number[];
  logprobs?: boolean;
  /** 0..20 alternatives per position (implies logprobs). */
  topLogprobs?: number;
}

export interface EngineOptions {
  /** Compute threads; 0 / absent: all cores. */
  threads?: number;
  /** Paged KV cache size; absent: 256 MiB. */
  kvCacheBytes?: number;
  /** Positions per KV block (16). */
  kvBlockTokens?: number;
  /** Token budget of one step: decode tokens + prefill chunks (256). */
  maxBatchTokens?: number;
  /** Sequences per step (64). */
  maxRunning?: number;
  /** Backend tier of the adapter pool; absent: room for 64 rank-16 all-projection adapters. */
  adapterPoolBytes?: number;
  /** Host tier of the adapter pool; absent: 1 GiB. */
  adapterHostBytes?: number;
  /**
   * 'auto' (default): CUDA when the library was built with it and a device is present, else CPU
   * (the LONGTAIL_BACKEND environment variable overrides 'auto'); 'cuda': CUDA or an Error; 'cpu'.
   */
  backend?: 'auto' | 'cuda' | 'cpu';
  /**
   * Bitwise batch-invariant forward (default true): a request's logits, and so its seeded samples,
   * do not depend on what else is batched with it. CPU backend only (the CUDA backend is not
   * batch-invariant; `stats().batchInvariant` says what the engine does). false: the faster
   * batch-size-dependent kernels (native/README.md, "Batch invariance").
   */
  batchInvariant?: boolean;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface GeneratedToken {
  token: number;
  /** When sampling.logprobs (or topLogprobs): log-softmax of the raw logits. */
  logprob?: number;
  /** When sampling.topLogprobs > 0: the alternatives, best first. */
  topLogprobs?: TokenLogprob[];
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

export interface GenerationResult {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Every generated token, in order (also when nobody iterated). */
  tokens: number[];
  /** The engine's message when finishReason is 'error'. */
  error?: string;
}

export interface GenerateOptions {
  /** A registered adapter: its name or id. Absent: the base model. */
  adapter?: string | number;
  sampling?: SamplingOptions;
  /** Aborting cancels the request: the iterator ends (no throw) and finishReason is 'cancelled'. */
  signal?: AbortSignal;
}

/**
 * One request. Iterate it (once) for the tokens as they come; `result` resolves when the request
 * has ended, whether or not anyone iterated. The iterator ends after the last token; it throws an
 * Error with the engine's message when the request ends with 'error' (`result` still resolves).
 * Leaving a `for await` early (break, throw, return) cancels the request.
 */
export interface Generation extends AsyncIterable<GeneratedToken> {
  /** The engine's request id. */
  readonly id: number;
  /** Resolves (never rejects) with how the request ended. */
  readonly result: Promise<GenerationResult>;
  /** Cancels the request (no-op when it has ended). */
  cancel(): void;
}

export interface LoadTimes {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** longtail::RuntimeStats, camelCase. Published by the engine after each step. */
export interface EngineStats {
  waiting: number;
  running: number;
  steps: number;
  promptTokens: number;
  generatedTokens: number;
  preemptions: number;
  finished: number;
  kvBlocksTotal: number;
  kvBlocksFree: number;
  kvBlockTokens: number;
  /** Whether this engine's logits are batch-invariant (EngineOptions.batchInvariant on the CPU backend). */
  batchInvariant: boolean;
  adaptersRegistered: number;
  adaptersResident: number;
  adaptersInUse: number;
  poolPagesTotal: number;
  poolPagesFree: number;
  poolPageBytes: number;
  hostBytesUsed: number;
  hostBytesBudget: number;
  adapterHits: number;
  adapterMisses: number;
  adapterEvictions: number;
  adapterBytesLoaded: number;
  loadFromDisk: LoadTimes;
  loadFromHost: LoadTimes;
}

const SAMPLING_KEYS: readonly (keyof SamplingOptions)[] = [
  'temperature',
  'topK',
  'topP',
  'minP',
  'repetitionPenalty',
  'frequencyPenalty',
  'presencePenalty',
  'seed',
  'maxTokens',
  'stopTokenIds',
  'logprobs',
  'topLogprobs',
];

class GenerationImpl implements Generation {
  readonly result: Promise<GenerationResult>;
  private readonly tokens: number[] = [];
  private readonly queue: GeneratedToken[] = [];
  private waiter: (() => void) | undefined;
  private final: GenerationResult | undefined;
  private iterated = false;
  private resolveResult!: (r: GenerationResult) => void;
  private detachSignal: (() => void) | undefined;

  readonly id: number;
  private readonly cancelFn: (id: number) => void;

  constructor(id: number, cancelFn: (id: number) => void) {
    this.id = id;
    this.cancelFn = cancelFn;
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
  }

  attachSignal(signal: AbortSignal | undefined): void {
    if (signal === undefined) return;
    if (signal.aborted) {
      this.cancel();
      return;
    }
    const onAbort = (): void => this.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    this.detachSignal = () => signal.removeEventListener('abort', onAbort);
  }

  cancel(): void {
    if (this.final === undefined) this.cancelFn(this.id);
  }

  /** Called by the engine on the JS thread for each native event of this request. */
  push(ev: NativeEvent): void {
    if (this.final !== undefined) return;
    if (ev.token >= 0) {
      this.tokens.push(ev.token);
      const t: GeneratedToken = { token: ev.token };
      if (ev.logprob !== undefined) t.logprob = ev.logprob;
      if (ev.top !== undefined && ev.top.length > 0) t.topLogprobs = ev.top.map((x) => ({ ...x }));
      this.queue.push(t);
    }
    if (ev.finish !== '') {
      const r: GenerationResult = {
        finishReason: ev.finish,
        promptTokens: ev.promptTokens,
        completionTokens: ev.completionTokens,
        tokens: this.tokens,
      };
      if (ev.finish === 'error') r.error = ev.error ?? 'engine error';
      this.final = r;
      this.detachSignal?.();
      this.resolveResult(r);
    }
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<GeneratedToken> {
    if (this.iterated) throw new Error(`generation ${this.id} can be iterated once`);
    this.iterated = true;
    const next = async (): Promise<IteratorResult<GeneratedToken>> => {
      for (;;) {
        const t = this.queue.shift();
        if (t !== undefined) return { value: t, done: false };
        if (this.final !== undefined) {
          if (this.final.finishReason === 'error') throw new Error(this.final.error);
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    };
    return {
      next,
      return: async (): Promise<IteratorResult<GeneratedToken>> => {
        this.cancel();
        this.queue.length = 0;
        return { value: undefined, done: true };
      },
    };
  }
}

export class Engine {
  private readonly generations = new Map<number, GenerationImpl>();
  private readonly adapters = new Map<string, number>();
  private closing: Promise<void> | undefined;
  private pending: NativeEvent[][] = [];
  private flushScheduled = false;
  private runtime!: NativeRuntime;

  private constructor() {}

  /** Loads the model folder (off the JS thread). Rejects with the engine's message. */
  static async open(modelDir: string, options: EngineOptions = {}): Promise<Engine> {
    const addon = loadAddon();
    const engine = new Engine();
    engine.runtime = await addon.openRuntime(modelDir, { ...options }, (events) => engine.receive(events));
    return engine;
  }

  /**
   * Validates the PEFT folder against the model now, on this thread (it reads the whole adapter:
   * about 1.6 ms per MB here), and throws an Error with the engine's message. A server should
   * prefer `registerAdapterAsync`.
   */
  registerAdapter(name: string, dir: string): number {
    const id = this.runtime.registerAdapter(name, dir);
    this.adapters.set(name, id);
    return id;
  }

  /** `registerAdapter` on a libuv pool thread; rejects with the engine's message. close() waits for it. */
  async registerAdapterAsync(name: string, dir: string): Promise<number> {
    const id = await this.runtime.registerAdapterAsync(name, dir);
    this.adapters.set(name, id);
    return id;
  }

  /** Refused (Error) while a request uses it. */
  unregisterAdapter(adapter: string | number): void {
    const id = this.adapterId(adapter);
    this.runtime.unregisterAdapter(id);
    for (const [name, v] of this.adapters) if (v === id) this.adapters.delete(name);
  }

  /**
   * Queues a request. Throws (synchronously) an Error with the engine's message when the request
   * is invalid (empty prompt, token out of range, bad sampling field, unknown adapter, ...).
   */
  generate(prompt: readonly number[] | Int32Array, options: GenerateOptions = {}): Generation {
    const sampling: Record<string, unknown> = {};
    const s = options.sampling ?? {};
    for (const k of SAMPLING_KEYS) if (s[k] !== undefined) sampling[k] = s[k];
    const adapter = options.adapter === undefined ? -1 : this.adapterId(options.adapter);
    const id = this.runtime.submit({ prompt, adapter, sampling });
    // Events are delivered on the JS thread after this function returns: registering now is in time.
    const gen = new GenerationImpl(id, (rid) => this.runtime.cancel(rid));
    this.generations.set(id, gen);
    gen.attachSignal(options.signal);
    return gen;
  }

  stats(): EngineStats {
    return this.runtime.stats() as unknown as EngineStats;
  }

  /**
   * Cancels what is running or waiting (those end with 'cancelled'), stops the engine's threads
   * (off the JS thread) and resolves once every request's last event was delivered. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.runtime.close().then((orphans) => {
      this.flush(); // the last events were received just before: deliver them before resolving
      if (orphans > 0)
        process.emitWarning(`longtail engine: ${orphans} request(s) had no final event at close`);
    });
    return this.closing;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  private adapterId(adapter: string | number): number {
    if (typeof adapter === 'number') return adapter;
    const id = this.adapters.get(adapter);
    if (id === undefined) throw new Error(`unknown adapter "${adapter}"`);
    return id;
  }

  /**
   * Called by the addon (from its thread-safe function) with a batch of events. It only stores
   * them: they are handed to the generations from a setImmediate. Node runs up to 1000 queued
   * thread-safe calls in one go, so handing them over here, where the consumers' code runs (in
   * the microtasks that follow), could keep timers and I/O waiting for as long as the engine
   * keeps producing; from setImmediate, every batch is one turn of the event loop.
   */
  private receive(events: NativeEvent[]): void {
    this.pending.push(events);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const batches = this.pending;
    this.pending = [];
    for (const events of batches) {
      for (const ev of events) {
        const gen = this.generations.get(ev.request);
        if (gen === undefined) continue;
        if (ev.finish !== '') this.generations.delete(ev.request);
        gen.push(ev);
      }
    }
  }
}
