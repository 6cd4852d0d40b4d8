/**
 * Attribution replay benchmark: generates N inference events (default 1,000,000) across 10,000
 * adapters whose Datanet snapshots name 100,000 contributors, publishes them to JetStream, then
 * replays every attribution projection from the streams into a fresh PostgreSQL schema (the
 * `replayAttribution` the replay command runs) and measures events/s and the process's RSS at
 * 25/50/75/100 % of the INFERENCE events.
 *
 *   node --conditions=longtail-source --import ./services/attribution/scripts/source-loader.mjs bench/attribution.ts [events]
 *
 * Servers: NATS_URL / DATABASE_URL when set, else a local nats-server and PostgreSQL started here
 * (PostgreSQL with fsync on: the figure includes durable commits). Writes bench/results/attribution.json
 * (BENCH_OUT to write elsewhere).
 *
 * To iterate on the replay without publishing again: BENCH_KEEP_SERVERS=FILE keeps the servers this
 * run started after it ends (until Ctrl-C) and writes their NATS_URL / DATABASE_URL to FILE as
 * `export` lines; then `. FILE && BENCH_SKIP_PUBLISH=1 node ... bench/attribution.ts N` replays the
 * stream that run published (same N and BENCH_EPOCHS). Each replay drops its schema when done.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';

import { sql } from 'kysely';

import { STREAMS, subjectToken } from '@longtail/contracts';
import { createDatabase } from '@longtail/database';
import { connectMessaging, provision } from '@longtail/messaging';

import { startNatsServer } from '../libs/testenv/src/nats/start.js';
import { startPostgresServer } from '../libs/testenv/src/postgres/start.js';
import { replayAttribution } from '../services/attribution/src/replay/replay.js';

const EVENTS = Number(process.argv[2] ?? process.env['BENCH_EVENTS'] ?? 1_000_000);
const ADAPTERS = 10_000;
const DATANETS = 1_000;
const CONTRIBUTORS_PER_DATANET = 100; // 100,000 contributors, each in one Datanet
const TENANTS = 50;
const OPERATORS = 8;
const EPOCHS = Number(process.env['BENCH_EPOCHS'] ?? 10);
const BATCH = Number(process.env['BENCH_BATCH'] ?? 100_000);
/** Set (with NATS_URL) to replay what an earlier run published instead of publishing again. */
const SKIP_PUBLISH = process.env['BENCH_SKIP_PUBLISH'] === '1';
const OUT = process.env['BENCH_OUT'] ?? 'bench/results/attribution.json';
const KEEP_SERVERS = process.env['BENCH_KEEP_SERVERS'];

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(20261125);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const addr = (kind: number, n: number) =>
  `0x${kind.toString(16).padStart(2, '0')}${n.toString(16).padStart(38, '0')}`;
