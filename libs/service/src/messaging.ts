/**
 * Wires @longtail/messaging to the contracts: every service provisions the same streams, KV and
 * object-store buckets (idempotent, so any start order works), validates every consumed event
 * against its schema, and publishes on the subject the contracts define.
 */
import type { DynamicModule } from '@nestjs/common';
import { KV_BUCKETS, OBJECT_BUCKETS, STREAMS, deadLetterSubject, encodeEvent, parseEvent, subjectFor, type KnownEvent } from '@longtail/contracts';
import { MessagingModule, type EventCodec, type ParseEvent, type ProvisionSpec } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';

/** Streams and buckets from the contracts, with `replicas` (1 on one machine, 3 on a cluster). */
export function longtailProvisionSpec(replicas = 1): ProvisionSpec {
  return {
    streams: Object.values(STREAMS).map((s) => ({
      name: s.name,
      subjects: s.subjects,
      description: s.description,
      storage: s.storage,
      replicas,
      duplicateWindowMs: s.duplicateWindowMs,
      maxAgeMs: s.maxAgeMs,
      // History may not be deleted (a stream that allows it cannot be switched back: every
      // service must provision the same setting).
      denyDelete: s.denyDelete,
      denyPurge: s.denyPurge,
    })),
    kv: Object.values(KV_BUCKETS).map((b) => ({
      bucket: b.bucket,
      description: b.description,
      history: b.history,
      ttlMs: b.ttlMs,
      replicas,
    })),
    objectStores: Object.values(OBJECT_BUCKETS).map((b) => ({ bucket: b.bucket, description: b.description, replicas })),
  };
}

/** Contract validation for consumers: an invalid event is a violation, never a handler call. */
export const parseKnownEvent: ParseEvent<KnownEvent> = (raw) => {
  const result = parseEvent(raw);
  return result.ok ? { ok: true, event: result.event } : { ok: false, error: result.error };
};

export const contractCodec: Pick<EventCodec, 'encode' | 'subjectFor' | 'deadLetterSubject'> = {
  encode: (event) => encodeEvent(event as KnownEvent),
  subjectFor: (event) => subjectFor(event as KnownEvent),
  deadLetterSubject,
};

export interface ServiceMessagingOptions {
  readonly name: string;
  readonly natsUrl: string;
  readonly logger?: Logger;
  readonly replicas?: number;
  /** False for services that only publish. */
  readonly consume?: boolean;
}

export function serviceMessaging(options: ServiceMessagingOptions): DynamicModule {
  return MessagingModule.forRoot({
    servers: options.natsUrl.split(',').map((s) => s.trim()),
    name: options.name,
    provision: longtailProvisionSpec(options.replicas ?? 1),
    parse: parseKnownEvent,
    ...contractCodec,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.consume === undefined ? {} : { consume: options.consume }),
  });
}
