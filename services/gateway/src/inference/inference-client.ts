/**
 * Sends an inference request to a worker and hands back its chunks. A worker that refuses before
 * the first chunk (OVERLOADED, DRAINING) or is gone (no responders) is skipped for the next one the
 * router names; when none takes it the caller gets 429 (all busy) or 503 (none there). Errors map
 * to OpenAI's statuses; aborting `signal` cancels the generation at the worker. A request that no
 * worker took gets its one `inference.failed` event from here (workerId null); a worker that
 * admitted a request publishes its event itself.
 *
 * Worker loss: a worker sends keepalive frames while it runs a request, so silence for
 * `GATEWAY_STREAM_IDLE_TIMEOUT_MS` (default 5000) means it is gone (killed, crashed, cut off).
 * Before its first chunk the request is tried on the next worker (the lost one published nothing,
 * or, if it was only stalled, its late event carries the same message id and the event stream's
 * duplicate window drops one of the two). After chunks went out the caller gets a 502
 * `worker_lost` from `rest`, and the gateway publishes the request's one `inference.failed`
 * (the lost worker's id, the completion tokens the caller received).
 */
import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import { Kvm, type KV } from '@nats-io/kv';
import {
  createEvent,
  INFERENCE_ERROR_CODES,
  InferenceFailedV1,
  KV_BUCKETS,
  subjectToken,
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

const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const ZERO_ADDRESS = `0x${'0'.repeat(40)}`;

function positiveIntEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

const workerLost = (): ApiError =>
  new ApiError(502, {
    message: 'The worker serving this request stopped responding; retry the request.',
    type: 'server_error',
    param: null,
    code: 'worker_lost',
  });

@Injectable()
export class InferenceClient {
  /**
   * Silence (no chunk, no keepalive) after which a worker counts as lost. Workers send a keepalive
   * every second while a request runs, so prefill and adapter loading never reach it.
   */
  readonly #idleTimeoutMs = positiveIntEnv('GATEWAY_STREAM_IDLE_TIMEOUT_MS', 5000);
  #workers: Promise<KV> | undefined;

  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(WORKER_ROUTER) private readonly router: WorkerRouter,
    private readonly publisher: EventPublisher,
    @Inject(GATEWAY_LOGGER) private readonly logger: Logger,
  ) {}

  async start(request: InferenceRequest, signal: AbortSignal): Promise<StartedInference | undefined> {
    const routes = await this.router.route(request.model, request.adapterId);
    const startedAt = new Date();
    const t0 = performance.now();
    let busy = false;
    let lost: string | undefined;
    for (const route of routes) {
      const chunks = requestStream<InferenceChunk>(this.conn, route.subject, request, {
        firstReplyTimeoutMs: this.#idleTimeoutMs,
        idleTimeoutMs: this.#idleTimeoutMs,
        signal,
      });
      let first: IteratorResult<InferenceChunk, void>;
      try {
        first = await chunks.next();
      } catch (err) {
        if (err instanceof NoResponders) continue;
        if (err instanceof RequestTimeout) {
          // Lost before it sent anything: nothing reached the client, so another worker may serve it.
          lost = route.workerId;
          this.logger.warn(
            { requestId: request.requestId, workerId: route.workerId },
            'worker lost before the first chunk; trying the next one',
          );
          continue;
        }
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
      const stream: LiveStream = {
        request,
        workerId: route.workerId,
        startedAt,
        t0,
        firstTokenMs: Math.round(performance.now() - t0),
        completionTokens: first.value.tokens,
      };
      return { workerId: route.workerId, first: first.value, rest: this.following(stream, chunks) };
    }
    if (lost !== undefined) {
      const error = workerLost();
      await this.publishFailed(
        { request, workerId: lost, startedAt, t0, firstTokenMs: null, completionTokens: 0 },
        'worker_lost',
        error.body.message,
      );
      throw error;
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
    await this.publishFailed(
      { request, workerId: null, startedAt, t0, firstTokenMs: null, completionTokens: 0 },
      busy ? 'no_worker_available' : 'no_worker_serving',
      refusal.body.message,
    );
    throw refusal;
  }

  /** The chunks after the first; a lost worker ends them with `worker_lost` and its event. */
  private async *following(
    stream: LiveStream,
    chunks: AsyncGenerator<InferenceChunk, void>,
  ): AsyncGenerator<InferenceChunk, void> {
    try {
      for (;;) {
        const next = await chunks.next();
        if (next.done === true) return;
        stream.completionTokens += next.value.tokens;
        yield next.value;
      }
    } catch (err) {
      if (err instanceof RequestTimeout) {
        const error = workerLost();
        this.logger.warn(
          { requestId: stream.request.requestId, workerId: stream.workerId },
          'worker lost mid-stream',
        );
        await this.publishFailed(stream, 'worker_lost', error.body.message);
        throw error;
      }
      throw toApiError(err);
    } finally {
      await chunks.return();
    }
  }

  /**
   * The operator of a (lost) worker, from its heartbeat, which outlives the worker until the
   * bucket's TTL; the zero address (a worker's own default) when it cannot be read.
   */
  private async operatorOf(workerId: string): Promise<string> {
    try {
      this.#workers ??= new Kvm(this.conn.nc).open(KV_BUCKETS.workers.bucket);
      const entry = await (await this.#workers).get(subjectToken(workerId));
      const address = (entry?.json<{ operatorAddress?: unknown }>() ?? {}).operatorAddress;
      if (typeof address === 'string' && EVM_ADDRESS.test(address)) return address;
    } catch (err) {
      this.#workers = undefined;
      this.logger.warn({ err, workerId }, 'operator of a lost worker not found');
    }
    return ZERO_ADDRESS;
  }

  /**
   * The gateway's `inference.failed` for a request no worker took (workerId null) or whose worker
   * was lost (its id, the completion tokens the caller received; prompt tokens are the worker's to
   * count, so 0). The request id is the message id: at most one event per request is stored.
   */
  private async publishFailed(stream: LiveStream, code: string, message: string): Promise<void> {
    const { request } = stream;
    const totalMs = Math.round(performance.now() - stream.t0);
    const operatorAddress = stream.workerId === null ? null : await this.operatorOf(stream.workerId);
    // The client's answer does not wait on the event store being up; an operator sees the cause.
    const publishing = async () => {
      const event = createEvent(
        InferenceFailedV1,
        {
          requestId: request.requestId,
          tenantId: request.tenantId,
          ...(request.apiKeyId === undefined ? {} : { apiKeyId: request.apiKeyId }),
          model: request.model,
          adapterId: request.adapterId,
          workerId: stream.workerId,
          operatorAddress,
          promptTokens: 0,
          completionTokens: stream.completionTokens,
          error: { code, message },
          timings: {
            queuedMs: 0,
            firstTokenMs:
              stream.completionTokens === 0 ? null : Math.min(stream.firstTokenMs ?? totalMs, totalMs),
            totalMs,
          },
          startedAt: stream.startedAt.toISOString(),
          endedAt: new Date(Math.max(Date.now(), stream.startedAt.getTime())).toISOString(),
        },
        { id: request.requestId, correlationId: request.requestId, causationId: null },
      );
      await this.publisher.publish(event);
    };
    await publishing().catch((err: unknown) => {
      this.logger.error({ err, requestId: request.requestId }, 'inference.failed not published');
    });
  }
}

/** A generation under way, for the event the gateway publishes if its worker is lost. */
interface LiveStream {
  readonly request: InferenceRequest;
  readonly workerId: string | null;
  readonly startedAt: Date;
  readonly t0: number;
  readonly firstTokenMs: number | null;
  /** Completion tokens handed to the caller so far. */
  completionTokens: number;
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
