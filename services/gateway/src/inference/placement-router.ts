/**
 * Routing by the scheduler's placement table. A local watch of the `placements` KV bucket holds
 * every `PlacementEntry`; an adapter request goes to the live workers of its entry first (no
 * round trip), the least loaded first, then to every other live worker as the fallback the
 * inference client walks when one refuses or is gone. A miss (no entry, or none of its workers
 * alive) costs one place request to the active scheduler; when no scheduler answers, the request
 * is routed by heartbeats alone and the scheduler is not asked again for `SCHEDULER_BACKOFF_MS`.
 *
 * Fencing: a write stamped with a term lower than the highest this gateway has seen comes from a
 * scheduler that lost its lease, and is ignored.
 *
 * Load among an entry's workers: this gateway's own count of requests routed to each worker,
 * decayed with a 10 s half-life, the same measure the scheduler's bounded-load cap uses, so what
 * the scheduler assumes about spreading over replicas is what the gateway does.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import {
  KV_BUCKETS,
  PlacementEntrySchema,
  SCHEDULER_PLACE_SUBJECT,
  workerGenerateSubject,
  type PlaceReply,
  type PlacementEntry,
} from '@longtail/contracts';
import { CommandClient, MESSAGING_CONNECTION, type MessagingConnection } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import { GATEWAY_LOGGER } from '../logger.token.js';
import { HeartbeatWorkerRouter, type WorkerRoute, type WorkerRouter } from './worker-router.js';

/** After a place request found no scheduler, route by heartbeats for this long (ms). */
const SCHEDULER_BACKOFF_MS = 1000;
const PLACE_TIMEOUT_MS = 2000;
/** Half-life of the per-worker routed-request count (s), as the scheduler's load counter. */
const LOAD_HALF_LIFE_S = 10;

