/**
 * One scheduler process: keeps the worker registry current, competes for the lease, and runs a
 * `PlacementTable` for each term it holds. A standby does nothing but watch and try the lease, so
 * it takes over with a registry already loaded. `SchedulerRole` is the plain object (tests run two
 * in one process); `SchedulerNode` is its Nest provider.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { Kvm } from '@nats-io/kv';
import { KV_BUCKETS } from '@longtail/contracts';
import type { DatabaseHandle } from '@longtail/database';
import { CommandClient, MESSAGING_CONNECTION, type MessagingConnection } from '@longtail/messaging';
import { DATABASE } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';
import type { SchedulerTables } from '../catalog/adapter-catalog.tables.js';
import { SchedulerLease } from '../lease/scheduler-lease.js';
import type { PlacementOptions } from '../placement/index.js';
import { WorkerRegistry } from '../registry/worker-registry.js';
import { registerPlacementMetrics } from './placement-metrics.js';
import { PlacementTable } from './placement-table.js';

export const SCHEDULER_NODE_OPTIONS = Symbol('SCHEDULER_NODE_OPTIONS');
export const SCHEDULER_LOGGER = Symbol('SCHEDULER_LOGGER');

export interface SchedulerRoleOptions {
  readonly holder?: string;
  readonly leaseTtlMs: number;
  readonly leaseRenewMs: number;
  readonly workerLivenessMs: number;
  readonly placement?: PlacementOptions;
}

export class SchedulerRole {
  readonly holder: string;
  #registry: WorkerRegistry | undefined;
  #lease: SchedulerLease | undefined;
  #table: PlacementTable | undefined;
  #starting: PlacementTable | undefined;

  constructor(
    private readonly conn: MessagingConnection,
    private readonly commands: CommandClient,
    private readonly adapterSha256: (adapterId: string) => Promise<string | null>,
    private readonly options: SchedulerRoleOptions,
    private readonly logger: Logger,
  ) {
    this.holder = options.holder ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  }

  /** The table of the current term, when active. */
  get table(): PlacementTable | undefined {
    return this.#table;
  }

  get lease(): SchedulerLease | undefined {
    return this.#lease;
  }

  async start(): Promise<void> {
    const kvm = new Kvm(this.conn.nc);
    const [leases, placements] = await Promise.all([
      kvm.open(KV_BUCKETS.leases.bucket),
      kvm.open(KV_BUCKETS.placements.bucket),
    ]);
    const registry = new WorkerRegistry(this.conn.nc, this.options.workerLivenessMs, this.logger);
    this.#registry = registry;
    await registry.start();
    const lease = new SchedulerLease(
      leases,
      { holder: this.holder, ttlMs: this.options.leaseTtlMs, renewMs: this.options.leaseRenewMs },
      {
        active: async (term) => {
          await this.#table?.stop();
          const table = new PlacementTable(term, {
            conn: this.conn,
            commands: this.commands,
            placements,
            registry,
            leaseTerm: () => lease.term,
            holder: this.holder,
            adapterSha256: this.adapterSha256,
            logger: this.logger,
            onFenced: () => {
              if (this.#table === table) this.#table = undefined;
              void table.stop();
            },
            ...(this.options.placement ? { placement: this.options.placement } : {}),
          });
          this.#starting = table;
          await table.start();
          // Published only once it answers; a loss during start-up stopped it already.
          if (this.#starting === table) this.#table = table;
          this.#starting = undefined;
        },
        lost: async () => {
          const table = this.#table ?? this.#starting;
          this.#table = undefined;
          this.#starting = undefined;
          await table?.stop();
        },
      },
      this.logger,
    );
    this.#lease = lease;
    lease.start();
  }

  /** Hands the lease over at once and stops. */
  async stop(): Promise<void> {
    await this.#lease?.release();
    await this.#table?.stop();
    this.#registry?.stop();
  }
}

@Injectable()
export class SchedulerNode implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly role: SchedulerRole;

  constructor(
    @Inject(MESSAGING_CONNECTION) conn: MessagingConnection,
    commands: CommandClient,
    @Inject(DATABASE) private readonly database: DatabaseHandle<SchedulerTables>,
    @Inject(SCHEDULER_NODE_OPTIONS) options: SchedulerRoleOptions,
    @Inject(SCHEDULER_LOGGER) logger: Logger,
  ) {
    this.role = new SchedulerRole(conn, commands, (id) => this.adapterSha256(id), options, logger);
  }

  #metrics: (() => void) | undefined;

  onApplicationBootstrap(): Promise<void> {
    this.#metrics = registerPlacementMetrics(() => this.role.table?.view());
    return this.role.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    this.#metrics?.();
    return this.role.stop();
  }

  private async adapterSha256(adapterId: string): Promise<string | null> {
    const row = await this.database.db
      .selectFrom('adapter_catalog')
      .select('weights_sha256')
      .where('adapter_id', '=', adapterId)
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    return row?.weights_sha256 ?? null;
  }
}
