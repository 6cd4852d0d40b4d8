/**
 * Named errors of the messaging layer and the JetStream API error codes it interprets. Every
 * error carries the underlying client/server error as `cause`, so a user sees a clear message
 * and an operator sees the cause. Codes are the server's `err_code` values (nats-server
 * `server/errors.json`), stable across server versions.
 */

/** JetStream API error codes this library reacts to. */
export const JetStreamErrorCode = {
  /** `consumer not found` */
  ConsumerNotFound: 10014,
  /** `no message found` */
  NoMessageFound: 10037,
  /** `jetstream not enabled for account` */
  NotEnabledForAccount: 10039,
  /** `stream configuration invalid` */
  StreamInvalidConfig: 10052,
  /** `stream name already in use with a different configuration` */
  StreamNameInUse: 10058,
  /** `stream not found` */
  StreamNotFound: 10059,
  /** `subjects overlap with an existing stream` */
  StreamSubjectOverlap: 10065,
  /** `wrong last msg ID` (Nats-Expected-Last-Msg-Id mismatch) */
  StreamWrongLastMsgId: 10070,
  /** `wrong last sequence` (Nats-Expected-Last-Sequence / -Last-Subject-Sequence mismatch) */
  StreamWrongLastSequence: 10071,
  /** `max deliver is required to be > length of backoff values` */
  ConsumerMaxDeliverBackoff: 10116,
  /** `wrong last sequence: unknown` (2.11+; the sequence could not be checked) */
  StreamWrongLastSequenceUnknown: 10164,
} as const;
export type JetStreamErrorCode = (typeof JetStreamErrorCode)[keyof typeof JetStreamErrorCode];

/** The JetStream `err_code` of `err` or of any error in its `cause` chain. */
export function jetStreamErrorCode(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; depth++) {
    if (typeof e === 'object') {
      const apiError = (e as { apiError?: () => { err_code?: number } }).apiError;
      if (typeof apiError === 'function') {
        const code = apiError.call(e).err_code;
        if (typeof code === 'number') return code;
      }
      e = (e as { cause?: unknown }).cause;
    } else break;
  }
  return undefined;
}

export const isWrongLastSequence = (err: unknown): boolean => {
  const code = jetStreamErrorCode(err);
  return (
    code === JetStreamErrorCode.StreamWrongLastSequence ||
    code === JetStreamErrorCode.StreamWrongLastSequenceUnknown
  );
};
export const isStreamNotFound = (err: unknown): boolean =>
  jetStreamErrorCode(err) === JetStreamErrorCode.StreamNotFound;
export const isConsumerNotFound = (err: unknown): boolean =>
  jetStreamErrorCode(err) === JetStreamErrorCode.ConsumerNotFound;
export const isStreamNameInUse = (err: unknown): boolean =>
  jetStreamErrorCode(err) === JetStreamErrorCode.StreamNameInUse;

/** Base class: `instanceof MessagingError` catches everything this library throws. */
export class MessagingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A publish with an expected last subject sequence found a different one (code 10071). */
export class WrongExpectedSequence extends MessagingError {
  constructor(
    readonly subject: string,
    readonly expected: bigint | 'no-previous',
    options?: ErrorOptions,
  ) {
    super(
      `wrong expected sequence on ${subject}: expected ${expected === 'no-previous' ? 'no previous message' : `last sequence ${expected}`}`,
      options,
    );
  }
}

/** The server did not store the message (no stream for the subject, timeout, limits...). */
export class PublishFailed extends MessagingError {
  constructor(
    readonly subject: string,
    options?: ErrorOptions,
  ) {
    super(`publish to ${subject} failed: ${messageOf(options?.cause)}`, options);
  }
}

/** A stream, bucket or consumer could not be created or brought to the wanted config. */
export class ProvisioningFailed extends MessagingError {
  constructor(
    readonly resource: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`provisioning ${resource} failed: ${reason}`, options);
  }
}

/** Nobody subscribes to the command subject. */
export class NoResponders extends MessagingError {
  constructor(
    readonly subject: string,
    options?: ErrorOptions,
  ) {
    super(`no responders for ${subject}`, options);
  }
}

/** The command got no reply in time; it may or may not have been carried out. */
export class RequestTimeout extends MessagingError {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`request to ${subject} timed out after ${timeoutMs} ms`, options);
  }
}

/** The command handler answered with an error. `code` is the handler's, e.g. `NOT_FOUND`. */
export class CommandFailed extends MessagingError {
  constructor(
    readonly subject: string,
    readonly code: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`command ${subject} failed: ${code}: ${detail}`, options);
  }
}

/**
 * Thrown by an `@OnCommand` handler to answer with a domain error code; the caller receives
 * `CommandFailed` with the same code and message. Any other error is answered as `INTERNAL`.
 */
export class CommandError extends MessagingError {
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
