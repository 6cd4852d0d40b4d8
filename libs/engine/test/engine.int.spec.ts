/**
 * The Node-API binding against the real engine (native/build/addon/longtail_engine.node) on
 * fixture models: streamed greedy generation matches the CLI, cancellation (AbortSignal, break)
 * frees everything, 50 concurrent requests on different adapters each match their solo run,
 * malformed adapters and models are rejected with the engine's message, an adapter that fails to
 * load ends its request with the engine's error, the event loop stays responsive during a long
 * generation, and close() ends what runs and lets the process exit.
 * Engine stats are a snapshot published after each step, after the step's events: right after a
 * request's last event they can still count it as running, so the tests wait for them to settle.
 * One file on purpose: its tests run one after another, so the timing test is not disturbed by
 * another test of this package.
 */
import { spawn } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALFORMED_ITEMS } from '@longtail/model-fixtures';
import { ADDON_PATH, Engine, type EngineStats, type GenerationResult } from '@longtail/engine-node';
import { engineGenerate, engineLogits, runEngine } from '../../../native/test/support/engine-cli.ts';
import { GQA, createFixtures, type Fixtures } from './support/fixtures.ts';

/** The `error: ` line of a failed CLI run, without the prefix. */
function cliError(run: { stderr: string }): string | undefined {
  return run.stderr
    .split('\n')
    .find((l) => l.startsWith('error: '))
    ?.slice('error: '.length);
}

let fx: Fixtures;

beforeAll(async () => {
  fx = await createFixtures({ extraAdapters: 12, big: true });
}, 120_000);

afterAll(async () => {
  await fx?.remove();
});

async function collect(gen: AsyncIterable<{ token: number }>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of gen) out.push(t.token);
  return out;
}

/** Stats are published after each engine step: give the step that ended a request time to publish. */
async function settledStats(
  engine: Engine,
  ok: (s: EngineStats) => boolean,
  ms = 2000,
): Promise<EngineStats> {
  const until = Date.now() + ms;
  let s = engine.stats();
  while (!ok(s) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5));
    s = engine.stats();
  }
  return s;
}

const idle = (s: EngineStats): boolean =>
  s.running === 0 && s.waiting === 0 && s.kvBlocksFree === s.kvBlocksTotal;

function prompt(seed: number, len: number): number[] {
  return Array.from({ length: len }, (_, i) => (seed * 37 + i * 11 + 1) % 256);
}

describe('loading', () => {
  it('the addon exists where the package looks for it', async () => {
    const { existsSync } = await import('node:fs');
    expect(existsSync(ADDON_PATH), `${ADDON_PATH}: build it with sh native/scripts/build-addon.sh`).toBe(
      true,
    );
  });

  it('a model that does not exist is rejected with the engine message', async () => {
    const err = await Engine.open(`${fx.root}/nope`).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/nope/);
  });

  it('options are type-checked', async () => {
    await expect(Engine.open(fx.model(GQA), { threads: 1.5 })).rejects.toThrow(/threads must be an integer/);
  });

  it('batchInvariant: on by default (CPU), off on request, type-checked', async () => {
    const on = await Engine.open(fx.model(GQA), { threads: 1, backend: 'cpu' });
    const off = await Engine.open(fx.model(GQA), { threads: 1, backend: 'cpu', batchInvariant: false });
    try {
      expect(on.stats().batchInvariant).toBe(true);
      expect(off.stats().batchInvariant).toBe(false);
    } finally {
      await Promise.all([on.close(), off.close()]);
    }
    await expect(
      Engine.open(fx.model(GQA), { batchInvariant: 1 as unknown as boolean }),
    ).rejects.toThrow(/batchInvariant must be a boolean/);
  });
});

