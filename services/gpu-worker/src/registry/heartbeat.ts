/**
 * The worker's heartbeat in the `workers` KV bucket (TTL 15 s): the scheduler's view of which
 * workers are alive and what they can take (adapter slots, pool pages, KV blocks, queue, resident
 * adapters). The key is deleted on a graceful stop so the worker
 * leaves the registry at once instead of after the TTL.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type BeforeApplicationShutdown } from '@nestjs/common';
import { Kvm, type KV } from '@nats-io/kv';
import { KV_BUCKETS, subjectToken } from '@longtail/contracts';
import { MESSAGING_CONNECTION, type MessagingConnection } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import type { WorkerConfig } from '../config.js';
import { InferenceServer, type WorkerLoad } from '../inference/inference.server.js';
import { WORKER_CONFIG, WORKER_LOGGER } from './tokens.js';

export { WORKER_CONFIG, WORKER_LOGGER } from './tokens.js';

/** What a heartbeat says. Versioned so the scheduler can read old workers during a rollout. */
export interface WorkerHeartbeatV1 {
  readonly version: 1;
  readonly workerId: string;
  readonly baseModel: string;
  readonly operatorAddress: string;
  readonly state: 'serving' | 'draining';
  readonly inFlight: number;
  readonly queueDepth: number;
  readonly residentAdapters: readonly string[];
  /** How many adapters the scheduler may place here (`MAX_ADAPTERS`). */
  readonly adapterSlots: number;
  /** The engine's backend adapter pool: pages in all and free, bytes a page. */
  readonly pool: WorkerLoad['pool'];
  /** The paged KV cache: blocks in all and free, positions a block. */
  readonly kv: WorkerLoad['kv'];
  /** Adapter requests since start that found their adapter ready (`warm`) or had to load it. */
  readonly adapterRequests: WorkerLoad['adapterRequests'];
}

@Injectable()
export class WorkerHeartbeat implements OnApplicationBootstrap, BeforeApplicationShutdown {
  #kv: KV | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(WORKER_LOGGER) private readonly logger: Logger,
    private readonly inference: InferenceServer,
  ) {}

  get key(): string {
    return subjectToken(this.config.WORKER_ID);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.#kv = await new Kvm(this.conn.nc).open(KV_BUCKETS.workers.bucket);
    await this.beat();
    this.#timer = setInterval(() => void this.beat(), this.config.HEARTBEAT_INTERVAL_S * 1000);
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.#timer);
    await this.#kv?.delete(this.key).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const load = this.inference.load();
    const heartbeat: WorkerHeartbeatV1 = {
      version: 1,
      workerId: this.config.WORKER_ID,
      baseModel: this.config.BASE_MODEL,
      operatorAddress: this.config.OPERATOR_ADDRESS,
      state: this.inference.draining ? 'draining' : 'serving',
      inFlight: load.inFlight,
      queueDepth: load.queueDepth,
      residentAdapters: load.residentAdapters,
      adapterSlots: this.config.MAX_ADAPTERS,
      pool: load.pool,
      kv: load.kv,
      adapterRequests: load.adapterRequests,
    };
    try {
      await this.#kv?.put(this.key, JSON.stringify(heartbeat));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }
}
