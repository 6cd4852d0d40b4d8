/**
 * Which workers may serve a request. `WorkerRouter` is the seam; two implementations:
 * - `HeartbeatWorkerRouter` answers from a local watch of the `workers` KV bucket: any live,
 *   serving worker of the base model, those holding the adapter first, then least loaded, ties
 *   rotated so that load spreads. It is also the live-worker filter and the fallback below.
 * - `PlacementWorkerRouter` (`placement-router.ts`) routes adapter requests from the scheduler's
 *   placement table.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { KV_BUCKETS, workerGenerateSubject } from '@longtail/contracts';
import { MESSAGING_CONNECTION, type MessagingConnection } from '@longtail/messaging';

export interface WorkerRoute {
  readonly workerId: string;
  /** Core NATS subject the worker serves generation on. */
  readonly subject: string;
}

export interface WorkerRouter {
  /**
   * Workers that may serve `baseModel` (with `adapterId`, when not null), in the order to try.
   * A router may need a round trip (a placement miss), hence the promise.
   */
  route(baseModel: string, adapterId: string | null): readonly WorkerRoute[] | Promise<readonly WorkerRoute[]>;
  /** Base models some live worker serves, and the adapters known to be resident on one. */
  models(): { readonly baseModels: readonly string[]; readonly adapters: readonly string[] };
  /** Whether the base model exists, served now or not (a model with no live worker is a 503, not a 404). */
  knows(baseModel: string): boolean;
}

export const WORKER_ROUTER = Symbol('WORKER_ROUTER');

/** The fields of a worker heartbeat (version 1) that routing reads. */
interface Heartbeat {
  readonly workerId: string;
  readonly baseModel: string;
  readonly state: 'serving' | 'draining';
  readonly inFlight: number;
  readonly queueDepth: number;
  readonly residentAdapters: readonly string[];
}

/** A heartbeat older than this is a dead worker (the bucket's TTL drops it without a marker). */
const LIVENESS_MS = 15_000;

const isHeartbeat = (v: unknown): v is Heartbeat => {
  const h = v as Partial<Heartbeat> | null;
  return (
    typeof h === 'object' &&
    h !== null &&
    typeof h.workerId === 'string' &&
    typeof h.baseModel === 'string' &&
    (h.state === 'serving' || h.state === 'draining') &&
    typeof h.inFlight === 'number' &&
    typeof h.queueDepth === 'number' &&
    Array.isArray(h.residentAdapters)
  );
};

@Injectable()
export class HeartbeatWorkerRouter implements WorkerRouter, OnApplicationBootstrap, OnModuleDestroy {
  /** KV key → latest heartbeat and when it was written (ms since epoch). */
  readonly #workers = new Map<string, { heartbeat: Heartbeat; seenAt: number }>();
  /** Every base model a worker has announced since the gateway started. */
  readonly #known = new Set<string>();
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #turn = 0;

  constructor(@Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection) {}

  async onApplicationBootstrap(): Promise<void> {
    const kv = await new Kvm(this.conn.nc).open(KV_BUCKETS.workers.bucket);
    this.#watch = await kv.watch();
    void this.follow(this.#watch);
  }

  onModuleDestroy(): void {
    this.#watch?.stop();
  }

  route(baseModel: string, adapterId: string | null): readonly WorkerRoute[] {
    const live = this.live().filter((h) => h.baseModel === baseModel && h.state === 'serving');
    const turn = this.#turn++;
    // Least loaded first; among equals, a different one first each time.
    const load = (h: Heartbeat) => h.inFlight + h.queueDepth;
    const resident = (h: Heartbeat) => (adapterId !== null && h.residentAdapters.includes(adapterId) ? 0 : 1);
    const rotated = live.map((h, i) => ({ h, tie: (i + turn) % Math.max(1, live.length) }));
    rotated.sort((a, b) => resident(a.h) - resident(b.h) || load(a.h) - load(b.h) || a.tie - b.tie);
    return rotated.map(({ h }) => ({ workerId: h.workerId, subject: workerGenerateSubject(h.workerId) }));
  }

  models(): { baseModels: string[]; adapters: string[] } {
    const live = this.live();
    return {
      baseModels: [...new Set(live.map((h) => h.baseModel))].sort(),
      adapters: [...new Set(live.flatMap((h) => h.residentAdapters))].sort(),
    };
  }

  knows(baseModel: string): boolean {
    return this.#known.has(baseModel);
  }

  /** Ids of the live, serving workers of `baseModel`. */
  liveIds(baseModel: string): Set<string> {
    return new Set(
      this.live()
        .filter((h) => h.baseModel === baseModel && h.state === 'serving')
        .map((h) => h.workerId),
    );
  }

  private live(): Heartbeat[] {
    const now = Date.now();
    return [...this.#workers.values()].filter((w) => now - w.seenAt < LIVENESS_MS).map((w) => w.heartbeat);
  }

  private async follow(watch: QueuedIterator<KvWatchEntry>): Promise<void> {
    for await (const entry of watch) {
      if (entry.operation !== 'PUT') {
        this.#workers.delete(entry.key);
        continue;
      }
      try {
        const heartbeat: unknown = entry.json();
        if (isHeartbeat(heartbeat)) {
          this.#workers.set(entry.key, { heartbeat, seenAt: entry.created.getTime() });
          this.#known.add(heartbeat.baseModel);
        }
      } catch {
        // not a heartbeat we can read: ignore it
      }
    }
  }
}
