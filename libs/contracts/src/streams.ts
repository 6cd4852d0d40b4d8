/**
 * Where events live: the JetStream streams (one per aggregate family), the subject of every event,
 * and the names of the KV and object-store buckets. Defined once here; the messaging lib turns the
 * hints into server configuration, and docs/events.md is generated from them.
 *
 * Subject layout: `<event type>.<aggregate token>`, e.g. `adapters.registered.llama-3-8b_3Aacme_2Flegal-ur`.
 * - the first token (the family) selects the stream: `adapters.>` → `ADAPTERS`;
 * - a consumer of one type filters `inference.completed.>`; of a family, `inference.>`;
 * - the last token is the aggregate key made safe by `subjectToken`, so every aggregate has its
 *   own subjects, and a publisher can demand order within one aggregate with
 *   `Nats-Expected-Last-Subject-Sequence` (one type) or, adding
 *   `Nats-Expected-Last-Subject-Sequence-Subject: aggregateSubjectFilter(event)` (NATS ≥ 2.11),
 *   across every type of the family (all types of a family have the same number of tokens).
 * The version is not in the subject: a new version of an event keeps its subjects and its order.
 */
import { CONTRACT_VIOLATION_CODES, ContractViolation } from './errors.js';
import type { EventEnvelope } from './envelope.js';
import { findDefinition } from './registry.js';

/** Hints for one stream's configuration; durations in milliseconds. */
export interface StreamHints {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly description: string;
  readonly storage: 'file';
  readonly retention: 'limits';
  /** 0 = keep forever (events are the source of truth). */
  readonly maxAgeMs: number;
  /** JetStream's de-duplication window for `Nats-Msg-Id`. */
  readonly duplicateWindowMs: number;
  /** History may not be deleted or purged through the API. */
  readonly denyDelete: boolean;
  readonly denyPurge: boolean;
  /**
   * Carries money. In production: replicas 3, and the servers run with
   * `jetstream { sync_interval: always }` (a server-wide setting, not a stream one) so that an
   * acknowledged publish is on disk.
   */
  readonly money: boolean;
}

const TWO_MINUTES_MS = 2 * 60 * 1000;
const THIRTY_DAYS_MS = 30 * 24 * 60 * 60 * 1000;

const eventStream = <const N extends string, const F extends string>(
  name: N,
  family: F,
  description: string,
  money: boolean,
) =>
  ({
    name,
    subjects: [`${family}.>`] as const,
    description,
    storage: 'file',
    retention: 'limits',
    maxAgeMs: 0,
    duplicateWindowMs: TWO_MINUTES_MS,
    denyDelete: true,
    denyPurge: true,
    money,
  }) as const satisfies StreamHints;

/**
 * The streams. Replicas: 1 on one machine, 3 on a cluster (all streams); `money` streams also need
 * `sync_interval: always` in production.
 */
export const STREAMS = {
  ADAPTERS: eventStream('ADAPTERS', 'adapters', 'Adapter lifecycle: registered, retired.', false),
  DATANETS: eventStream('DATANETS', 'datanets', 'Datanet contributions and snapshots.', false),
  INFERENCE: eventStream(
    'INFERENCE',
    'inference',
    'One outcome event per inference request; what fees are computed from.',
    true,
  ),
  ATTRIBUTION: eventStream(
    'ATTRIBUTION',
    'attribution',
    'Closed attribution epochs with per-account totals.',
    true,
  ),
  LEDGER: eventStream('LEDGER', 'ledger', 'Payout roots posted on chain.', true),
  /**
   * Dead letters: messages a consumer gave up on (`term`), republished on
   * `deadLetterSubject({ stream, durable })` with the original bytes. Kept 30 days; purge and
   * delete are allowed, as handling a dead letter ends with removing it.
   */
  DLQ: {
    name: 'DLQ',
    subjects: ['dlq.>'] as const,
    description: 'Dead letters: messages a consumer terminated, with the original bytes.',
    storage: 'file',
    retention: 'limits',
    maxAgeMs: THIRTY_DAYS_MS,
    duplicateWindowMs: TWO_MINUTES_MS,
    denyDelete: false,
    denyPurge: false,
    money: false,
  },
} as const satisfies Record<string, StreamHints>;

export type StreamName = keyof typeof STREAMS;

/** Hints for a KV bucket; durations in milliseconds (0 = no TTL). */
export interface KvBucketHints {
  readonly bucket: string;
  readonly description: string;
  readonly ttlMs: number;
  readonly history: number;
}

/**
 * KV buckets: fast-changing state that is not history. Reads are not read-your-writes on a
 * cluster; a decision that must not race uses compare-and-set on the key's revision. Keys built
 * from ids use `subjectToken`, whose alphabet is valid in KV keys.
 */
export const KV_BUCKETS = {
  /** Worker heartbeats (capacity, residency), key = subjectToken(workerId); a missing key is a dead worker. */
  workers: {
    bucket: 'workers',
    description: 'Worker heartbeats: capacity and resident adapters.',
    ttlMs: 15_000,
    history: 1,
  },
  /** Where each adapter is loaded, key = subjectToken(adapterId); written by the scheduler with CAS. */
  placements: {
    bucket: 'placements',
    description: 'Adapter placements: which workers serve each adapter.',
    ttlMs: 0,
    history: 5,
  },
  /** Leases (one active scheduler, ...), key = lease name; renewed with CAS before the TTL runs out. */
  leases: {
    bucket: 'leases',
    description: 'Leases for single-active roles such as the scheduler.',
    ttlMs: 10_000,
    history: 1,
  },
} as const satisfies Record<string, KvBucketHints>;

