/**
 * @longtail/messaging: the JetStream transport for longtail services, on the official nats.js
 * v3 client. Connection that survives server restarts, idempotent provisioning, event
 * publishing with deduplication and optimistic concurrency, durable pull consumers with
 * explicit acks, backoff and a dead-letter stream, request/reply commands, stream replay, and
 * the Nest module that wires handlers by decorator. See docs/decisions/0003-jetstream-transport.md.
 */
export {
  connectMessaging,
  type MessagingConnection,
  type MessagingConnectOptions,
  type ConnectionStatus,
  type ConnectionStatusKind,
} from './connection.js';
export {
  provision,
  type ProvisionSpec,
  type ProvisionReport,
  type ProvisionOutcome,
  type StreamSpec,
  type KvSpec,
  type ObjectStoreSpec,
  type Storage,
} from './provision.js';
export {
  eventCodec,
  type EventCodec,
  type ParseEvent,
  type ParseResult,
  type DeadLetterSource,
} from './codec.js';
export {
  EventPublisher,
  createEventPublisher,
  STREAM_SUBJECT_MUST_NOT_EXIST,
  type ExpectedSubjectSequence,
  type PublishOptions,
  type PublishResult,
} from './publisher.js';
export { consumeEvents, type EventConsumer } from './consumer/event-consumer.js';
export {
  DEFAULT_BACKOFF_MS,
  type OnEventsOptions,
  type EventMeta,
  type ReceivedEvent,
  type EventHandler,
  type BatchEventHandler,
} from './consumer/options.js';
export {
  CommandClient,
  createCommandClient,
  serveCommand,
  type CommandServer,
  type CommandHandler,
  type CommandMeta,
  type OnCommandOptions,
  type RequestOptions,
} from './commands.js';
export {
  requestStream,
  serveStream,
  CANCEL_SUBJECT_HEADER,
  type StreamRequestOptions,
  type StreamMeta,
  type StreamHandler,
  type StreamServer,
} from './streaming.js';
export {
  streamGapSource,
  subjectMatches,
  type StreamGapSource,
  type StreamGapSourceOptions,
  type StreamPosition,
} from './stream-gaps.js';
export { replayStream, type ReplayOptions, type ReplayedMessage } from './replay.js';
export { LongtailHeaders, deadLetterSubject as defaultDeadLetterSubject } from './headers.js';
export {
  JetStreamErrorCode,
  jetStreamErrorCode,
  isWrongLastSequence,
  isStreamNotFound,
  isConsumerNotFound,
  isStreamNameInUse,
  MessagingError,
  WrongExpectedSequence,
  PublishFailed,
  ProvisioningFailed,
  NoResponders,
  RequestTimeout,
  CommandFailed,
  CommandError,
} from './errors.js';
export { MessagingModule } from './nest/messaging.module.js';
export { MessagingService } from './nest/messaging.service.js';
export { OnEvents, OnCommand, OnStream } from './nest/decorators.js';
export {
  MESSAGING_CONNECTION,
  type MessagingModuleOptions,
  type MessagingModuleAsyncOptions,
} from './nest/options.js';
