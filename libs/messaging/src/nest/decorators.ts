/**
 * Handler decorators. They only attach metadata; `MessagingService` finds decorated methods of
 * providers and controllers at application bootstrap and binds each to its consumer or
 * subscription.
 */
import { SetMetadata } from '@nestjs/common';
import type { OnEventsOptions } from '../consumer/options.js';
import type { OnCommandOptions } from '../commands.js';

export const ON_EVENTS_METADATA = 'longtail:messaging:on-events';
export const ON_COMMAND_METADATA = 'longtail:messaging:on-command';

/**
 * Binds the method to a durable pull consumer with explicit acks.
 * Without `batch`: `(event, meta: EventMeta) => Promise<void>`, one message at a time.
 * With `batch`: `(batch: ReceivedEvent[]) => Promise<void>`, all-or-nothing.
 * Resolving acks; throwing retries with `backoffMs`, then dead-letters after `maxDeliver`.
 */
export const OnEvents = (options: OnEventsOptions): MethodDecorator =>
  SetMetadata(ON_EVENTS_METADATA, options);

export interface CommandBinding extends OnCommandOptions {
  readonly subject: string;
}

/**
 * Answers NATS requests on `subject`: `(payload: unknown, meta: CommandMeta) => result`.
 * The result is sent as JSON; throw `CommandError(code, message)` for a domain error.
 * Validate `payload` in the handler: it is whatever the caller sent.
 */
export const OnCommand = (subject: string, options: OnCommandOptions = {}): MethodDecorator =>
  SetMetadata<string, CommandBinding>(ON_COMMAND_METADATA, { subject, ...options });

export const ON_STREAM_METADATA = 'longtail:messaging:on-stream';

/**
 * Answers streamed requests on `subject`: an async generator method
 * `async *(payload: unknown, meta: StreamMeta)` whose yielded values are sent as chunks, in
 * order. `meta.signal` fires when the caller cancels. Throw `CommandError` for a domain error.
 * On shutdown, running streams are allowed to finish.
 */
export const OnStream = (subject: string, options: OnCommandOptions = {}): MethodDecorator =>
  SetMetadata<string, CommandBinding>(ON_STREAM_METADATA, { subject, ...options });
