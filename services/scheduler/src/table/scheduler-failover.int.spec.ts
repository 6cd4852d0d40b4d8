/**
 * Two schedulers in one process over a real nats-server: one lease, terms as fencing tokens.
 * The workers here are three heartbeats in the `workers` bucket and three command handlers that
 * keep the highest term they have seen, as the gpu-worker does (its own handler runs in the e2e
 * tests); everything else is the scheduler's real code on real KV buckets.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  KV_BUCKETS,
  PlacementEntrySchema,
  SCHEDULER_PLACE_SUBJECT,
  WorkerAdapterCommandSchema,
  workerAdaptersSubject,
  type PlaceReply,
  type PlacementEntry,
  type WorkerAdapterReply,
} from '@longtail/contracts';
import {
  connectMessaging,
  createCommandClient,
  provision,
  serveCommand,
  type CommandServer,
  type MessagingConnection,
} from '@longtail/messaging';
import { longtailProvisionSpec } from '@longtail/service';
import { startNatsServer, waitFor, type NatsServer } from '@longtail/testenv';
import { SchedulerRole } from './scheduler-node.js';

const logger = pino({ level: 'silent' });
const WORKERS = ['w1', 'w2', 'w3'];
const BASE = 'tiny';
const TTL_MS = 1500;
const RENEW_MS = 300;

interface Command {
  readonly worker: string;
  readonly op: string;
  readonly adapterId: string;
  readonly term: number;
  readonly accepted: boolean;
}

describe('scheduler lease and fencing', () => {
  let nats: NatsServer;
  let conn: MessagingConnection;
  let placements: KV;
  let heartbeats: NodeJS.Timeout;
  const servers: CommandServer[] = [];
  const commands: Command[] = [];
  const roles: SchedulerRole[] = [];
  const alive = new Set(WORKERS);

  const role = async (holder: string, c: MessagingConnection = conn) => {
    const r = new SchedulerRole(c, createCommandClient(c), () => Promise.resolve(null), {
      holder,
      leaseTtlMs: TTL_MS,
      leaseRenewMs: RENEW_MS,
      workerLivenessMs: 1000,
    }, logger);
    roles.push(r);
    await r.start();
    return r;
  };
  const active = () => roles.filter((r) => r.table !== undefined && r.lease?.term != null);
  const place = (adapterId: string) =>
    createCommandClient(conn).request<PlaceReply>(SCHEDULER_PLACE_SUBJECT, { adapterId, baseModel: BASE });
  /** Every write to the placements bucket so far, in revision order. */
  const history = async (): Promise<Array<{ key: string; revision: number; entry: PlacementEntry | null }>> => {
    const out: Array<{ key: string; revision: number; entry: PlacementEntry | null }> = [];
    const it = await placements.history();
    for await (const e of it) {
      out.push({ key: e.key, revision: e.revision, entry: e.operation === 'PUT' ? PlacementEntrySchema.parse(e.json()) : null });
      if (e.delta === 0) break;
    }
    return out.sort((a, b) => a.revision - b.revision);
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    conn = await connectMessaging({ servers: nats.url, name: 'scheduler-failover-test' });
    await provision(conn, longtailProvisionSpec(1));
    const kvm = new Kvm(conn.nc);
    placements = await kvm.open(KV_BUCKETS.placements.bucket);
    const workersKv = await kvm.open(KV_BUCKETS.workers.bucket);
    const beat = () =>
      Promise.all(
        [...alive].map((id) =>
          workersKv.put(
            id,
            JSON.stringify({ version: 1, workerId: id, baseModel: BASE, state: 'serving', inFlight: 0, queueDepth: 0, residentAdapters: [], adapterSlots: 64 }),
          ),
        ),
      );
    await beat();
    heartbeats = setInterval(() => void beat(), 200);
    for (const id of WORKERS) {
      let highest = 0;
      servers.push(
        serveCommand(conn, workerAdaptersSubject(id), (payload): WorkerAdapterReply => {
          const c = WorkerAdapterCommandSchema.parse(payload);
          const accepted = c.term >= highest;
          commands.push({ worker: id, op: c.op, adapterId: c.adapterId, term: c.term, accepted });
          if (!accepted) return { ok: false, code: 'STALE_TERM', message: `seen ${highest}` };
          highest = c.term;
          return { ok: true };
        }),
      );
    }
  });

  beforeEach(async () => {
    await Promise.all(roles.splice(0).map((r) => r.stop()));
  });

  afterAll(async () => {
    clearInterval(heartbeats);
    await Promise.all(roles.map((r) => r.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    await conn?.close();
    await nats?.stop();
  });

  it('given two schedulers, one is active; a place request gets an entry stamped with its term and a load command', async () => {
    const [a, b] = [await role('sched-a'), await role('sched-b')];
    await waitFor(() => active().length === 1, { timeoutMs: 5000, what: 'one active scheduler' });
    const leader = active()[0]!;
    expect([a, b].filter((r) => r.table !== undefined)).toHaveLength(1);
    const term = leader.lease!.term!;

    const reply = await place(`${BASE}:acme/one`);
    expect(reply.ok).toBe(true);
    const entry = (reply as Extract<PlaceReply, { ok: true }>).entry;
    expect(entry).toMatchObject({ adapterId: `${BASE}:acme/one`, baseModel: BASE, term });
    expect(entry.workers).toHaveLength(1);
    expect(WORKERS).toContain(entry.workers[0]);
    const stored = PlacementEntrySchema.parse((await placements.get('tiny_3Aacme_2Fone'))!.json());
    expect(stored).toEqual(entry);
    await waitFor(() => commands.some((c) => c.op === 'load' && c.adapterId === entry.adapterId), {
      timeoutMs: 2000,
      what: 'the load command',
    });
    expect(commands.find((c) => c.adapterId === entry.adapterId)).toMatchObject({ worker: entry.workers[0], term });
    // The same adapter again: the same entry, no new decision.
    expect(await place(`${BASE}:acme/one`)).toEqual(reply);
    // Bad input: a clear refusal, nothing written.
    expect(await place('other:acme/one')).toMatchObject({ ok: false, code: 'INVALID' });
  });

  it('given the active scheduler paused, the standby takes over within a few seconds under a higher term, and the paused one steps down when it wakes', async () => {
    await role('sched-a');
    await waitFor(() => active().length === 1, { timeoutMs: 5000, what: 'a is active' });
    const b = await role('sched-b');
    const a = roles[0]!;
    const firstTerm = a.lease!.term!;
    for (let i = 0; i < 20; i++) expect((await place(`${BASE}:acme/p${i}`)).ok).toBe(true);

    a.lease!.halt(); // a long GC pause, a stopped container: no renewals, no release
    const t0 = Date.now();
    await waitFor(() => b.table !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'b takes over' });
    const takeoverMs = Date.now() - t0;
    expect(takeoverMs).toBeLessThan(TTL_MS + 2 * RENEW_MS + 500);
    const secondTerm = b.table!.term;
    expect(secondTerm).toBeGreaterThan(firstTerm);
    // The paused one already knows by its own clock that its lease ran out: it acts no more.
    expect(a.lease!.term).toBeNull();

    // b re-stamped the table it adopted, and places new adapters under its term.
    await waitFor(
      async () => (await history()).filter((h) => h.entry?.term === secondTerm).length >= 20,
      { timeoutMs: 5000, what: 'entries re-stamped with the new term' },
    );
    a.lease!.start(); // wakes up
    await waitFor(() => a.table === undefined, { timeoutMs: 3000, what: 'a steps down' });
    expect(active()).toEqual([b]);
    expect(await place(`${BASE}:acme/p3`)).toMatchObject({ ok: true, entry: { term: secondTerm } });
    expect(await place(`${BASE}:acme/new`)).toMatchObject({ ok: true, entry: { term: secondTerm } });

    // No key was ever written by a lower term after a higher one, and no worker took a command
    // from the old term once it had seen the new one.
    const seen = new Map<string, number>();
    for (const h of await history()) {
      if (h.entry === null) continue;
      expect(h.entry.term).toBeGreaterThanOrEqual(seen.get(h.key) ?? 0);
      seen.set(h.key, h.entry.term);
    }
    for (const id of WORKERS) {
      const mine = commands.filter((c) => c.worker === id && c.accepted);
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.term).toBeGreaterThanOrEqual(mine[i - 1]!.term);
    }
  }, 20_000);

  it('given a scheduler whose clock lets it write after losing the lease, its compare-and-set fails and it is fenced', async () => {
    const a = await role('sched-a');
    await waitFor(() => a.table !== undefined, { timeoutMs: 5000, what: 'a is active' });
    expect((await place(`${BASE}:acme/fence`)).ok).toBe(true);
    const staleTable = a.table!;
    const staleTerm = staleTable.term;
    // Kill a's lease loop (as a crash would) and let b take over and re-stamp the entry.
    a.lease!.halt();
    const b = await role('sched-b');
    await waitFor(async () => {
      const e = await placements.get('tiny_3Aacme_2Ffence');
      return b.table !== undefined && e !== null && PlacementEntrySchema.parse(e.json()).term === b.table.term;
    }, { timeoutMs: 10_000, what: 'b re-stamps the entry' });
    // a's table is still running (its lease loop is dead, so nobody told it); a skewed clock
    // would let it pass its own expiry check. Its write must still lose on the KV revision.
    Object.defineProperty(a.lease!, 'term', { get: () => staleTerm });
    const fenced = new Promise<void>((resolve) => {
      const stop = staleTable.stop.bind(staleTable);
      staleTable.stop = () => (resolve(), stop());
    });
    // A worker leaving makes it re-place that worker's adapters: a write to the same key.
    const holder = PlacementEntrySchema.parse((await placements.get('tiny_3Aacme_2Ffence'))!.json()).workers[0]!;
    alive.delete(holder);
    try {
      await fenced;
    } finally {
      alive.add(holder);
    }
    const entry = PlacementEntrySchema.parse((await placements.get('tiny_3Aacme_2Ffence'))!.json());
    expect(entry.term).toBe(b.table!.term);
  }, 20_000);

  it('given the active scheduler gone (connection closed), the standby takes over', async () => {
    const lonely = await connectMessaging({ servers: nats.url, name: 'doomed-scheduler' });
    const a = await role('sched-a', lonely);
    await waitFor(() => a.table !== undefined, { timeoutMs: 5000, what: 'a is active' });
    const b = await role('sched-b');
    await lonely.close(); // the process died: no release
    a.lease!.halt();
    const t0 = Date.now();
    await waitFor(() => b.table !== undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'b takes over' });
    expect(Date.now() - t0).toBeLessThan(TTL_MS + 2 * RENEW_MS + 500);
    expect((await place(`${BASE}:acme/after`)).ok).toBe(true);
  }, 20_000);
});
