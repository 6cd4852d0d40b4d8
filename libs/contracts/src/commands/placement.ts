/**
 * Placement: the scheduler's table of which gpu-workers hold which adapters, the lease that makes
 * one scheduler active, and the two core-NATS commands around them. Not events and not in any
 * stream (the subjects are outside every stream's `<family>.>` filter).
 *
 * - `placements` KV bucket, key `subjectToken(adapterId)`: a `PlacementEntry`, written only by the
 *   active scheduler. Every gateway watches the bucket and routes from its local copy.
 * - `leases` KV bucket, key `SCHEDULER_LEASE_KEY`: a `SchedulerLease`. A scheduler becomes active by
 *   creating the key or by compare-and-set over an expired holder's revision, and renews by
 *   compare-and-set on its own last revision. The KV revision of the write that made it active is
 *   its `term` (the fencing token): it stamps every entry and command with it, and readers
 *   (gateways, workers) ignore anything stamped with a term lower than the highest they have seen.
 * - `SCHEDULER_PLACE_SUBJECT` (request/reply): a gateway with no entry for an adapter asks the active
 *   scheduler to place it; the reply is the entry, also written to the bucket.
 * - `workerAdaptersSubject(workerId)` (request/reply): the scheduler tells a worker to load
 *   (prefetch) or evict an adapter.
 */
import { z } from 'zod';

import { AdapterIdSchema, ModelIdSchema, OpaqueIdSchema } from '../fields.js';
import { subjectToken } from '../streams.js';

/** Fencing token: the `leases` KV revision of the write that made a scheduler active. */
export const TermSchema = z.int().min(1);

export const PlacementEntrySchema = z.strictObject({
  version: z.literal(1),
  adapterId: AdapterIdSchema,
  baseModel: ModelIdSchema,
  /** Workers holding (or loading) the adapter; the first is its home on the hash ring. Never empty. */
  workers: z.array(OpaqueIdSchema).min(1).max(1024),
  /** Term of the scheduler that wrote this entry. */
  term: TermSchema,
  /** The scheduler's decision sequence number of the last change to this entry (per term). */
  seq: z.int().min(0),
  /** When it was written (ISO-8601, informational). */
  updatedAt: z.iso.datetime(),
});
export type PlacementEntry = z.infer<typeof PlacementEntrySchema>;

/** Key of the scheduler's lease in the `leases` bucket. */
export const SCHEDULER_LEASE_KEY = 'scheduler';

export const SchedulerLeaseSchema = z.strictObject({
  version: z.literal(1),
  /** Instance id of the holder (unique per process). */
  holder: OpaqueIdSchema,
  /** Holder's clock, ms since the epoch: a standby may take the lease once this has passed. */
  expiresAtMs: z.int().min(0),
});
export type SchedulerLease = z.infer<typeof SchedulerLeaseSchema>;

/** Gateway → active scheduler: place an adapter that has no entry yet. */
export const SCHEDULER_PLACE_SUBJECT = 'scheduler.place';

export const PlaceRequestSchema = z.strictObject({
  adapterId: AdapterIdSchema,
  baseModel: ModelIdSchema,
});
export type PlaceRequest = z.infer<typeof PlaceRequestSchema>;

export const PlaceReplySchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), entry: PlacementEntrySchema }),
  z.strictObject({
    ok: z.literal(false),
    /** NO_WORKERS: no live worker serves the base model; UNKNOWN_ADAPTER; NOT_ACTIVE: ask again. */
    code: z.enum(['NO_WORKERS', 'UNKNOWN_ADAPTER', 'NOT_ACTIVE', 'INVALID']),
    message: z.string(),
  }),
]);
export type PlaceReply = z.infer<typeof PlaceReplySchema>;

/** Scheduler → worker: load (prefetch into the host tier) or evict an adapter. */
export const WorkerAdapterCommandSchema = z.strictObject({
  op: z.enum(['load', 'evict']),
  adapterId: AdapterIdSchema,
  /** sha256 of the weights object (hex) for `load`; null for `evict`. */
  adapterSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  term: TermSchema,
});
export type WorkerAdapterCommand = z.infer<typeof WorkerAdapterCommandSchema>;

export const WorkerAdapterReplySchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({
    ok: z.literal(false),
    /** STALE_TERM: the worker has seen a higher term; IN_USE: evict refused, requests in flight. */
    code: z.enum(['STALE_TERM', 'IN_USE', 'FETCH_FAILED', 'INVALID']),
    message: z.string(),
  }),
]);
export type WorkerAdapterReply = z.infer<typeof WorkerAdapterReplySchema>;

/** Core NATS subject a worker takes adapter load/evict commands on. */
export function workerAdaptersSubject(workerId: string): string {
  return `worker.${subjectToken(workerId)}.adapters`;
}

/**
 * Gateway → active scheduler (request/reply): the operator's view of placement, served at
 * `GET /v1/admin/placement`. Only the active scheduler answers (a standby does not listen).
 */
export const SCHEDULER_PLACEMENT_VIEW_SUBJECT = 'longtail.scheduler.placement';

/** One worker in the operator's view. */
export interface PlacementViewWorker {
  readonly workerId: string;
  readonly baseModel: string;
  /** Adapters placed on it by the scheduler. */
  readonly adapters: number;
  /** Adapters its heartbeat says are loaded. */
  readonly residentAdapters: number;
  readonly adapterSlots: number;
  /** Decayed requests routed to it (≈ rate × 14.4 s) and the bounded-load cap on that figure. */
  readonly load: number;
  readonly loadCap: number;
  readonly inFlight: number;
  readonly queueDepth: number;
  readonly pool: { readonly pagesTotal: number; readonly pagesFree: number } | null;
  readonly kv: { readonly blocksTotal: number; readonly blocksFree: number } | null;
}

/** The reply on `SCHEDULER_PLACEMENT_VIEW_SUBJECT`. */
export interface PlacementView {
  readonly term: number;
  readonly holder: string;
  readonly workers: readonly PlacementViewWorker[];
  /** Adapters with an entry, and those with more than one worker. */
  readonly adaptersPlaced: number;
  readonly replicated: ReadonlyArray<{ readonly adapterId: string; readonly workers: readonly string[] }>;
  /** Since this scheduler became active: requests seen (inference events), those served by a worker of the adapter's entry. */
  readonly requests: number;
  readonly hits: number;
  readonly hitRate: number | null;
  /** Load and evict commands sent, decisions taken (by kind). */
  readonly loads: number;
  readonly evictions: number;
  readonly decisions: Readonly<Record<string, number>>;
}