@Injectable()
export class PlacementWorkerRouter implements WorkerRouter, OnApplicationBootstrap, OnModuleDestroy {
  /** adapterId → its entry. */
  readonly #entries = new Map<string, PlacementEntry>();
  /** KV key → adapterId (a delete names only the key). */
  readonly #keys = new Map<string, string>();
  #maxTerm = 0;
  readonly #placing = new Map<string, Promise<PlacementEntry | null>>();
  #schedulerAwayUntil = 0;
  /** workerId → decayed routed requests as score · 2^(t/half-life) (one time base, no per-worker decay). */
  readonly #load = new Map<string, number>();
  #t0 = performance.now() / 1000;
  #turn = 0;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  readonly stats = { hits: 0, misses: 0, fallbacks: 0 };

  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    private readonly heartbeats: HeartbeatWorkerRouter,
    private readonly commands: CommandClient,
    @Inject(GATEWAY_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const kv = await new Kvm(this.conn.nc).open(KV_BUCKETS.placements.bucket);
    this.#watch = await kv.watch();
    void this.follow(this.#watch);
  }

  onModuleDestroy(): void {
    this.#watch?.stop();
  }

  async route(baseModel: string, adapterId: string | null): Promise<readonly WorkerRoute[]> {
    const fallback = this.heartbeats.route(baseModel, adapterId) as readonly WorkerRoute[];
    if (adapterId === null) return fallback;
    const live = this.heartbeats.liveIds(baseModel);
    let placed = this.#placed(adapterId, live);
    if (placed.length > 0) this.stats.hits++;
    else {
      this.stats.misses++;
      const entry = await this.#place(adapterId, baseModel);
      placed = entry === null ? [] : this.#placed(adapterId, live);
      if (placed.length === 0) {
        this.stats.fallbacks++;
        return fallback;
      }
    }
    const first = this.#leastLoaded(placed);
    this.#count(first);
    const order = [first, ...placed.filter((w) => w !== first)];
    const inEntry = new Set(order);
    return [
      ...order.map((workerId) => ({ workerId, subject: workerGenerateSubject(workerId) })),
      ...fallback.filter((r) => !inEntry.has(r.workerId)),
    ];
  }

  models(): { readonly baseModels: readonly string[]; readonly adapters: readonly string[] } {
    return this.heartbeats.models();
  }

  knows(baseModel: string): boolean {
    return this.heartbeats.knows(baseModel);
  }

  /** The adapter's entry as this gateway holds it (tests and the operator view read it). */
  entry(adapterId: string): PlacementEntry | undefined {
    return this.#entries.get(adapterId);
  }

  #placed(adapterId: string, live: ReadonlySet<string>): string[] {
    return (this.#entries.get(adapterId)?.workers ?? []).filter((w) => live.has(w));
  }

  #leastLoaded(workers: readonly string[]): string {
    const turn = this.#turn++;
    let best = workers[turn % workers.length]!;
    let bestLoad = this.#load.get(best) ?? 0;
    for (const w of workers) {
      const load = this.#load.get(w) ?? 0;
      if (load < bestLoad) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  #count(workerId: string): void {
    const now = performance.now() / 1000;
    let weight = 2 ** ((now - this.#t0) / LOAD_HALF_LIFE_S);
    if (weight > 1e9) {
      // Far in: move the time base (every score divided alike, so the ranking is unchanged).
      for (const [w, v] of this.#load) this.#load.set(w, v / weight);
      this.#t0 = now;
      weight = 1;
    }
    this.#load.set(workerId, (this.#load.get(workerId) ?? 0) + weight);
  }

  /** One place request per adapter at a time; null when no scheduler could answer. */
  #place(adapterId: string, baseModel: string): Promise<PlacementEntry | null> {
    if (performance.now() < this.#schedulerAwayUntil) return Promise.resolve(null);
    let pending = this.#placing.get(adapterId);
    if (pending === undefined) {
      pending = this.#ask(adapterId, baseModel).finally(() => this.#placing.delete(adapterId));
      this.#placing.set(adapterId, pending);
    }
    return pending;
  }

  async #ask(adapterId: string, baseModel: string): Promise<PlacementEntry | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let reply: PlaceReply;
      try {
        reply = await this.commands.request<PlaceReply>(
          SCHEDULER_PLACE_SUBJECT,
          { adapterId, baseModel },
          { timeoutMs: PLACE_TIMEOUT_MS },
        );
      } catch (err) {
        this.#schedulerAwayUntil = performance.now() + SCHEDULER_BACKOFF_MS;
        this.logger.warn({ adapterId, err: (err as Error).message }, 'no scheduler answered; routing by heartbeats');
        return null;
      }
      if (reply.ok) {
        this.#accept(reply.entry);
        return this.#entries.get(adapterId) ?? null;
      }
      if (reply.code !== 'NOT_ACTIVE') return null; // NO_WORKERS, INVALID: heartbeat routing answers
    }
    return null;
  }

  #accept(entry: PlacementEntry): void {
    if (entry.term < this.#maxTerm) return; // a scheduler that lost its lease
    this.#maxTerm = entry.term;
    const known = this.#entries.get(entry.adapterId);
    if (known !== undefined && (known.term > entry.term || (known.term === entry.term && known.seq > entry.seq)))
      return;
    this.#entries.set(entry.adapterId, entry);
  }

  private async follow(watch: QueuedIterator<KvWatchEntry>): Promise<void> {
    for await (const e of watch) {
      if (e.operation !== 'PUT') {
        const id = this.#keys.get(e.key);
        if (id !== undefined) this.#entries.delete(id);
        this.#keys.delete(e.key);
        continue;
      }
      try {
        const parsed = PlacementEntrySchema.safeParse(e.json());
        if (!parsed.success) continue;
        this.#keys.set(e.key, parsed.data.adapterId);
        // The watch delivers writes in revision order: a lower term here is a stale writer.
        if (parsed.data.term < this.#maxTerm) continue;
        this.#maxTerm = parsed.data.term;
        this.#entries.set(parsed.data.adapterId, parsed.data);
      } catch {
        // not an entry we can read: ignore it
      }
    }
  }
}
