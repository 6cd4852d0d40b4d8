import type { EventEnvelope } from '@longtail/contracts';
import type { Logger } from '@longtail/telemetry';
import type { ModuleMetadata } from '@nestjs/common';
import type { DeadLetterSource, ParseEvent } from '../codec.js';
import type { MessagingConnectOptions } from '../connection.js';
import type { ProvisionSpec } from '../provision.js';

export interface MessagingModuleOptions {
  readonly servers: string | readonly string[];
  /** Connection name: the service name. */
  readonly name: string;
  /** Streams, KV and object-store buckets this service needs; provisioned before anything starts. */
  readonly provision?: ProvisionSpec;
  /** Contract validation for consumed events (`parseEvent` from @longtail/contracts). */
  readonly parse?: ParseEvent;
  /** Event → bytes (`encodeEvent` from @longtail/contracts). Default JSON. */
  encode?(event: EventEnvelope): Uint8Array;
  /** Event → subject (`subjectFor` from @longtail/contracts). Default `event.type`. */
  subjectFor?(event: EventEnvelope): string;
  /**
   * Dead-letter subject of a consumer; default `dlq.<stream>.<durable>`. Must fall in a
   * provisioned stream (the `DLQ` stream, `dlq.>`).
   */
  deadLetterSubject?(where: DeadLetterSource): string;
  /** Start `@OnEvents` / `@OnCommand` handlers (default true); false for publish-only tools. */
  readonly consume?: boolean;
  readonly logger?: Logger;
  /** Reconnect wait, API timeout, credentials... */
  readonly connection?: Omit<MessagingConnectOptions, 'servers' | 'name'>;
}

export interface MessagingModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  readonly inject?: ReadonlyArray<
    string | symbol | (abstract new (...args: never[]) => unknown) | (new (...args: never[]) => unknown)
  >;
  readonly useFactory: (...args: never[]) => MessagingModuleOptions | Promise<MessagingModuleOptions>;
}

export const MESSAGING_OPTIONS = Symbol('longtail:messaging:options');
/** Injection token of the `MessagingConnection` (raw `nc` for KV, object store...). */
export const MESSAGING_CONNECTION = Symbol('longtail:messaging:connection');
export const EVENT_CODEC = Symbol('longtail:messaging:codec');
