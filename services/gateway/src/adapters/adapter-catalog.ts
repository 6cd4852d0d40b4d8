/**
 * The adapters this gateway knows: a projection of the `ADAPTERS` stream (registered, retired),
 * kept in memory by an ordered consumer that replays the stream from its first message and then
 * follows it. The gateway also applies its own writes at once (`apply`), so a client sees its
 * upload on the next request; applying an event twice is harmless.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import {
  AdapterRegisteredV1,
  AdapterRetiredV1,
  STREAMS,
  parseEvent,
  type AdapterRegisteredV1Data,
  type EventEnvelope,
} from '@longtail/contracts';
import { MESSAGING_CONNECTION, type MessagingConnection } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import { GATEWAY_LOGGER } from '../logger.token.js';

export interface AdapterRecord extends AdapterRegisteredV1Data {
  readonly retired: boolean;
  /** When it was registered (the event's `occurredAt`, ISO 8601). */
  readonly registeredAt: string;
}

/** A pure fold: the catalog after one event. */
export function evolveCatalog(catalog: Map<string, AdapterRecord>, event: EventEnvelope): void {
  if (event.type === AdapterRegisteredV1.type) {
    const data = event.data as AdapterRegisteredV1Data;
    if (!catalog.has(data.adapterId))
      catalog.set(data.adapterId, { ...data, retired: false, registeredAt: event.occurredAt });
  } else if (event.type === AdapterRetiredV1.type) {
    const { adapterId } = event.data as { adapterId: string };
    const known = catalog.get(adapterId);
    if (known) catalog.set(adapterId, { ...known, retired: true });
  }
}

/** May `tenantId` see (and call) this adapter? */
export const visibleTo = (record: AdapterRecord, tenantId: string): boolean =>
  record.visibility === 'public' || record.ownerTenantId === tenantId;

@Injectable()
export class AdapterCatalog implements OnApplicationBootstrap, OnModuleDestroy {
  readonly #adapters = new Map<string, AdapterRecord>();
  #messages: ConsumerMessages | undefined;
  #stopped = false;

  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(GATEWAY_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      const consumer = await this.conn.js.consumers.get(STREAMS.ADAPTERS.name, {
        deliver_policy: DeliverPolicy.All,
      });
      this.#messages = await consumer.consume();
      void this.follow(this.#messages);
    } catch (err) {
      // No ADAPTERS stream yet: the catalog holds only what this gateway registers.
      this.logger.warn({ err }, 'adapter catalog: cannot follow the ADAPTERS stream');
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.#stopped = true;
    await this.#messages?.close();
  }

  apply(event: EventEnvelope): void {
    evolveCatalog(this.#adapters, event);
  }

  get(adapterId: string): AdapterRecord | undefined {
    return this.#adapters.get(adapterId);
  }

  /** Live adapters `tenantId` may see, by id. */
  list(tenantId: string): AdapterRecord[] {
    return [...this.#adapters.values()]
      .filter((a) => !a.retired && visibleTo(a, tenantId))
      .sort((a, b) => a.adapterId.localeCompare(b.adapterId));
  }

  /** The weights hash to send with a request for `adapterId`, when `tenantId` may use it. */
  sha256For(adapterId: string, tenantId: string): string | undefined {
    const a = this.#adapters.get(adapterId);
    return a && !a.retired && visibleTo(a, tenantId) ? a.weightsSha256 : undefined;
  }

  private async follow(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        const parsed = parseEvent(m.json());
        if (parsed.ok) this.apply(parsed.event);
      }
    } catch (err) {
      if (!this.#stopped) this.logger.error({ err }, 'adapter catalog: following the ADAPTERS stream failed');
    }
  }
}