describe('greedy streaming generation', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(fx.model(GQA), { threads: 2 });
    engine.registerAdapter('r4', fx.adapter('gqa-r4-all7'));
  });
  afterAll(async () => {
    await engine?.close();
  });

  it.each([
    ['base model', undefined],
    ['adapter gqa-r4-all7', 'r4'],
  ] as const)('%s: equals the CLI (`generate`, else step-by-step argmax of `logits`)', async (_, adapter) => {
    const p = [5, 17, 42, 99, 3];
    const maxTokens = 24;
    const gen = engine.generate(p, { adapter, sampling: { maxTokens } });
    const streamed = await collect(gen);
    const result = await gen.result;
    expect(result).toMatchObject({ finishReason: 'length', promptTokens: 5, completionTokens: maxTokens });
    expect(result.tokens).toEqual(streamed);
    expect(streamed).toHaveLength(maxTokens);
    const adapterDir = adapter ? fx.adapter('gqa-r4-all7') : undefined;

    const ref = await engineGenerate(fx.model(GQA), p, maxTokens, adapterDir);
    expect(streamed).toEqual(ref.tokens);
    expect(ref.finish_reason).toBe('length');
    // Independent of the runtime: each streamed token is the argmax of the plain engine's logits
    // (teacher-forced on the streamed prefix; 1e-4 absorbs paged-vs-contiguous rounding).
    const context = [...p];
    for (const token of streamed.slice(0, 8)) {
      const logits = await engineLogits(fx.model(GQA), context, adapterDir);
      const max = Math.max(...logits);
      expect(logits[token]!, `token ${token} after ${context.join(',')}: max ${max}`).toBeGreaterThanOrEqual(
        max - 1e-4,
      );
      context.push(token);
    }
  });

  it('stop tokens end the request with "stop" and are not emitted', async () => {
    const full = await engine.generate([7, 8, 9], { sampling: { maxTokens: 12 } }).result;
    const stopAt = full.tokens[4]!;
    const firstIndex = full.tokens.indexOf(stopAt);
    const r = await engine.generate([7, 8, 9], { sampling: { maxTokens: 12, stopTokenIds: [stopAt] } })
      .result;
    expect(r.finishReason).toBe('stop');
    expect(r.tokens).toEqual(full.tokens.slice(0, firstIndex));
    expect(r.completionTokens).toBe(firstIndex);
  });

  it('logprobs and top logprobs are streamed, best first', async () => {
    const toks = [];
    for await (const t of engine.generate([1, 2, 3], { sampling: { maxTokens: 4, topLogprobs: 3 } }))
      toks.push(t);
    expect(toks).toHaveLength(4);
    for (const t of toks) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.topLogprobs).toHaveLength(3);
      expect(t.topLogprobs![0]!.token).toBe(t.token); // greedy: the chosen one is the best
      expect(t.topLogprobs![0]!.logprob).toBeGreaterThanOrEqual(t.topLogprobs![1]!.logprob);
    }
  });

  it('seeded sampling is reproducible', async () => {
    const sampling = { temperature: 0.9, topP: 0.9, seed: 1234, maxTokens: 16 };
    const a = await engine.generate([4, 5, 6], { sampling }).result;
    const b = await engine.generate([4, 5, 6], { sampling }).result;
    expect(a.tokens).toEqual(b.tokens);
  });

  it('invalid requests throw synchronously with the engine message', () => {
    expect(() => engine.generate([])).toThrow('prompt must not be empty');
    expect(() => engine.generate([1, 256])).toThrow(/prompt token 256 is out of range/);
    expect(() => engine.generate([1], { sampling: { topP: 0 } })).toThrow(/top_p/);
    expect(() => engine.generate([1], { adapter: 99 })).toThrow(/unknown adapter id 99/);
    expect(() => engine.generate([1], { adapter: 'nope' })).toThrow(/unknown adapter "nope"/);
    expect(() => engine.generate([1.5])).toThrow(/prompt must be an integer/);
    expect(() => engine.generate([1], { sampling: { maxTokens: 5000 } })).toThrow(/context/);
  });

  it('Int32Array prompts work like arrays', async () => {
    const a = await engine.generate(new Int32Array([9, 8, 7]), { sampling: { maxTokens: 6 } }).result;
    const b = await engine.generate([9, 8, 7], { sampling: { maxTokens: 6 } }).result;
    expect(a.tokens).toEqual(b.tokens);
  });
});

