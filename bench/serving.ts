/**
 * Serving overhead benchmark (issue 5): what the gateway, NATS and a gpu-worker add to a
 * generation. 1-token greedy completions of one short prompt on the tiny serving model (hidden 32,
 * 2 layers, the real Llama 3 tokenizer: e2e/support/serving-model.ts), at concurrency 1, 16 and 64:
 *
 * - **direct**: the same engine (`@longtail/engine-node`, same model, 1 compute thread like the
 *   worker) called in this process with the prompt's token ids, by `c` callers that each await one
 *   generation after another (a closed loop, like autocannon's connections);
 * - **serving**: autocannon (`c` connections, one request in flight each) → `POST /v1/completions`
 *   on the built gateway (a tenant API key checked against PostgreSQL, then cached; its rate limits
 *   applied to every request) → NATS → the built gpu-worker (validates, tokenizes, generates,
 *   streams the reply, publishes one `inference.completed` per request to JetStream).
 *
 * Each concurrency runs `BENCH_SECONDS` (default 10) of each after a warm-up, in `BENCH_SLICES`
 * (default 5) alternating direct/serving pairs, so both see the same state of a shared machine.
 * Latency percentiles are exact: every response's time (µs resolution) from autocannon's
 * `response` event, not its millisecond histogram. Every response must be a 200 with one
 * completion token, and the INFERENCE stream must hold one `inference.completed` per response
 * (read back after the run; the run fails otherwise). Where the time goes: the CPU time each
 * process used during the run (utime + stime from /proc), per request. Last, the cost of a rate
 * limit shared across gateways done as a per-request compare-and-set counter in NATS KV.
 *
 *   npm run bench:serving
 *   # = node --conditions=longtail-source --import ./services/attribution/scripts/source-loader.mjs bench/serving.ts
 *
 * Needs `npx tsc -b services/gateway services/gpu-worker` (or `npm run build`) first. Writes
 * bench/results/serving.json (BENCH_OUT to write elsewhere). Servers: a local nats-server and
 * PostgreSQL on free ports, removed at the end.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Tokenizer } from '@huggingface/tokenizers';
import { Kvm } from '@nats-io/kv';
import autocannon from 'autocannon';

import { STREAMS } from '@longtail/contracts';
import { Engine } from '@longtail/engine-node';
import { connectMessaging, replayStream, type MessagingConnection } from '@longtail/messaging';

import { writeServingModel } from '../e2e/support/serving-model.js';
import { startService, waitUntilReady, type ServiceProcess } from '../e2e/support/services.js';
import { startNatsServer } from '../libs/testenv/src/nats/start.js';
import { freePort } from '../libs/testenv/src/ports.js';
import { startPostgresServer } from '../libs/testenv/src/postgres/start.js';
import { waitFor } from '../libs/testenv/src/wait-for.js';

const MODEL = 'tiny-llama';
const PROMPT = 'The quick brown fox';
const EOS = [128001, 128008, 128009];
const CONCURRENCY = (process.env['BENCH_CONCURRENCY'] ?? '1,16,64').split(',').map(Number);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const WARMUP_SECONDS = Number(process.env['BENCH_WARMUP_SECONDS'] ?? 3);
/** Each concurrency's SECONDS are split into this many direct/serving pairs, run alternately. */
const SLICES = Number(process.env['BENCH_SLICES'] ?? 5);
const OUT = process.env['BENCH_OUT'] ?? 'bench/results/serving.json';
const ADMIN_KEY = `lt_admin_${'b'.repeat(32)}`;
const COMMAND =
  'npm run bench:serving  # node --conditions=longtail-source --import ./services/attribution/scripts/source-loader.mjs bench/serving.ts';

interface Figures {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** Milliseconds, exact over every request of the run. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /**
   * CPU milliseconds per request, by process (bench = this process: the engine in the direct runs,
   * autocannon in the serving runs); `…JsThread` is that process's JS thread alone.
   */
  readonly cpuMsPerRequest: Record<string, number>;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

function figures(latenciesMs: number[], seconds: number, cpuMs: Record<string, number>): Figures {
  const sorted = Float64Array.from(latenciesMs).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return {
    requests: sorted.length,
    seconds: round(seconds),
    requestsPerSecond: round(sorted.length / seconds, 1),
    p50Ms: round(at(0.5)),
    p99Ms: round(at(0.99)),
    meanMs: round(sorted.reduce((s, x) => s + x, 0) / sorted.length),
    cpuMsPerRequest: Object.fromEntries(
      Object.entries(cpuMs).map(([name, ms]) => [name, round(ms / Math.max(1, sorted.length))]),
    ),
  };
}

/**
 * CPU time (user + system, ms) a process has used, from /proc (clock ticks of 10 ms); `pid/js`
 * reads only its main thread (Node's JS thread: the engine, libuv and GC threads are the rest).
 */
function cpuMsOf(id: string): number {
  const [pid, js] = id.split('/');
  const stat = readFileSync(js ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime (fields 14 and 15)
}

/** CPU ms each named process uses while `run` runs. */
async function measuringCpu<T>(
  pids: Record<string, string>,
  run: () => Promise<T>,
): Promise<{ result: T; cpuMs: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuMsOf(pid)]));
  const result = await run();
  const cpuMs = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuMsOf(pid) - before[n]!]));
  return { result, cpuMs };
}

