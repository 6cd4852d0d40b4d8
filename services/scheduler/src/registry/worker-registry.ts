/**
 * The scheduler's view of the gpu-workers: a local watch of the `workers` KV bucket, where each
 * worker puts a heartbeat every few seconds (key `subjectToken(workerId)`, bucket TTL 15 s). A
 * worker joins with its first readable heartbeat and leaves when its key is deleted (a graceful
 * stop) or when no heartbeat arrived for `livenessMs` (a crash: the bucket's TTL removes the
 * value without a marker a watcher would see, so silence is measured here). Listeners hear joins
 * and leaves in order; standby and active schedulers both keep the registry current.
 */
import { Kvm, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import { z } from 'zod';
import { KV_BUCKETS } from '@longtail/contracts';
import type { Logger } from '@longtail/telemetry';

/** A heartbeat as the scheduler reads it: version 1; fields added later are optional. */
export const HeartbeatSchema = z.object({
  version: z.literal(1),
  workerId: z.string().min(1),
  baseModel: z.string().min(1),
  state: z.enum(['serving', 'draining']),
  inFlight: z.number().int().min(0),
  queueDepth: z.number().int().min(0),
  residentAdapters: z.array(z.string()),
  adapterSlots: z.number().int().min(0).optional(),
  pool: z.object({ pagesTotal: z.number(), pagesFree: z.number(), pageBytes: z.number() }).optional(),
  kv: z.object({ blocksTotal: z.number(), blocksFree: z.number(), blockTokens: z.number() }).optional(),
  adapterRequests: z.object({ warm: z.number(), cold: z.number() }).optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export interface RegisteredWorker {
  readonly heartbeat: Heartbeat;
  /** Local time the latest heartbeat arrived (ms). */
  readonly seenAtMs: number;
}

export interface RegistryListener {
  joined(worker: Heartbeat): void;
  left(workerId: string, why: 'deleted' | 'silent' | 'draining'): void;
}

/** Adapter slots assumed for a worker whose heartbeat does not say. */
export const DEFAULT_ADAPTER_SLOTS = 256;

export class WorkerRegistry {
  /** workerId → latest heartbeat. */
  readonly #workers = new Map<string, RegisteredWorker>();
  /** KV key → workerId (a delete names only the key). */
  readonly #byKey = new Map<string, string>();
  readonly #listeners = new Set<RegistryListener>();
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #ready: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly livenessMs: number,
    private readonly logger: Logger,
  ) {}

  /** Resolves once the bucket's current heartbeats are loaded. */
  async start(): Promise<void> {
    const kv = await new Kvm(this.nc).open(KV_BUCKETS.workers.bucket);
    const status = await kv.status();
    const initial = status.values;
    let seen = 0;
    let loaded!: () => void;
    this.#ready = initial === 0 ? Promise.resolve() : new Promise((resolve) => (loaded = resolve));
    this.#watch = await kv.watch();
    void (async () => {
      for await (const entry of this.#watch!) {
        this.#apply(entry);
        if (++seen === initial || entry.delta === 0) loaded?.();
      }
    })();
    this.#sweep = setInterval(() => this.#expire(), Math.max(100, Math.floor(this.livenessMs / 4)));
    // A watch that never reaches the count (keys expired meanwhile) must not block start-up.
    await Promise.race([this.#ready, new Promise((r) => setTimeout(r, 2000))]);
  }

  stop(): void {
    clearInterval(this.#sweep);
    this.#watch?.stop();
  }

  subscribe(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Live, serving workers. */
  live(): RegisteredWorker[] {
    return [...this.#workers.values()];
  }

  get(workerId: string): RegisteredWorker | undefined {
    return this.#workers.get(workerId);
  }

  #apply(entry: KvWatchEntry): void {
    if (entry.operation !== 'PUT') {
      const id = this.#byKey.get(entry.key);
      this.#byKey.delete(entry.key);
      if (id !== undefined) this.#leave(id, 'deleted');
      return;
    }
    let parsed;
    try {
      parsed = HeartbeatSchema.safeParse(entry.json());
    } catch {
      return;
    }
    if (!parsed.success) {
      this.logger.warn({ key: entry.key }, 'unreadable heartbeat ignored');
      return;
    }
    const heartbeat = parsed.data;
    // A replayed heartbeat older than the liveness window is a worker that is already gone.
    const ageMs = Date.now() - entry.created.getTime();
    if (ageMs > this.livenessMs) return;
    this.#byKey.set(entry.key, heartbeat.workerId);
    if (heartbeat.state === 'draining') {
      this.#leave(heartbeat.workerId, 'draining');
      return;
    }
    const known = this.#workers.has(heartbeat.workerId);
    this.#workers.set(heartbeat.workerId, { heartbeat, seenAtMs: Date.now() - Math.max(0, ageMs) });
    if (!known) {
      this.logger.info({ workerId: heartbeat.workerId, baseModel: heartbeat.baseModel }, 'worker joined');
      for (const l of this.#listeners) l.joined(heartbeat);
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, w] of this.#workers) if (now - w.seenAtMs > this.livenessMs) this.#leave(id, 'silent');
  }

  #leave(workerId: string, why: 'deleted' | 'silent' | 'draining'): void {
    if (!this.#workers.delete(workerId)) return;
    this.logger.warn({ workerId, why }, 'worker left');
    for (const l of this.#listeners) l.left(workerId, why);
  }
}