/** Object-store buckets for blobs that never go into events (events carry their SHA-256). */
export const OBJECT_BUCKETS = {
  /** Adapter weights (PEFT safetensors + adapter_config.json), key = `weightsObjectKey`. */
  adapters: { bucket: 'adapters', description: 'Adapter weights (safetensors only, never pickles).' },
  /** Datanet contributions' content, key = `objectKey`. */
  datanetContent: { bucket: 'datanet-content', description: 'Content of Datanet contributions.' },
} as const satisfies Record<string, { readonly bucket: string; readonly description: string }>;

/** The stream that holds events of `type` (by its family, the first token). */
export function streamFor(type: string): (typeof STREAMS)[StreamName] {
  const family = type.split('.', 1)[0];
  for (const stream of Object.values(STREAMS)) {
    if (stream.name !== STREAMS.DLQ.name && stream.subjects[0] === `${family}.>`) return stream;
  }
  throw new ContractViolation(CONTRACT_VIOLATION_CODES.UnknownType, 'no stream holds this event family', {
    eventType: type,
  });
}

/** The subject an event is published on: `<type>.<subjectToken(aggregate key)>`. */
export function subjectFor(event: EventEnvelope): string {
  return `${event.type}.${aggregateToken(event)}`;
}

/**
 * The subject filter that matches every event of the event's aggregate, whatever its type, e.g.
 * `inference.*.<request token>`; for `Nats-Expected-Last-Subject-Sequence-Subject`.
 */
export function aggregateSubjectFilter(event: EventEnvelope): string {
  const [family, ...rest] = event.type.split('.');
  return [family, ...rest.map(() => '*'), aggregateToken(event)].join('.');
}

/**
 * The dead-letter subject of a durable consumer: `dlq.<stream>.<durable>` (the convention of
 * `@longtail/messaging`, which puts the original subject and the reason in headers). Stream and
 * durable names are single NATS tokens already; anything else is refused rather than escaped, so
 * that the subject names the consumer as operators see it.
 */
export function deadLetterSubject(where: { readonly stream: string; readonly durable: string }): string {
  for (const name of [where.stream, where.durable]) {
    if (!/^[A-Za-z0-9_-]+$/.test(name))
      throw tokenViolation(`"${name.slice(0, 64)}" is not a stream or durable name`);
  }
  return `dlq.${where.stream}.${where.durable}`;
}

function aggregateToken(event: EventEnvelope): string {
  const definition = findDefinition(event.type, event.version);
  if (definition === undefined) {
    throw new ContractViolation(CONTRACT_VIOLATION_CODES.UnknownType, 'no subject for an unknown event', {
      eventType: event.type,
      eventVersion: event.version,
    });
  }
  const data: unknown = event.data;
  const key: unknown =
    typeof data === 'object' && data !== null
      ? (definition.aggregateKey as (data: unknown) => unknown)(data)
      : undefined;
  if (typeof key !== 'string') {
    throw new ContractViolation(
      CONTRACT_VIOLATION_CODES.InvalidData,
      `event has no aggregate key (${definition.aggregate})`,
      {
        eventType: event.type,
        eventVersion: event.version,
      },
    );
  }
  return subjectToken(key);
}

/*
 * Subject tokens. A NATS subject token may not be empty or contain `.`, `*`, `>` or whitespace,
 * and tools choke on much else; aggregate keys contain `:` `/` `.` and may contain anything.
 * Encoding (reversible, one token per key, readable for ordinary ids):
 * - UTF-8 bytes of `A-Z a-z 0-9 -` are kept as they are;
 * - every other byte (including `_` and each byte of a non-ASCII character) becomes `_` followed
 *   by two uppercase hex digits, e.g. `.` → `_2E`, `/` → `_2F`, `é` → `_C3_A9`;
 * - the empty key is the token `_` alone.
 * Tokens thus match `^[A-Za-z0-9_-]+$`, which is also a valid NATS KV key.
 */

const KEPT = /^[A-Za-z0-9-]$/;
const TOKEN = /^[A-Za-z0-9_-]+$/;
const LONE_SURROGATE = /\p{Cs}/u;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes any well-formed string as a NATS subject token (see the encoding above). */
export function subjectToken(key: string): string {
  if (key === '') return '_';
  if (LONE_SURROGATE.test(key)) {
    throw new ContractViolation(
      CONTRACT_VIOLATION_CODES.InvalidSubjectToken,
      'key is not well-formed Unicode (lone surrogate)',
    );
  }
  let out = '';
  for (const byte of utf8Encoder.encode(key)) {
    out += isKeptByte(byte)
      ? String.fromCharCode(byte)
      : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Decodes a token made by `subjectToken`; throws `ContractViolation` for any other string. */
export function keyFromSubjectToken(token: string): string {
  if (token === '_') return '';
  if (!TOKEN.test(token)) throw tokenViolation('token has characters outside [A-Za-z0-9_-]');
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    const code = token.charCodeAt(i);
    if (code !== 0x5f) {
      bytes.push(code);
      i += 1;
      continue;
    }
    const hex = token.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) throw tokenViolation('"_" must be followed by two uppercase hex digits');
    const byte = Number.parseInt(hex, 16);
    if (isKeptByte(byte)) throw tokenViolation('escaped byte would be kept as is: not a canonical token');
    bytes.push(byte);
    i += 3;
  }
  try {
    return utf8Decoder.decode(Uint8Array.from(bytes));
  } catch (error) {
    throw tokenViolation('escaped bytes are not UTF-8', error);
  }
}

function isKeptByte(byte: number): boolean {
  return byte < 0x80 && KEPT.test(String.fromCharCode(byte));
}

function tokenViolation(summary: string, cause?: unknown): ContractViolation {
  return new ContractViolation(CONTRACT_VIOLATION_CODES.InvalidSubjectToken, summary, { cause });
}