/** `c` callers, each awaiting one 1-token generation after another, for `seconds`. */
async function direct(
  engine: Engine,
  prompt: number[],
  c: number,
  seconds: number,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  const caller = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const result = await engine.generate(prompt, {
        sampling: { temperature: 0, maxTokens: 1, stopTokenIds: EOS },
      }).result;
      if (result.tokens.length !== 1) throw new Error(`direct: ${result.tokens.length} tokens, expected 1`);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: c }, caller));
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

/** autocannon with `c` connections against the gateway for `seconds`; every response checked. */
async function serving(
  url: string,
  key: string,
  c: number,
  seconds: number,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let bad = 0;
  let firstBad: string | undefined;
  const started = performance.now();
  const instance = autocannon({
    url: `${url}/v1/completions`,
    method: 'POST',
    connections: c,
    pipelining: 1,
    duration: seconds,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: 1, temperature: 0 }),
    requests: [
      {
        onResponse: (status: number, body: string) => {
          if (status !== 200 || !body.includes('"completion_tokens":1')) {
            bad++;
            firstBad ??= `${status} ${body.slice(0, 300)}`;
          }
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
  });
  const result = await instance;
  const elapsed = (performance.now() - started) / 1000;
  if (bad > 0 || result.non2xx > 0 || result.errors > 0 || result.timeouts > 0)
    throw new Error(
      `serving at c=${c}: ${bad} bad responses, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts; first: ${firstBad}`,
    );
  return { latencies, seconds: elapsed };
}

/** The INFERENCE stream's last sequence once it stops moving (events land after their replies). */
async function settledLastSeq(conn: MessagingConnection): Promise<number> {
  const jsm = await conn.jsm();
  const read = async () => (await jsm.streams.info(STREAMS.INFERENCE.name)).state.last_seq;
  let last = await read();
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await read();
    if (now === last) return now;
    last = now;
  }
}

/** Inference events after `fromSeq`, by type and finish reason (`inference.completed/length`). */
async function eventsAfter(conn: MessagingConnection, fromSeq: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for await (const m of replayStream(conn, { stream: STREAMS.INFERENCE.name, fromSeq: fromSeq + 1 })) {
    if (!m.ok) throw new Error(`INFERENCE seq ${m.seq}: ${m.violation}`);
    const data = m.event.data as { finishReason?: string; completionTokens: number };
    const key = `${m.event.type}/${data.finishReason ?? '-'}/${data.completionTokens}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/**
 * What a rate limit shared across gateways would cost per request if it were a counter in a NATS
 * KV bucket updated with compare-and-set (get, then update at that revision, retried on a
 * conflict): `c` concurrent requests over `tenants` tenants (one key per tenant and minute).
 */
async function sharedCounterCost(
  conn: MessagingConnection,
  c: number,
  tenants: number,
  seconds: number,
): Promise<{
  concurrency: number;
  tenants: number;
  incrementsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  conflicts: number;
  clientCpuUsPerIncrement: number;
}> {
  const kv = await new Kvm(conn.nc).create('bench_rate_limit', { history: 1, ttl: 120_000 });
  const latencies: number[] = [];
  let conflicts = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: c }, async (_, i) => {
      const key = `tenant-${i % tenants}.${Math.floor(Date.now() / 60_000)}`;
      while (performance.now() < until) {
        const t0 = performance.now();
        for (;;) {
          const entry = await kv.get(key);
          try {
            if (entry === null || entry.operation !== 'PUT') await kv.create(key, '1');
            else await kv.update(key, String(Number(entry.string()) + 1), entry.revision);
            break;
          } catch {
            conflicts++; // another request moved the counter first: read it again
          }
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const f = figures(latencies, (performance.now() - started) / 1000, {});
  return {
    concurrency: c,
    tenants,
    incrementsPerSecond: f.requestsPerSecond,
    p50Ms: f.p50Ms,
    p99Ms: f.p99Ms,
    conflicts,
    clientCpuUsPerIncrement: round((cpu.user + cpu.system) / Math.max(1, f.requests), 0),
  };
}

/** The pid of the nats-server listening on `port` (its command line names the port). */
function natsServerPid(port: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('nats-server') && cmd.includes(String(port))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no nats-server process for port ${port}`);
}

