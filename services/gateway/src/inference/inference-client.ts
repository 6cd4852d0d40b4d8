/**
 * Sends an inference request to a worker and hands back its chunks. A worker that refuses before
 * the first chunk (OVERLOADED, DRAINING) or is gone (no responders) is skipped for the next one the
 * router names; when none takes it the caller gets 429 (all busy) or 503 (none there). Errors map
 * to OpenAI's statuses; aborting `signal` cancels the generation at the worker. A request that no
 * worker took gets its one `inference.failed` event from here (workerId null); a worker that
 * admitted a request publishes its event itself.
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  createEvent,
  INFERENCE_ERROR_CODES,
  InferenceFailedV1,
  type InferenceChunk,
  type InferenceRequest,
} from '@longtail/contracts';
import {
  CommandFailed,
  EventPublisher,
  MESSAGING_CONNECTION,
  NoResponders,
  RequestTimeout,
  requestStream,
  type MessagingConnection,
} from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import { ApiError } from '../http/openai-errors.js';
import { GATEWAY_LOGGER } from '../logger.token.js';
import { WORKER_ROUTER, type WorkerRouter } from './worker-router.js';

/** A started generation: the first chunk already arrived. */
export interface StartedInference {
  readonly workerId: string;
  readonly first: InferenceChunk;
  /** The chunks after the first; throws ApiError when the worker fails mid-stream. */
  readonly rest: AsyncIterable<InferenceChunk>;
}

/** Until the first chunk: prefill of a long prompt, adapter loading. */
const FIRST_CHUNK_TIMEOUT_MS = 60_000;

@Injectable()
export class InferenceClient {
  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(WORKER_ROUTER) private readonly router: WorkerRouter,
    private readonly publisher: EventPublisher,
    @Inject(GATEWAY_LOGGER) private readonly logger: Logger,
  ) {}

  async start(request: InferenceRequest, signal: AbortSignal): Promise<StartedInference | undefined> {
    const routes = this.router.route(request.model, request.adapterId);
    let busy = false;
    for (const route of routes) {
      const chunks = requestStream<InferenceChunk>(this.conn, route.subject, request, {
        firstReplyTimeoutMs: FIRST_CHUNK_TIMEOUT_MS,
        signal,
      });
      let first: IteratorResult<InferenceChunk, void>;
      try {
        first = await chunks.next();
      } catch (err) {
        if (err instanceof NoResponders) continue;
        if (
          err instanceof CommandFailed &&
          (err.code === INFERENCE_ERROR_CODES.Overloaded || err.code === INFERENCE_ERROR_CODES.Draining)
        ) {
          busy ||= err.code === INFERENCE_ERROR_CODES.Overloaded;
          continue;
        }
        throw toApiError(err);
      }
      if (first.done === true) return undefined; // cancelled by the client before anything came
      return { workerId: route.workerId, first: first.value, rest: rethrowing(chunks) };
    }
    const refusal = busy
      ? new ApiError(429, {
          message: `All workers of ${request.model} are busy; retry shortly.`,
          type: 'rate_limit_error',
          param: null,
          code: 'overloaded',
        })
      : new ApiError(503, {
          message: `No worker is serving ${request.model} right now.`,
          type: 'server_error',
          param: null,
          code: 'no_worker',
        });
    await this.publishUnserved(
      request,
      busy ? 'no_worker_available' : 'no_worker_serving',
      refusal.body.message,
    );
    throw refusal;
  }

  /** The one event of a request that never reached a worker. */
  private async publishUnserved(request: InferenceRequest, code: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    const event = createEvent(
      InferenceFailedV1,
      {
        requestId: request.requestId,
        tenantId: request.tenantId,
        ...(request.apiKeyId === undefined ? {} : { apiKeyId: request.apiKeyId }),
        model: request.model,
        adapterId: request.adapterId,
        workerId: null,
        operatorAddress: null,
        promptTokens: 0,
        completionTokens: 0,
        error: { code, message },
        timings: { queuedMs: 0, firstTokenMs: null, totalMs: 0 },
        startedAt: now,
        endedAt: now,
      },
      { id: request.requestId, correlationId: request.requestId, causationId: null },
    );
    // The client's answer does not wait on the event store being up; an operator sees the cause.
    await this.publisher.publish(event).catch((err: unknown) => {
      this.logger.error({ err, requestId: request.requestId }, 'inference.failed not published');
    });
  }
}

async function* rethrowing(
  chunks: AsyncGenerator<InferenceChunk, void>,
): AsyncGenerator<InferenceChunk, void> {
  try {
    for (;;) {
      const next = await chunks.next();
      if (next.done === true) return;
      yield next.value;
    }
  } catch (err) {
    throw toApiError(err);
  } finally {
    await chunks.return();
  }
}

export function toApiError(err: unknown): ApiError | unknown {
  if (err instanceof ApiError) return err;
  if (err instanceof CommandFailed) {
    switch (err.code) {
      case INFERENCE_ERROR_CODES.BadRequest:
        return new ApiError(400, {
          message: err.detail,
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_request',
        });
      case INFERENCE_ERROR_CODES.AdapterUnavailable:
        return new ApiError(404, {
          message: err.detail,
          type: 'not_found_error',
          param: 'model',
          code: 'model_not_found',
        });
      case INFERENCE_ERROR_CODES.Overloaded:
        return new ApiError(429, {
          message: err.detail,
          type: 'rate_limit_error',
          param: null,
          code: 'overloaded',
        });
      default:
        return new ApiError(500, {
          message: 'The worker failed while generating.',
          type: 'server_error',
          param: null,
          code: 'worker_error',
        });
    }
  }
  if (err instanceof RequestTimeout)
    return new ApiError(504, {
      message: 'The worker did not answer in time.',
      type: 'server_error',
      param: null,
      code: 'timeout',
    });
  return err;
}
