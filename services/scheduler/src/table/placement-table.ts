/**
 * The active scheduler's work under one lease term: drives the pure placement core
 * (`../placement`) from the worker registry and from demand, publishes the result as
 * `PlacementEntry`s in the `placements` KV bucket, tells workers to load (prefetch) or evict
 * adapters, and answers place requests for adapters that have no entry.
 *
 * - Demand: every `inference.completed` event, read on core NATS as JetStream stores it (no
 *   durable consumer: demand is a rate, a missed event only delays a replica by a moment). The
 *   event names the worker that served the request, so the core counts load where it really ran.
 * - Fencing: every entry and command carries the term. Entries are written by compare-and-set on
 *   the revision this scheduler last saw; a refused write whose current entry has a higher term,
 *   or a `STALE_TERM` reply from a worker, means a newer scheduler is active: this one stops at
 *   once (`onFenced`). Nothing is written once the lease's own expiry has passed.
 * - Takeover: a new term first adopts the table it finds (replicas on live workers are kept, the
 *   entry rewritten with the new term, a load sent to confirm), then deletes entries left with no
 *   live worker, so gateways fall back to a place request for those.
 */
import { performance } from 'node:perf_hooks';
import type { KV } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import {
  PlaceRequestSchema,
  PlacementEntrySchema,
  SCHEDULER_PLACE_SUBJECT,
  SCHEDULER_PLACEMENT_VIEW_SUBJECT,
  subjectToken,
  WorkerAdapterReplySchema,
  workerAdaptersSubject,
  type PlaceReply,
  type PlacementEntry,
  type PlacementView,
  type WorkerAdapterCommand,
} from '@longtail/contracts';
import { serveCommand, type CommandClient, type CommandServer, type MessagingConnection } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import { Placement, PlacementError, type Decision, type PlacementOptions } from '../placement/index.js';
import { DEFAULT_ADAPTER_SLOTS, type Heartbeat, type WorkerRegistry } from '../registry/worker-registry.js';

export interface PlacementTableDeps {
  readonly conn: MessagingConnection;
  readonly commands: CommandClient;
  readonly placements: KV;
  readonly registry: WorkerRegistry;
  /** The lease's current term (null once it ran out or was lost): checked before every write. */
  readonly leaseTerm: () => number | null;
  readonly holder: string;
  /** The adapter's weights sha256 from the catalog (null: a worker-local adapter). */
  readonly adapterSha256: (adapterId: string) => Promise<string | null>;
  readonly logger: Logger;
  /** A newer term exists: the caller stops this table. */
  readonly onFenced: (newerTerm: number | null) => void;
  readonly placement?: PlacementOptions;
}

/** Upkeep interval (replicas whose demand fell), ms. */
const TICK_MS = 1000;

export class PlacementTable {
  readonly term: number;
  readonly #d: PlacementTableDeps;
  readonly #core: Placement;
  readonly #pending: Decision[] = [];
  /** KV key → revision of the entry as this table last wrote or read it. */
  readonly #revisions = new Map<string, number>();
  /** adapterId → entry as last written. */
  readonly #entries = new Map<string, PlacementEntry>();
  readonly #servers: CommandServer[] = [];
  #demand: Subscription | undefined;
  #unsubscribe: (() => void) | undefined;
  #tick: NodeJS.Timeout | undefined;
  #committing: Promise<void> = Promise.resolve();
  #commitScheduled = false;
  #stopped = false;
  readonly #stats = { requests: 0, hits: 0, loads: 0, evictions: 0, decisions: {} as Record<string, number> };

  constructor(term: number, deps: PlacementTableDeps) {
    this.term = term;
    this.#d = deps;
    this.#core = new Placement({ ...deps.placement, onDecision: (d) => void this.#pending.push(d) });
  }

  get nc(): NatsConnection {
    return this.#d.conn.nc;
  }