let idCounter = 0;
/** UUID v7 shape: 48-bit ms, then a counter (unique, not random: fine for a benchmark). */
function uuid(ms: number): string {
  idCounter += 1;
  const t = ms.toString(16).padStart(12, '0');
  const c = idCounter.toString(16).padStart(16, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${c.slice(0, 3)}-8${c.slice(3, 6)}-${c.slice(6, 16)}00`;
}

const T0 = Date.parse('2026-06-01T00:00:00.000Z');
const mb = (bytes: number) => Math.round(bytes / 1048576);

/**
 * The bench's own PostgreSQL: durable (fsync, synchronous commit and full-page writes on, as
 * docs/architecture.md rule 2 requires), sized like a server rather than a test instance: the
 * default 128 MB of buffers and 4 MB of WAL buffers made the replaying backend write dirty pages
 * and WAL itself on every batch, and 1 GB of WAL forced checkpoints (and full-page images) mid-run.
 * None of these trades durability: a crash still loses no committed transaction.
 */
let LOAD_BEFORE = 0;
const round1 = (x: number): number => Math.round(x * 100) / 100;

const PG_SETTINGS = {
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  shared_buffers: '1GB',
  wal_buffers: '64MB',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
};

async function main(): Promise<void> {
  const started = new Date();
  LOAD_BEFORE = round1(os.loadavg()[0]!);
  const ownNats = process.env['NATS_URL'] ? undefined : await startNatsServer();
  const ownPg = process.env['DATABASE_URL']
    ? undefined
    : await startPostgresServer({ settings: PG_SETTINGS });
  const natsUrl = process.env['NATS_URL'] ?? ownNats!.url;
  const databaseUrl = process.env['DATABASE_URL'] ?? ownPg!.url;
  if (KEEP_SERVERS) {
    mkdirSync(dirname(KEEP_SERVERS), { recursive: true });
    writeFileSync(KEEP_SERVERS, `export NATS_URL=${natsUrl}\nexport DATABASE_URL=${databaseUrl}\n`);
  }
  const conn = await connectMessaging({ servers: natsUrl, name: 'attribution-bench' });
  try {
    await provision(conn, {
      streams: Object.values(STREAMS).map((s) => ({
        name: s.name,
        subjects: s.subjects,
        storage: s.storage,
        duplicateWindowMs: s.duplicateWindowMs,
      })),
    });
    const enc = new TextEncoder();
    let inFlight: Promise<unknown>[] = [];
    const publish = async (subject: string, json: string, id: string) => {
      inFlight.push(conn.js.publish(subject, enc.encode(json), { msgID: id }));
      if (inFlight.length >= 2000) {
        await Promise.all(inFlight);
        inFlight = [];
      }
    };
    const envelope = (type: string, ms: number, data: string) => {
      const id = uuid(ms);
      return {
        id,
        json: `{"id":"${id}","type":"${type}","version":1,"occurredAt":"${new Date(ms).toISOString()}","correlationId":"bench","causationId":null,"data":${data}}`,
      };
    };

    const genStart = performance.now();
    if (SKIP_PUBLISH) {
      if (!process.env['NATS_URL'])
        throw new Error('BENCH_SKIP_PUBLISH=1 needs NATS_URL (a server holding an earlier run)');
    } else {
      // Facts: two policies, 1,000 Datanet snapshots of 100 contributors, 10,000 adapters.
      const treasury = addr(0xee, 1);
      for (const [version, from, bps] of [
        [1, 0, [2000, 5000, 2500, 500]],
        [2, 5, [1500, 4500, 3500, 500]],
      ] as const) {
        const e = envelope(
          'attribution.policy.set',
          T0,
          JSON.stringify({
            version,
            effectiveFromEpoch: from,
            operatorBps: bps[0],
            creatorBps: bps[1],
            contributorsBps: bps[2],
            treasuryBps: bps[3],
            treasuryAddress: treasury,
          }),
        );
        await publish(`attribution.policy.set.${version}`, e.json, e.id);
      }
      for (let d = 0; d < DATANETS; d += 1) {
        const datanetId = `curator${d % 97}/set-${d}`;
        const contributors = [];
        for (let c = 0; c < CONTRIBUTORS_PER_DATANET; c += 1) {
          contributors.push({
            account: addr(0xc0, d * CONTRIBUTORS_PER_DATANET + c),
            weight: c === 0 && d % 10 === 0 ? 1_000_000_000 : int(1, 5000),
          });
        }
        const e = envelope(
          'datanets.snapshot.published',
          T0,
          JSON.stringify({
            datanetId,
            snapshotId: 's1',
            throughSequence: 0,
            contributionCount: contributors.length,
            contributors,
          }),
        );
        await publish(`datanets.snapshot.published.${subjectToken(datanetId)}`, e.json, e.id);
      }
      const adapterIds: string[] = [];
      for (let a = 0; a < ADAPTERS; a += 1) {
        const adapterId = `llama-3-8b:creator${a % 2000}/adapter-${a}`;
        adapterIds.push(adapterId);
        const n = int(1, 3);
        const picks = new Set<number>();
        while (picks.size < n) picks.add(int(0, DATANETS - 1));
        const mix = n === 1 ? [10_000] : n === 2 ? [6000, 4000] : [5000, 3000, 2000];
        const trainedOn = [...picks].map((d, i) => ({
          datanetId: `curator${d % 97}/set-${d}`,
          snapshotId: 's1',
          mixWeightBps: mix[i],
        }));
        const e = envelope(
          'adapters.registered',
          T0,
          JSON.stringify({
            adapterId,
            baseModel: 'llama-3-8b',
            ownerTenantId: `tenant-${a % TENANTS}`,
            name: `Adapter ${a}`,
            visibility: 'public',
            pricePer1kTokens: `${int(1, 999)}000000000000000`,
            creatorAddress: addr(0xcc, a % 2000),
            rank: 16,
            targetModules: ['q_proj', 'v_proj'],
            weightsSha256: 'ab'.repeat(32),
            sizeBytes: 1_000_000,
            weightsObjectKey: `adapters/${a}.safetensors`,
            trainedOn,
          }),
        );
        await publish(`adapters.registered.${subjectToken(adapterId)}`, e.json, e.id);
      }

      // Inferences: Zipf-like popularity, 10 epoch markers, ~10 hours of traffic.
      const perEpoch = Math.floor(EVENTS / EPOCHS);
      let ms = T0 + 60_000;
      for (let i = 0; i < EVENTS; i += 1) {
        ms += int(0, 72);
        const requestId = `r${i}`;
        const adapterId = adapterIds[Math.floor(ADAPTERS * rand() ** 3)]!;
        const completion = int(1, 1500);
        const total = int(30, 9000);
        const e = envelope(
          'inference.completed',
          ms,
          `{"requestId":"${requestId}","tenantId":"tenant-${int(0, TENANTS - 1)}","model":"llama-3-8b","adapterId":"${adapterId}","promptTokens":${int(1, 3000)},"completionTokens":${completion},"timings":{"queuedMs":5,"firstTokenMs":${Math.min(total, 40)},"totalMs":${total}},"startedAt":"${new Date(ms - total).toISOString()}","endedAt":"${new Date(ms).toISOString()}","workerId":"w${int(0, 31)}","operatorAddress":"${addr(0x0a, int(0, OPERATORS - 1))}","finishReason":"stop"}`,
        );
        await publish(`inference.completed.${requestId}`, e.json, e.id);
        if ((i + 1) % perEpoch === 0) {
          const epoch = (i + 1) / perEpoch - 1;
          const m = envelope(
            'inference.epoch_closing',
            ms,
            `{"epoch":${epoch},"nextPolicyVersion":${epoch + 1 >= 5 ? 2 : 1}}`,
          );
          await publish(`inference.epoch_closing.${epoch}`, m.json, m.id);
        }
      }
      await Promise.all(inFlight);
    }
    const publishSeconds = (performance.now() - genStart) / 1000;
    const info = await (await conn.jsm()).streams.info('INFERENCE');
    console.log(
      `published ${info.state.messages} INFERENCE messages (${mb(info.state.bytes)} MiB) in ${publishSeconds.toFixed(1)} s`,
    );

    // The publish leaves hundreds of MiB of the stream's files dirty in the page cache; written back
    // during the replay, they compete with PostgreSQL's WAL writes and fsyncs (measured: the first
    // quarter of the replay took 19.8 s right after a publish, 14.8 s on the same stream later).
    // Flushed here, the replay measures itself, not the setup's write-back.
    const syncStart = performance.now();
    execSync('sync');
    console.log(`sync after the publish: ${((performance.now() - syncStart) / 1000).toFixed(1)} s`);

    // Replay, with RSS at 25/50/75/100 % of the INFERENCE events.
    const marks = [0.25, 0.5, 0.75, 1].map((f) => Math.floor(f * EVENTS));
    const rss: { percent: number; events: number; rssMiB: number; heapUsedMiB: number; elapsedS: number }[] =
      [];
    const replayStart = performance.now();
    let inferenceStart = 0;
    let inferenceEnd = 0; // after the last INFERENCE batch commits (the state hash is timed apart)
    let peakRss = 0; // bytes, sampled after every batch
    const result = await replayAttribution({
      conn,
      connectionString: databaseUrl,
      batchSize: BATCH,
      onFactsApplied: () => {
        inferenceStart = performance.now();
      },
      onProgress: (read) => {
        inferenceEnd = performance.now();
        peakRss = Math.max(peakRss, process.memoryUsage.rss());
        while (rss.length < marks.length && read >= marks[rss.length]!) {
          const m = process.memoryUsage();
          rss.push({
            percent: (rss.length + 1) * 25,
            events: read,
            rssMiB: mb(m.rss),
            heapUsedMiB: mb(m.heapUsed),
            elapsedS: (performance.now() - replayStart) / 1000,
          });
          console.log(
            `${rss.at(-1)!.percent}%: ${read} events, rss ${rss.at(-1)!.rssMiB} MiB, heap ${rss.at(-1)!.heapUsedMiB} MiB`,
          );
        }
      },
    });
    const totalSeconds = (performance.now() - replayStart) / 1000;
    const inferenceEvents = result.events['INFERENCE'] ?? 0;
    const out = {
      benchmark: 'attribution replay from JetStream into PostgreSQL projections',
      command: `node ${process.execArgv.join(' ')} bench/attribution.ts ${EVENTS}`,
      date: started.toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        natsServer: safe(() => execSync('nats-server --version').toString().trim()),
        postgres: safe(() =>
          execSync('postgres --version 2>/dev/null || ls /usr/lib/postgresql').toString().trim(),
        ),
        note: 'NATS, PostgreSQL and the replay on the same machine',
        loadAverage1m: { before: LOAD_BEFORE, after: round1(os.loadavg()[0]!) },
        nodeFlags: process.execArgv.filter((a) => a.startsWith('--max-semi-space-size')),
        postgresSettings: process.env['DATABASE_URL'] ? 'external (DATABASE_URL)' : PG_SETTINGS,
      },
      workload: {
        inferenceEvents: EVENTS,
        epochMarkers: EPOCHS,
        adapters: ADAPTERS,
        datanets: DATANETS,
        contributors: DATANETS * CONTRIBUTORS_PER_DATANET,
        tenants: TENANTS,
        operators: OPERATORS,
        batchSize: BATCH,
      },
      publish: { seconds: round(publishSeconds), inferenceStreamMiB: mb(info.state.bytes) },
      replay: {
        totalSeconds: round(totalSeconds),
        factsSeconds: round((inferenceStart - replayStart) / 1000),
        inferenceSeconds: round((inferenceEnd - inferenceStart) / 1000),
        stateHashSeconds: round((performance.now() - inferenceEnd) / 1000),
        inferenceEventsPerSecond: Math.round(inferenceEvents / ((inferenceEnd - inferenceStart) / 1000)),
        overallEventsPerSecond: Math.round(
          Object.values(result.events).reduce((a, b) => a + b, 0) / totalSeconds,
        ),
        events: result.events,
        stateHash: result.hash.sha256,
        tables: result.hash.tables,
      },
      memory: rss,
      peakReplayRssMiB: mb(peakRss),
    };
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
    // The replayed schema was only needed for its hash; repeated replays on kept servers must not pile up.
    const admin = createDatabase<unknown>({ connectionString: databaseUrl, schema: 'public', poolSize: 1 });
    try {
      await sql`drop schema ${sql.id(result.schema)} cascade`.execute(admin.db);
    } finally {
      await admin.destroy();
    }
    console.log(
      JSON.stringify(
        {
          replay: { ...out.replay, tables: undefined },
          memory: out.memory,
          peakReplayRssMiB: out.peakReplayRssMiB,
        },
        null,
        2,
      ),
    );
  } finally {
    await conn.close();
    if (KEEP_SERVERS && (ownNats || ownPg)) {
      console.log(`servers kept (${KEEP_SERVERS}); Ctrl-C stops them`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    await ownNats?.stop();
    await ownPg?.destroy();
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return 'unknown';
  }
}

await main();