async function createTenantKey(baseUrl: string): Promise<string> {
  const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
  // Limits the benchmark never reaches; they are still checked and charged on every request.
  const tenant = (await (
    await fetch(`${baseUrl}/v1/admin/tenants`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({
        name: 'bench',
        requests_per_min: 100_000_000,
        tokens_per_min: 1_000_000_000,
        max_concurrent: 1000,
      }),
    })
  ).json()) as { id: string };
  const { key } = (await (
    await fetch(`${baseUrl}/v1/admin/tenants/${tenant.id}/keys`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ scopes: ['inference'] }),
    })
  ).json()) as { key: string };
  return key;
}

async function main(): Promise<void> {
  const root = join('bench', 'tmp', 'serving');
  rmSync(root, { recursive: true, force: true });
  const modelDir = join(root, 'model');
  mkdirSync(root, { recursive: true });
  writeServingModel(modelDir);

  const nats = await startNatsServer();
  const pgServer = await startPostgresServer();
  const services: ServiceProcess[] = [];
  let engine: Engine | undefined;
  const conn = await connectMessaging({ servers: nats.url, name: 'bench-serving' });
  try {
    const worker = startService('gpu-worker', await freePort(), {
      NATS_URL: nats.url,
      WORKER_ID: 'bench-w1',
      BASE_MODEL: MODEL,
      MODEL_DIR: modelDir,
      ENGINE_THREADS: '1',
      HEARTBEAT_INTERVAL_S: '1',
    });
    const gateway = startService('gateway', await freePort(), {
      NATS_URL: nats.url,
      DATABASE_URL: pgServer.url,
      LONGTAIL_ADMIN_KEY: ADMIN_KEY,
    });
    services.push(worker, gateway);
    await Promise.all([waitUntilReady(worker, 60_000), waitUntilReady(gateway, 60_000)]);
    const key = await createTenantKey(gateway.baseUrl);
    await waitFor(
      async () => {
        const res = await fetch(`${gateway.baseUrl}/v1/models`, {
          headers: { authorization: `Bearer ${key}` },
        });
        return (
          res.ok && ((await res.json()) as { data: Array<{ id: string }> }).data.some((m) => m.id === MODEL)
        );
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'the worker in /v1/models' },
    );

    const tokenizer = new Tokenizer(
      JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as object,
      JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as object,
    );
    const prompt = tokenizer.encode(PROMPT, { add_special_tokens: true }).ids;
    engine = await Engine.open(modelDir, { threads: 1 });
    const pids = {
      bench: `${process.pid}`,
      benchJsThread: `${process.pid}/js`,
      gateway: `${gateway.child.pid!}`,
      worker: `${worker.child.pid!}`,
      workerJsThread: `${worker.child.pid!}/js`,
      natsServer: `${natsServerPid(nats.port)}`,
    };

    const loadBefore = os.loadavg();
    const startedAt = new Date();
    const rows = [];
    for (const c of CONCURRENCY) {
      await direct(engine, prompt, c, WARMUP_SECONDS);
      await serving(gateway.baseUrl, key, c, WARMUP_SECONDS);
      const fromSeq = await settledLastSeq(conn);
      // Interleaved slices, direct then serving, so that both see the same machine: a shared VM's
      // speed drifts over a minute by more than the difference being measured.
      const d = { latencies: [] as number[], seconds: 0, cpuMs: {} as Record<string, number> };
      const s = { latencies: [] as number[], seconds: 0, cpuMs: {} as Record<string, number> };
      const addedPerSlice: number[] = [];
      const add = (
        into: typeof d,
        m: { result: { latencies: number[]; seconds: number }; cpuMs: Record<string, number> },
      ) => {
        into.latencies.push(...m.result.latencies);
        into.seconds += m.result.seconds;
        for (const [k, v] of Object.entries(m.cpuMs)) into.cpuMs[k] = (into.cpuMs[k] ?? 0) + v;
      };
      for (let slice = 0; slice < SLICES; slice++) {
        const ds = await measuringCpu({ bench: pids.bench, benchJsThread: pids.benchJsThread }, () =>
          direct(engine!, prompt, c, SECONDS / SLICES),
        );
        const ss = await measuringCpu(pids, () => serving(gateway.baseUrl, key, c, SECONDS / SLICES));
        add(d, ds);
        add(s, ss);
        addedPerSlice.push(
          round(figures(ss.result.latencies, 1, {}).p50Ms - figures(ds.result.latencies, 1, {}).p50Ms),
        );
      }
      const directFigures = figures(d.latencies, d.seconds, d.cpuMs);
      const servingFigures = figures(s.latencies, s.seconds, s.cpuMs);
      // One inference.completed (1 token, `length`) per 200; the requests the run's end cut off
      // (at most c a slice) get theirs too, as cancelled or completed.
      const events = await eventsAfter(conn, fromSeq);
      const completed = events['inference.completed/length/1'] ?? 0;
      const others = Object.entries(events).filter(([k]) => k !== 'inference.completed/length/1');
      const otherCount = others.reduce((n, [, v]) => n + v, 0);
      if (
        completed < servingFigures.requests ||
        completed + otherCount > servingFigures.requests + c * SLICES
      )
        throw new Error(`c=${c}: ${servingFigures.requests} responses, events ${JSON.stringify(events)}`);

      const row = {
        concurrency: c,
        direct: directFigures,
        serving: servingFigures,
        addedP50Ms: round(servingFigures.p50Ms - directFigures.p50Ms),
        /** p50 added in each interleaved slice (serving slice minus the direct slice just before it). */
        addedP50PerSliceMs: addedPerSlice,
        throughputRatio: round(servingFigures.requestsPerSecond / directFigures.requestsPerSecond),
        events,
      };
      rows.push(row);
      console.log(
        `c=${c}: direct ${directFigures.requestsPerSecond} req/s p50 ${directFigures.p50Ms} p99 ${directFigures.p99Ms} ms` +
          ` | serving ${servingFigures.requestsPerSecond} req/s p50 ${servingFigures.p50Ms} p99 ${servingFigures.p99Ms} ms` +
          ` | +${row.addedP50Ms} ms p50 (slices ${addedPerSlice.join(', ')}) | CPU ms/request ${JSON.stringify(servingFigures.cpuMsPerRequest)} (direct ${JSON.stringify(directFigures.cpuMsPerRequest)})`,
      );
    }
    const sharedCounter = [];
    for (const [c, tenants] of [
      [1, 1],
      [16, 16],
      [16, 1],
    ] as const)
      sharedCounter.push(await sharedCounterCost(conn, c, tenants, 3));
    console.log(`shared rate-limit counter (KV compare-and-set): ${JSON.stringify(sharedCounter)}`);
    const loadAfter = os.loadavg();

    const c1 = rows.find((r) => r.concurrency === 1);
    const c64 = rows.find((r) => r.concurrency === 64);
    const cpus = os.cpus();
    const output = {
      benchmark: 'serving',
      command: COMMAND,
      date: startedAt.toISOString(),
      machine: {
        cpuModel: cpus[0]?.model ?? 'unknown',
        cores: cpus.length,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        loadAverage1m: { before: round(loadBefore[0]!, 2), after: round(loadAfter[0]!, 2) },
        note: 'the bench (autocannon or the direct engine), nats-server, PostgreSQL, the gateway and the gpu-worker share these cores with other jobs',
      },
      setup: {
        model:
          'tiny Llama: hidden 32, 2 layers, 2 heads / 1 kv head, intermediate 64, vocab 128,256 (Llama 3 tokenizer), f32',
        request: {
          endpoint: 'POST /v1/completions',
          prompt: PROMPT,
          promptTokens: prompt.length,
          max_tokens: 1,
          temperature: 0,
        },
        engineThreads: 1,
        secondsPerRun: SECONDS,
        interleavedSlices: SLICES,
        warmupSecondsPerRun: WARMUP_SECONDS,
        loadGenerator:
          'autocannon 9 (programmatic, in the bench process), one request in flight per connection',
        auth: 'tenant API key (PostgreSQL, cached by the gateway), rate limits checked and charged per request',
      },
      results: rows,
      /** Not on the serving path: the measured cost of a per-request shared counter (see bench/README.md). */
      sharedRateLimitCounter: sharedCounter,
      targets: {
        addedP50AtConcurrency1: {
          target: '<= 2 ms',
          met: c1 !== undefined && c1.addedP50Ms <= 2,
          detail: c1 ? `+${c1.addedP50Ms} ms (${c1.serving.p50Ms} vs ${c1.direct.p50Ms} ms)` : 'not run',
        },
        requestsPerSecondAtConcurrency64: {
          target: '>= 1000 req/s',
          met: c64 !== undefined && c64.serving.requestsPerSecond >= 1000,
          detail: c64
            ? `${c64.serving.requestsPerSecond} req/s (direct ${c64.direct.requestsPerSecond})`
            : 'not run',
        },
      },
    };
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(output, null, 2)}\n`);
    console.log(
      `${OUT}: load average ${output.machine.loadAverage1m.before} → ${output.machine.loadAverage1m.after}`,
    );
    console.log(JSON.stringify(output.targets, null, 2));
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await engine?.close();
    await conn.close();
    await nats.stop();
    await pgServer.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