  /** Adopts the registry and the published table, then starts serving. */
  async start(): Promise<void> {
    const now = this.#now();
    const t0 = performance.now();
    for (const w of this.#d.registry.live()) this.#join(w.heartbeat);
    this.#unsubscribe = this.#d.registry.subscribe({
      joined: (h) => this.#join(h),
      left: (id) => {
        if (!this.#core.workerIds().includes(id)) return;
        const t0 = performance.now();
        const moved = this.#core.residents(id).length;
        this.#core.removeWorker(id, this.#now());
        void this.#commit().then(() =>
          this.#d.logger.info(
            { workerId: id, adapters: moved, ms: Math.round(performance.now() - t0) },
            'placements moved off a departed worker',
          ),
        );
      },
    });
    const orphans = await this.#adopt(now);
    await this.#commit();
    await Promise.all(orphans.map((id) => this.#write(id)));
    if (this.#stopped) return;
    this.#demand = this.nc.subscribe('inference.completed.>', {
      callback: (err, msg) => {
        if (err === null) this.#served(msg.json());
      },
    });
    const logger = this.#d.logger;
    this.#servers.push(
      serveCommand(this.#d.conn, SCHEDULER_PLACE_SUBJECT, (p) => this.place(p), { logger }),
      serveCommand(this.#d.conn, SCHEDULER_PLACEMENT_VIEW_SUBJECT, () => this.view(), { logger }),
    );
    this.#tick = setInterval(() => {
      this.#core.tick(this.#now());
      this.#scheduleCommit();
    }, TICK_MS);
    await this.nc.flush(); // the server knows our subscriptions before anyone is told we are active
    logger.info(
      { term: this.term, adapters: this.#entries.size, ms: Math.round(performance.now() - t0) },
      'placement table active',
    );
  }

  /** Stops acting: no more writes, commands or answers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#tick);
    this.#unsubscribe?.();
    this.#demand?.unsubscribe();
    await Promise.all(this.#servers.map((s) => s.stop()));
    await this.#committing;
  }

  /** A gateway's place request for an adapter it has no entry for. */
  async place(payload: unknown): Promise<PlaceReply> {
    const parsed = PlaceRequestSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, code: 'INVALID', message: parsed.error.message };
    const { adapterId, baseModel } = parsed.data;
    if (!adapterId.startsWith(`${baseModel}:`))
      return { ok: false, code: 'INVALID', message: `${adapterId} is not an adapter of ${baseModel}` };
    if (!this.#mayAct()) {
      // Our lease ran out (we were paused, or cut off from NATS): stop answering, so the next
      // try reaches the active scheduler.
      this.#fence(null);
      return { ok: false, code: 'NOT_ACTIVE', message: `term ${this.term} is over` };
    }
    const known = this.#entries.get(adapterId);
    if (known !== undefined && this.#core.replicasOf(adapterId).length > 0) return { ok: true, entry: known };
    const now = this.#now();
    this.#ensureAdapter(adapterId, baseModel);
    try {
      this.#core.prefetch(adapterId, now, 1);
      if (this.#core.replicasOf(adapterId).length === 0) {
        // Every worker at the load cap: the core's last resort places it anyway.
        this.#core.complete(adapterId, this.#core.route(adapterId, now));
      }
    } catch (err) {
      if (err instanceof PlacementError && err.code === 'NO_WORKER')
        return { ok: false, code: 'NO_WORKERS', message: err.message };
      throw err;
    }
    await this.#commit();
    const entry = this.#entries.get(adapterId);
    if (entry === undefined)
      return { ok: false, code: 'NOT_ACTIVE', message: `the entry for ${adapterId} was not written` };
    return { ok: true, entry };
  }

  /** The operator's view. */
  view(): PlacementView {
    const now = this.#now();
    const workers = this.#core.workerIds().map((id) => {
      const h = this.#d.registry.get(id)?.heartbeat;
      return {
        workerId: id,
        baseModel: h?.baseModel ?? '',
        adapters: this.#core.residents(id).length,
        residentAdapters: h?.residentAdapters.length ?? 0,
        adapterSlots: h?.adapterSlots ?? DEFAULT_ADAPTER_SLOTS,
        load: Math.round(this.#core.load(id, now) * 100) / 100,
        loadCap: this.#core.loadCap(id, now),
        inFlight: h?.inFlight ?? 0,
        queueDepth: h?.queueDepth ?? 0,
        pool: h?.pool ? { pagesTotal: h.pool.pagesTotal, pagesFree: h.pool.pagesFree } : null,
        kv: h?.kv ? { blocksTotal: h.kv.blocksTotal, blocksFree: h.kv.blocksFree } : null,
      };
    });
    const replicated = [...this.#entries.values()]
      .filter((e) => e.workers.length > 1)
      .map((e) => ({ adapterId: e.adapterId, workers: e.workers }));
    const s = this.#stats;
    return {
      term: this.term,
      holder: this.#d.holder,
      workers,
      adaptersPlaced: this.#entries.size,
      replicated,
      requests: s.requests,
      hits: s.hits,
      hitRate: s.requests === 0 ? null : s.hits / s.requests,
      loads: s.loads,
      evictions: s.evictions,
      decisions: { ...s.decisions },
    };
  }

  // ---------------------------------------------------------------- inputs

  #now(): number {
    return performance.now() / 1000;
  }

  #join(h: Heartbeat): void {
    if (this.#core.workerIds().includes(h.workerId)) return;
    this.#core.addWorker({ id: h.workerId, baseModel: h.baseModel, poolPages: h.adapterSlots ?? DEFAULT_ADAPTER_SLOTS });
  }

  #ensureAdapter(adapterId: string, baseModel: string): void {
    if (!this.#core.hasAdapter(adapterId)) this.#core.addAdapter({ id: adapterId, baseModel });
  }

  #served(event: unknown): void {
    const data = (event as { data?: { adapterId?: unknown; workerId?: unknown; model?: unknown } } | null)?.data;
    if (typeof data?.adapterId !== 'string' || typeof data.workerId !== 'string' || typeof data.model !== 'string')
      return;
    if (!data.adapterId.startsWith(`${data.model}:`)) return;
    this.#ensureAdapter(data.adapterId, data.model);
    this.#stats.requests += 1;
    if (this.#core.replicasOf(data.adapterId).includes(data.workerId)) this.#stats.hits += 1;
    this.#core.served(data.adapterId, data.workerId, this.#now());
    this.#scheduleCommit();
  }

  /** Reads the table a previous term published; returns the adapters whose entry must go. */
  async #adopt(now: number): Promise<string[]> {
    const kv = this.#d.placements;
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const orphans: string[] = [];
    const read = [];
    // In parallel: a takeover under load must not pay one round trip per adapter in a row.
    for (let i = 0; i < keys.length; i += 256) read.push(...(await Promise.all(keys.slice(i, i + 256).map((k) => kv.get(k)))));
    for (const [i, key] of keys.entries()) {
      const e = read[i] ?? null;
      if (e === null || e.operation !== 'PUT') continue;
      const parsed = PlacementEntrySchema.safeParse(e.json());
      this.#revisions.set(key, e.revision);
      if (!parsed.success) continue;
      const entry = parsed.data;
      if (entry.term > this.term) {
        this.#fence(entry.term);
        return [];
      }
      this.#core.adopt({ id: entry.adapterId, baseModel: entry.baseModel }, entry.workers, now);
      if (this.#core.replicasOf(entry.adapterId).length === 0) orphans.push(entry.adapterId);
    }
    return orphans;
  }

  // ---------------------------------------------------------------- outputs

  #mayAct(): boolean {
    return !this.#stopped && this.#d.leaseTerm() === this.term;
  }

  #fence(newerTerm: number | null): void {
    if (this.#stopped) return;
    this.#d.logger.warn({ term: this.term, newerTerm }, 'fenced by a newer scheduler term: stepping down');
    this.#d.onFenced(newerTerm);
  }

  #scheduleCommit(): void {
    if (this.#commitScheduled) return;
    this.#commitScheduled = true;
    setTimeout(() => {
      this.#commitScheduled = false;
      void this.#commit();
    }, 5);
  }

  /** Publishes the decisions taken so far: entries first, then the workers' commands. Serialized. */
  #commit(): Promise<void> {
    this.#committing = this.#committing.then(async () => {
      const decisions = this.#pending.splice(0, this.#pending.length);
      if (decisions.length === 0 || !this.#mayAct()) return;
      const dirty = new Map<string, number>();
      for (const d of decisions) {
        dirty.set(d.adapter, d.seq);
        this.#stats.decisions[d.kind] = (this.#stats.decisions[d.kind] ?? 0) + 1;
      }
      const ids = [...dirty.keys()];
      for (let i = 0; i < ids.length; i += 64)
        await Promise.all(ids.slice(i, i + 64).map((id) => this.#write(id, dirty.get(id)!)));
      for (const d of decisions) {
        if (d.kind === 'place' || d.kind === 'replicate') void this.#command('load', d.adapter, d.worker);
        else if (d.reason !== 'worker-left') void this.#command('evict', d.adapter, d.worker);
      }
    }).catch((err: unknown) => this.#d.logger.error({ err }, 'placement commit failed'));
    return this.#committing;
  }

  /** Writes (or deletes) one adapter's entry by compare-and-set on its last known revision. */
  async #write(adapterId: string, seq = 0): Promise<void> {
    const kv = this.#d.placements;
    const key = subjectToken(adapterId);
    for (let attempt = 0; attempt < 4; attempt++) {
      if (!this.#mayAct()) return;
      const workers = this.#core.hasAdapter(adapterId) ? this.#core.replicasOf(adapterId) : [];
      const revision = this.#revisions.get(key);
      try {
        if (workers.length === 0) {
          if (revision !== undefined) await kv.delete(key, { previousSeq: revision });
          this.#revisions.delete(key);
          this.#entries.delete(adapterId);
          return;
        }
        const baseModel = adapterId.slice(0, adapterId.indexOf(':'));
        const entry: PlacementEntry = {
          version: 1,
          adapterId,
          baseModel,
          workers,
          term: this.term,
          seq,
          updatedAt: new Date().toISOString(),
        };
        const value = JSON.stringify(entry);
        const next = revision === undefined ? await kv.create(key, value) : await kv.update(key, value, revision);
        this.#revisions.set(key, next);
        this.#entries.set(adapterId, entry);
        return;
      } catch {
        // Refused: someone else wrote the key. A higher term is a newer scheduler; otherwise
        // (our own earlier write, a delete marker) retry on the current revision.
        const current = await kv.get(key);
        if (current === null || current.operation !== 'PUT') {
          if (current === null) this.#revisions.delete(key);
          else this.#revisions.set(key, current.revision);
          if (workers.length === 0) return;
          continue;
        }
        const parsed = PlacementEntrySchema.safeParse(current.json());
        if (parsed.success && parsed.data.term > this.term) return this.#fence(parsed.data.term);
        this.#revisions.set(key, current.revision);
      }
    }
    this.#d.logger.warn({ adapterId }, 'placement entry not written after retries');
  }

  async #command(op: 'load' | 'evict', adapterId: string, workerId: string): Promise<void> {
    if (!this.#mayAct()) return;
    const command: WorkerAdapterCommand = {
      op,
      adapterId,
      adapterSha256: op === 'load' ? await this.#d.adapterSha256(adapterId) : null,
      term: this.term,
    };
    if (op === 'load') this.#stats.loads += 1;
    else this.#stats.evictions += 1;
    try {
      const reply = WorkerAdapterReplySchema.parse(
        await this.#d.commands.request(workerAdaptersSubject(workerId), command, { timeoutMs: 30_000 }),
      );
      if (!reply.ok && reply.code === 'STALE_TERM') this.#fence(null);
      else if (!reply.ok)
        this.#d.logger.warn({ op, adapterId, workerId, code: reply.code, message: reply.message }, 'worker refused');
    } catch (err) {
      this.#d.logger.warn({ op, adapterId, workerId, err: (err as Error).message }, 'worker command failed');
    }
  }
}
