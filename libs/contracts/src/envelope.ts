/**
 * The one envelope every longtail event travels in. The envelope is what a consumer in any
 * language reads first: `type` + `version` select the schema of `data`.
 */
export interface EventEnvelope<TType extends string = string, TData = unknown> {
  /** Time-ordered UUID (v7); also the JetStream `Nats-Msg-Id`, so a retried publish is dropped. */
  readonly id: string;
  /** Dotted event type, e.g. `inference.completed`. */
  readonly type: TType;
  /** Schema version of `data`; a published version never changes, a new one is added. */
  readonly version: number;
  /** ISO-8601 UTC time the fact happened (consumers take time from here, never from a clock). */
  readonly occurredAt: string;
  /** Id shared by every event of one user action (e.g. the request id). */
  readonly correlationId: string;
  /** Id of the event or command that caused this one; null for a root cause. */
  readonly causationId: string | null;
  readonly data: TData;
}