describe('cancellation', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(fx.model(GQA), { threads: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('AbortSignal mid-generation: the iterator ends, finish "cancelled", KV blocks all free again', async () => {
    const ac = new AbortController();
    const gen = engine.generate(prompt(1, 20), { sampling: { maxTokens: 2000 }, signal: ac.signal });
    const seen: number[] = [];
    for await (const t of gen) {
      seen.push(t.token);
      if (seen.length === 5) ac.abort();
    }
    const r = await gen.result;
    expect(r.finishReason).toBe('cancelled');
    expect(r.completionTokens).toBeGreaterThanOrEqual(5);
    expect(r.completionTokens).toBeLessThan(2000);
    expect(r.tokens).toHaveLength(r.completionTokens);
    const s = await settledStats(engine, idle);
    expect(s).toMatchObject({ running: 0, waiting: 0 });
    expect(s.kvBlocksFree).toBe(s.kvBlocksTotal);
  });

  it('breaking out of for-await cancels the request', async () => {
    const gen = engine.generate(prompt(2, 10), { sampling: { maxTokens: 2000 } });
    let n = 0;
    for await (const _ of gen) if (++n === 3) break;
    const r = await gen.result;
    expect(r.finishReason).toBe('cancelled');
    expect(r.completionTokens).toBeLessThan(2000);
    expect(idle(await settledStats(engine, idle))).toBe(true);
  });

  it('an already aborted signal cancels at once', async () => {
    const gen = engine.generate(prompt(3, 10), {
      sampling: { maxTokens: 2000 },
      signal: AbortSignal.abort(),
    });
    expect(await collect(gen)).toEqual(expect.any(Array));
    const r = await gen.result;
    expect(r.finishReason).toBe('cancelled');
    expect(r.completionTokens).toBeLessThan(2000);
  });

  it('cancel() of a waiting request (never admitted) ends it', async () => {
    const small = await Engine.open(fx.model(GQA), { threads: 1, maxRunning: 1 });
    try {
      const first = small.generate(prompt(4, 5), { sampling: { maxTokens: 400 } });
      const second = small.generate(prompt(5, 5), { sampling: { maxTokens: 400 } });
      second.cancel();
      const r2 = await second.result;
      expect(r2.finishReason).toBe('cancelled');
      first.cancel();
      expect((await first.result).finishReason).toBe('cancelled');
      expect(idle(await settledStats(small, idle))).toBe(true);
    } finally {
      await small.close();
    }
  });
});

describe('50 concurrent generations on different adapters', () => {
  it('all complete and each equals its solo run', async () => {
    const engine = await Engine.open(fx.model(GQA), { threads: 2, maxRunning: 64, maxBatchTokens: 256 });
    try {
      const names = fx.gqaAdapters.map(([name, dir]) => (engine.registerAdapter(name, dir), name));
      expect(names.length).toBeGreaterThanOrEqual(16);
      const jobs = Array.from({ length: 50 }, (_, i) => ({
        prompt: prompt(i + 10, 3 + ((i * 7) % 40)),
        adapter: i % 17 === 16 ? undefined : names[i % names.length],
        sampling:
          i % 3 === 0
            ? { temperature: 0.8, topK: 40, seed: i, maxTokens: 20 + (i % 13) }
            : { maxTokens: 20 + (i % 13) },
      }));
      const solo: GenerationResult[] = [];
      for (const j of jobs)
        solo.push(await engine.generate(j.prompt, { adapter: j.adapter, sampling: j.sampling }).result);

      // Settled: the snapshot that counts the last solo run as finished may lag its last event.
      const before = await settledStats(engine, idle);
      const gens = jobs.map((j) => engine.generate(j.prompt, { adapter: j.adapter, sampling: j.sampling }));
      const streamed = await Promise.all(gens.map((g) => collect(g)));
      const results = await Promise.all(gens.map((g) => g.result));
      for (let i = 0; i < jobs.length; ++i) {
        expect(results[i]!.finishReason, `request ${i}`).toBe('length');
        expect(streamed[i], `request ${i} (adapter ${jobs[i]!.adapter ?? 'base'})`).toEqual(solo[i]!.tokens);
      }
      const after = await settledStats(engine, idle);
      expect(after.finished - before.finished).toBe(50);
      // They really ran together: far fewer steps than 50 solo runs would take.
      const tokens = results.reduce((n, r) => n + r.completionTokens, 0);
      expect(after.steps - before.steps).toBeLessThan(tokens / 4);
      expect(idle(after)).toBe(true);
    } finally {
      await engine.close();
    }
  });
});

describe('adapters', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.open(fx.malformed('base'), { threads: 1 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  describe.each(MALFORMED_ITEMS.filter((i) => i.kind === 'adapter').map((i) => [i.name, i] as const))(
    'malformed %s',
    (_, item) => {
      it(`registerAdapter rejects it with the engine message: ${item.defect}`, async () => {
        let err: Error | undefined;
        try {
          engine.registerAdapter(item.name, fx.malformed(item.adapter!));
        } catch (e) {
          err = e as Error;
        }
        expect(err, 'registerAdapter should throw').toBeInstanceOf(Error);
        const msg = err!.message;
        expect(
          item.expect.anyOf.some((w) => msg.toLowerCase().includes(w.toLowerCase())),
          msg,
        ).toBe(true);
        if (item.expect.file) expect(msg).toContain(item.expect.file);
        if (item.expect.tensor) expect(msg).toContain(item.expect.tensor);
        // The same words the CLI prints for the folder.
        const cli = cliError(
          await runEngine([
            'inspect',
            '--model',
            fx.malformed('base'),
            '--adapter',
            fx.malformed(item.adapter!),
          ]),
        );
        expect(msg).toBe(cli);
      });
    },
  );

  describe.each(MALFORMED_ITEMS.filter((i) => i.kind === 'model').map((i) => [i.name, i] as const))(
    'malformed %s',
    (_, item) => {
      it(`Engine.open rejects it with the engine message: ${item.defect}`, async () => {
        const err = await Engine.open(fx.malformed(item.model)).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        expect(err, 'Engine.open should reject').toBeInstanceOf(Error);
        const cli = cliError(await runEngine(['inspect', '--model', fx.malformed(item.model)]));
        expect(err!.message).toBe(cli);
      });
    },
  );

  it('an adapter that fails to load at first use ends its request with "error": the iterator throws the message', async () => {
    // A host tier of one byte keeps nothing in memory: the first use loads from disk, where the
    // weights are gone by then.
    const dir = join(fx.root, 'vanishing');
    await cp(fx.adapter('gqa-r4-all7'), dir, { recursive: true });
    const e = await Engine.open(fx.model(GQA), { threads: 1, adapterHostBytes: 1 });
    try {
      e.registerAdapter('vanishing', dir);
      await rm(join(dir, 'adapter_model.safetensors'));
      const gen = e.generate([1, 2, 3], { adapter: 'vanishing', sampling: { maxTokens: 5 } });
      await expect(collect(gen)).rejects.toThrow(/^adapter load failed: .*adapter_model\.safetensors/);
      const r = await gen.result;
      expect(r.finishReason).toBe('error');
      expect(r.error).toMatch(/^adapter load failed: /);
      // The base model still serves.
      expect((await e.generate([1, 2, 3], { sampling: { maxTokens: 3 } }).result).finishReason).toBe(
        'length',
      );
    } finally {
      await e.close();
    }
  });

  it('registerAdapterAsync: same ids and messages, off the JS thread; close() waits for it', async () => {
    const e = await Engine.open(fx.model(GQA), { threads: 1 });
    const pending = fx.gqaAdapters.map(([name, dir]) => e.registerAdapterAsync(name, dir));
    const ids = await Promise.all(pending);
    expect(new Set(ids).size).toBe(ids.length);
    expect(e.stats().adaptersRegistered).toBe(ids.length);
    await expect(e.registerAdapterAsync('bad', fx.malformed('adapter-use-dora'))).rejects.toThrow(
      /use_dora is not supported/,
    );
    const r = await e.generate([1, 2, 3], { adapter: fx.gqaAdapters[3]![0], sampling: { maxTokens: 4 } })
      .result;
    expect(r.finishReason).toBe('length');
    // close() while registrations are in flight: they settle, then the engine closes.
    const late = fx.gqaAdapters.map(([name, dir]) => e.registerAdapterAsync(`late-${name}`, dir));
    const closed = e.close();
    expect(() => e.generate([1])).toThrow('engine is closed');
    const settled = await Promise.allSettled(late);
    await closed;
    expect(settled.every((x) => x.status === 'fulfilled')).toBe(true);
    await expect(e.registerAdapterAsync('after', fx.adapter('gqa-r1-qv'))).rejects.toThrow(
      'engine is closed',
    );
  });

  it('unregister: refused while in use, then by name; unknown afterwards', async () => {
    const e = await Engine.open(fx.model(GQA), { threads: 1 });
    try {
      const id = e.registerAdapter('a', fx.adapter('gqa-r1-qv'));
      expect(() => e.registerAdapter('a', fx.adapter('gqa-r1-qv'))).toThrow();
      const gen = e.generate([1, 2], { adapter: 'a', sampling: { maxTokens: 1500 } });
      expect(() => e.unregisterAdapter(id)).toThrow(/in use/);
      gen.cancel();
      await gen.result;
      e.unregisterAdapter('a');
      expect(() => e.generate([1], { adapter: id })).toThrow(/unknown adapter id/);
      expect(e.stats().adaptersRegistered).toBe(0);
    } finally {
      await e.close();
    }
  });
});

interface Ticks {
  /** How late (ms) each tick of a 10 ms interval fired. */
  readonly lateness: number[];
  /** CPU time (ms) the JS thread itself used between consecutive ticks. */
  readonly cpu: number[];
}

/** Runs `work` under a 10 ms interval and records each tick's lateness and the JS thread's CPU. */
async function underInterval<T>(work: () => Promise<T>): Promise<Ticks & { value: T; ms: number }> {
  const lateness: number[] = [];
  const cpu: number[] = [];
  let last = performance.now();
  let lastCpu = process.threadCpuUsage();
  const timer = setInterval(() => {
    const now = performance.now();
    const c = process.threadCpuUsage(lastCpu);
    lateness.push(now - last - 10);
    cpu.push((c.user + c.system) / 1000);
    last = now;
    lastCpu = process.threadCpuUsage();
  }, 10);
  const t0 = performance.now();
  try {
    const value = await work();
    return { lateness, cpu, value, ms: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

function summary(t: Ticks): string {
  const sorted = [...t.lateness].sort((a, b) => a - b);
  const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? 0;
  const worst = t.lateness.indexOf(Math.max(...t.lateness));
  return (
    `${t.lateness.length} ticks, lateness max ${t.lateness[worst]!.toFixed(1)} ms ` +
    `(JS thread CPU in that gap ${t.cpu[worst]!.toFixed(1)} ms), p99 ${p99.toFixed(1)} ms, ` +
    `max JS thread CPU between ticks ${Math.max(...t.cpu).toFixed(1)} ms`
  );
}

describe('the event loop stays free', () => {
  // On a dedicated machine the worst tick is a few ms late. On a loaded shared host the OS may
  // not run this process for a while, so the assertions are: the JS thread never works 100 ms
  // between two ticks (no blocking on our side, whatever the OS does), 99 % of the ticks are less
  // than 50 ms late (above the idle control's own noise), none is a whole second late, and the
  // loop is mostly idle (event-loop utilization).
  it('a 10 ms interval keeps firing on time during a 300-token generation of the big model', async () => {
    const engine = await Engine.open(fx.big, { threads: 1 });
    try {
      const control = await underInterval(() => new Promise((r) => setTimeout(r, 1000)));
      const gcPauses: number[] = [];
      const gcObserver = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) gcPauses.push(entry.duration);
      });
      gcObserver.observe({ entryTypes: ['gc'] });
      const elu0 = performance.eventLoopUtilization();
      const run = await underInterval(async () => {
        const gens = [engine.generate(prompt(1, 32), { sampling: { maxTokens: 300 } })];
        gens.push(engine.generate(prompt(2, 200), { sampling: { maxTokens: 100 } })); // a long prefill too
        let streamed = 0;
        for await (const _ of gens[0]!) streamed++;
        return { streamed, results: await Promise.all(gens.map((g) => g.result)) };
      });
      const elu = performance.eventLoopUtilization(elu0);
      gcObserver.disconnect();
      const { streamed, results } = run.value;
      expect(streamed).toBe(300);
      expect(results.map((r) => r.finishReason)).toEqual(['length', 'length']);
      console.log(
        `event loop, idle control: ${summary(control)}\n` +
          `event loop during ${run.ms.toFixed(0)} ms of generation: ${summary(run)}, utilization ${elu.utilization.toFixed(3)}; ` +
          `${gcPauses.length} GCs, longest ${Math.max(0, ...gcPauses).toFixed(1)} ms`,
      );
      const sorted = [...run.lateness].sort((a, b) => a - b);
      const controlP99 = [...control.lateness].sort((a, b) => a - b)[
        Math.floor(control.lateness.length * 0.99)
      ]!;
      expect(run.ms, 'the generation must be long enough to mean something').toBeGreaterThan(500);
      // Ticks arrive (a late interval coalesces, so on a loaded 2-core machine fewer than ms/10 do:
      // 67 % was measured under CI load); the lateness figures below are the real measure.
      expect(run.lateness.length, 'ticks during the generation').toBeGreaterThan((run.ms / 10) * 0.4);
      // (V8's own GC pauses count here too: they are logged above.)
      expect(Math.max(...run.cpu), 'JS thread CPU between two ticks (ms)').toBeLessThan(100);
      expect(sorted[Math.floor(sorted.length * 0.99)]!, 'p99 lateness (ms)').toBeLessThan(
        50 + Math.max(0, controlP99),
      );
      expect(Math.max(...run.lateness), 'max lateness (ms)').toBeLessThan(1000);
      expect(elu.utilization).toBeLessThan(0.5);
    } finally {
      await engine.close();
    }
  });
});

describe('close', () => {
  it('close() while generations run ends them as cancelled and resolves', async () => {
    const engine = await Engine.open(fx.big, { threads: 2 });
    const gens = Array.from({ length: 6 }, (_, i) =>
      engine.generate(prompt(i, 16), { sampling: { maxTokens: 1000 } }),
    );
    const iterations = gens.map((g) => collect(g));
    // Wait until some are decoding.
    const firstTokens = gens.slice(0, 2).map(async (g) => {
      while (
        (await Promise.race([
          g.result.then(() => 'done'),
          new Promise((r) => setTimeout(() => r('wait'), 20)),
        ])) === 'wait'
      ) {
        if (engine.stats().generatedTokens > 4) return;
      }
    });
    await Promise.all(firstTokens);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await engine.close();
    clearInterval(timer);
    const results = await Promise.all(gens.map((g) => g.result));
    for (const r of results) expect(r.finishReason).toBe('cancelled');
    await Promise.all(iterations); // the iterators ended without throwing
    expect(() => engine.generate([1])).toThrow('engine is closed');
    expect(() => engine.stats()).toThrow('engine is closed');
    await engine.close(); // idempotent
  });

  it('an idle engine does not keep the process alive, a running request does until it ends', async () => {
    // Plain JS in a child process, using the addon directly: it must exit on its own.
    const script = `
      const { createRequire } = require('node:module');
      const addon = require(${JSON.stringify(ADDON_PATH)});
      let n = 0;
      const rt = new addon.Runtime(${JSON.stringify(fx.model(GQA))}, { threads: 1 }, (evs) => {
        for (const e of evs) { if (e.token >= 0) n++; if (e.finish) console.log('finish', e.finish, n); }
      });
      rt.submit({ prompt: [1, 2, 3], adapter: -1, sampling: { maxTokens: 200 } });
      // no close(): the process must still exit once the request has ended
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | string>((resolve) => {
      const kill = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('timeout');
      }, 20_000);
      child.on('close', (c, sig) => {
        clearTimeout(kill);
        resolve(c ?? String(sig));
      });
    });
    expect(code, `stderr: ${err}`).toBe(0);
    expect(out).toContain('finish length 200');
  });
});
