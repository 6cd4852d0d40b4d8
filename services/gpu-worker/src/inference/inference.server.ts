/**
 * The worker's serving loop: answers `workerGenerateSubject(WORKER_ID)` with streamed
 * `InferenceChunk`s. One request: validate → admit (or refuse: OVERLOADED, DRAINING) → resolve
 * the adapter → tokenize (chat template or plain text) → n engine generations → detokenize
 * incrementally, hold back partial stop strings → stream chunks, the last one with usage →
 * publish exactly one `inference.completed` / `inference.failed`. The caller's cancel aborts the
 * engine generations. On shutdown it stops taking requests and finishes the running ones.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { z } from 'zod';
import {
  createEvent,
  INFERENCE_ERROR_CODES,
  InferenceCompletedV1,
  InferenceFailedV1,
  InferenceRequestSchema,
  workerGenerateSubject,
  type InferenceChunk,
  type InferenceRequest,
  type Sampling,
} from '@longtail/contracts';
import { Engine, type GeneratedToken, type Generation, type SamplingOptions } from '@longtail/engine-node';
import {
  CommandError,
  EventPublisher,
  MESSAGING_CONNECTION,
  serveStream,
  type MessagingConnection,
  type StreamMeta,
  type StreamServer,
} from '@longtail/messaging';
import { failpoint } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';
import type { WorkerConfig } from '../config.js';
import { WORKER_CONFIG, WORKER_LOGGER } from '../registry/tokens.js';
import {
  AdapterResolvers,
  FolderAdapterResolver,
  ObjectStoreAdapterResolver,
  type AdapterResolver,
} from './adapter-resolver.js';
import { mergeStreams } from './merge-streams.js';
import { ModelTokenizer } from './model-tokenizer.js';
import { IncrementalDetokenizer, StopStringFilter } from './text-stream.js';

type FinishReason = 'stop' | 'length' | 'cancelled';
type TokenLogprob = NonNullable<InferenceChunk['logprobs']>[number];

/** What the heartbeat reports: the engine's own counts, and the adapters registered in it. */
export interface WorkerLoad {
  /** Sequences the engine is generating. */
  readonly inFlight: number;
  /** Sequences waiting in the engine for room in the batch. */
  readonly queueDepth: number;
  /** Adapters registered and ready (loaded from disk or the object store, validated). */
  readonly residentAdapters: readonly string[];
  /** The engine's backend adapter pool: pages in all and free, bytes a page. */
  readonly pool: { readonly pagesTotal: number; readonly pagesFree: number; readonly pageBytes: number };
  /** The paged KV cache: blocks in all and free, positions a block. */
  readonly kv: { readonly blocksTotal: number; readonly blocksFree: number; readonly blockTokens: number };
  /**
   * Requests on an adapter since start: `warm` found it ready on this worker, `cold` had to load it
   * (or wait for a load in progress). The placement tests read their hit rate from these.
   */
  readonly adapterRequests: { readonly warm: number; readonly cold: number };
}

/** How often a running request sends a keepalive frame to the gateway (ms). */
const KEEPALIVE_MS = 1000;

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Outcome of one request, filled in as it runs; becomes its inference event. */
interface RequestOutcome {
  promptTokens: number;
  completionTokens: number;
  finishReasons: FinishReason[];
  error: { code: string; message: string } | undefined;
  queuedMs: number;
  firstTokenMs: number | null;
}

@Injectable()
export class InferenceServer implements OnModuleInit, BeforeApplicationShutdown {
  #engine: Engine | undefined;
  #tokenizer: ModelTokenizer | undefined;
  #server: StreamServer | undefined;
  readonly #adapters: AdapterResolver;
  /** Adapter id → its registration in the engine (registered once, on first use or a load command). */
  readonly #registered = new Map<string, Promise<void>>();
  /** Adapters whose registration completed. */
  readonly #ready = new Set<string>();
  /** Adapter id → requests admitted on it and not yet ended: an evict command leaves these alone. */
  readonly #using = new Map<string, number>();
  #warm = 0;
  #cold = 0;
  /** Requests admitted and not yet ended. */
  #admitted = 0;
  #draining = false;
  readonly #publishing = new Set<Promise<void>>();

  constructor(
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    @Inject(WORKER_LOGGER) private readonly logger: Logger,
    private readonly publisher: EventPublisher,
  ) {
    const resolvers: AdapterResolver[] = [new FolderAdapterResolver(config.ADAPTER_DIRS)];
    if (config.ADAPTER_CACHE_DIR !== undefined)
      resolvers.push(new ObjectStoreAdapterResolver(conn.nc, config.ADAPTER_CACHE_DIR));
    this.#adapters = new AdapterResolvers(resolvers);
  }

  async onModuleInit(): Promise<void> {
    const dir = this.config.MODEL_DIR;
    if (dir === undefined) {
      this.logger.warn('MODEL_DIR is not set: this worker heartbeats but serves nothing');
      return;
    }
    [this.#engine, this.#tokenizer] = await Promise.all([
      Engine.open(dir, { threads: this.config.ENGINE_THREADS }),
      ModelTokenizer.load(dir),
    ]);
    const subject = workerGenerateSubject(this.config.WORKER_ID);
    // Keepalive frames while a request runs: the gateway tells a dead worker (killed mid-stream)
    // from a slow one within its short idle timeout, and retries or fails the request cleanly.
    this.#server = serveStream(this.conn, subject, (payload, meta) => this.serve(payload, meta), {
      logger: this.logger,
      keepaliveMs: KEEPALIVE_MS,
    });
    this.logger.info({ subject, model: this.config.BASE_MODEL, dir }, 'serving inference');
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.#draining = true;
    await this.#server?.stop();
    await Promise.allSettled([...this.#publishing]);
    await this.#engine?.close();
  }

  get draining(): boolean {
    return this.#draining;
  }

  load(): WorkerLoad {
    const stats = this.#engine && !this.#engine.closed ? this.#engine.stats() : undefined;
    return {
      inFlight: stats?.running ?? 0,
      queueDepth: stats?.waiting ?? 0,
      residentAdapters: [...this.#ready],
      pool: {
        pagesTotal: stats?.poolPagesTotal ?? 0,
        pagesFree: stats?.poolPagesFree ?? 0,
        pageBytes: stats?.poolPageBytes ?? 0,
      },
      kv: {
        blocksTotal: stats?.kvBlocksTotal ?? 0,
        blocksFree: stats?.kvBlocksFree ?? 0,
        blockTokens: stats?.kvBlockTokens ?? 0,
      },
      adapterRequests: { warm: this.#warm, cold: this.#cold },
    };
  }

  /** Loads an adapter ahead of its traffic (the scheduler's prefetch); idempotent. */
  async loadAdapter(adapterId: string, sha256: string | null): Promise<void> {
    if (this.#engine === undefined) throw new Error('this worker serves no model');
    if (!adapterId.startsWith(`${this.config.BASE_MODEL}:`))
      throw new Error(`${adapterId} is not an adapter of ${this.config.BASE_MODEL}`);
    await this.register(adapterId, sha256);
  }

  /**
   * Drops an adapter from the engine. false (nothing changed) while a request uses it; true when
   * it is gone (or was never here).
   */
  async evictAdapter(adapterId: string): Promise<boolean> {
    if ((this.#using.get(adapterId) ?? 0) > 0) return false;
    const registration = this.#registered.get(adapterId);
    if (registration === undefined) return true;
    await registration.catch(() => undefined);
    if ((this.#using.get(adapterId) ?? 0) > 0) return false;
    if (this.#ready.has(adapterId)) {
      try {
        this.#engine!.unregisterAdapter(adapterId);
      } catch {
        return false; // the engine still runs a sequence on it
      }
    }
    this.#registered.delete(adapterId);
    this.#ready.delete(adapterId);
    return true;
  }

  private async *serve(payload: unknown, meta: StreamMeta): AsyncGenerator<InferenceChunk> {
    const parsed = InferenceRequestSchema.safeParse(payload);
    if (!parsed.success)
      throw new CommandError(INFERENCE_ERROR_CODES.BadRequest, z.prettifyError(parsed.error));
    const request = parsed.data;
    if (this.#draining) throw new CommandError(INFERENCE_ERROR_CODES.Draining, 'the worker is draining');
    if (this.#admitted >= this.config.MAX_QUEUE)
      throw new CommandError(
        INFERENCE_ERROR_CODES.Overloaded,
        `the worker has ${this.#admitted} requests queued`,
      );
    if (request.model !== this.config.BASE_MODEL)
      throw new CommandError(
        INFERENCE_ERROR_CODES.BadRequest,
        `this worker serves ${this.config.BASE_MODEL}, not ${request.model}`,
      );

    this.#admitted++;
    const using = request.adapterId;
    if (using !== null) this.#using.set(using, (this.#using.get(using) ?? 0) + 1);
    // Tests crash the worker here: admitted, nothing sent, no event published.
    failpoint('gpu-worker.inference.after-admit');
    const startedAt = new Date();
    const t0 = performance.now();
    const outcome: RequestOutcome = {
      promptTokens: 0,
      completionTokens: 0,
      finishReasons: [],
      error: undefined,
      queuedMs: 0,
      firstTokenMs: null,
    };
    const generations: Generation[] = [];
    try {
      const engine = this.#engine!;
      const tokenizer = this.#tokenizer!;
      const adapter = await this.adapterFor(request);
      const prompt = this.tokenize(request);
      outcome.promptTokens = prompt.length;
      const baseSeed = request.sampling.seed ?? randomInt(2 ** 47);
      try {
        for (let i = 0; i < request.n; i++) {
          const sampling = engineSampling(
            request.sampling,
            BigInt(baseSeed) + BigInt(i),
            tokenizer.stopTokenIds,
          );
          generations.push(
            engine.generate(prompt, { ...(adapter ? { adapter } : {}), sampling, signal: meta.signal }),
          );
        }
      } catch (err) {
        throw new CommandError(INFERENCE_ERROR_CODES.BadRequest, (err as Error).message, { cause: err });
      }
      outcome.queuedMs = Math.round(performance.now() - t0);

      let running = request.n;
      const choices = generations.map((g, i) => this.choice(g, i, request.sampling));
      for await (const chunk of mergeStreams(choices)) {
        if (meta.signal.aborted) break;
        if (chunk.finishReason !== null) {
          outcome.finishReasons.push(chunk.finishReason);
          if (--running === 0)
            chunk.usage = {
              promptTokens: outcome.promptTokens,
              completionTokens: outcome.completionTokens + chunk.tokens,
            };
        }
        if (chunk.tokens > 0) outcome.firstTokenMs ??= Math.round(performance.now() - t0);
        outcome.completionTokens += chunk.tokens;
        yield chunk;
      }
    } catch (err) {
      outcome.error = {
        code: err instanceof CommandError ? err.code : INFERENCE_ERROR_CODES.Internal,
        message: (err as Error).message,
      };
      if (!(err instanceof CommandError))
        this.logger.error({ err, requestId: request.requestId }, 'generation failed');
      throw err instanceof CommandError
        ? err
        : new CommandError(INFERENCE_ERROR_CODES.Internal, (err as Error).message, { cause: err });
    } finally {
      for (const g of generations) g.cancel();
      this.#admitted--;
      if (using !== null) {
        const left = (this.#using.get(using) ?? 1) - 1;
        if (left === 0) this.#using.delete(using);
        else this.#using.set(using, left);
      }
      if (meta.signal.aborted) outcome.finishReasons.push('cancelled');
      // Published with the reply's last frames (one socket write for both).
      meta.afterReply(() => this.publishOutcome(request, outcome, startedAt, t0));
    }
  }

  /** One choice's chunks: text as it becomes stable, the last chunk with its finish reason. */
  private async *choice(gen: Generation, index: number, sampling: Sampling): AsyncGenerator<InferenceChunk> {
    const tokenizer = this.#tokenizer!;
    const detokenizer = new IncrementalDetokenizer(tokenizer);
    const stops = new StopStringFilter(sampling.stop ?? []);
    const wantLogprobs = sampling.logprobs === true || (sampling.topLogprobs ?? 0) > 0;
    let tokens = 0;
    let logprobs: TokenLogprob[] = [];
    const chunk = (text: string, finishReason: InferenceChunk['finishReason']): InferenceChunk => {
      const c: InferenceChunk = { index, text, tokens, finishReason };
      if (wantLogprobs) c.logprobs = logprobs;
      tokens = 0;
      logprobs = [];
      return c;
    };
    for await (const t of gen) {
      tokens++;
      if (wantLogprobs) logprobs.push(this.logprobOf(t));
      const piece = stops.push(detokenizer.push(t.token));
      if (piece.stopped) {
        gen.cancel();
        yield chunk(piece.text, 'stop');
        return;
      }
      if (piece.text !== '') yield chunk(piece.text, null);
    }
    const result = await gen.result;
    if (result.finishReason === 'cancelled') return; // the caller went away
    const tail = stops.push(detokenizer.flush());
    const text = tail.text + stops.flush();
    yield chunk(text, tail.stopped || result.finishReason !== 'length' ? 'stop' : 'length');
  }

  private logprobOf(t: GeneratedToken): TokenLogprob {
    const entry = (token: number, logprob: number) => {
      const text = this.#tokenizer!.decode([token]);
      return { token: text, logprob, bytes: [...Buffer.from(text, 'utf8')] };
    };
    return {
      ...entry(t.token, t.logprob ?? 0),
      topLogprobs: (t.topLogprobs ?? []).map((a) => entry(a.token, a.logprob)),
    };
  }

  private tokenize(request: InferenceRequest): number[] {
    const tokenizer = this.#tokenizer!;
    try {
      return request.input.kind === 'chat'
        ? tokenizer.encodeChat(request.input.messages)
        : tokenizer.encodeText(request.input.prompt);
    } catch (err) {
      throw new CommandError(INFERENCE_ERROR_CODES.BadRequest, `cannot tokenize: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** The engine's name for the request's adapter, registered on first use; undefined: base model. */
  private async adapterFor(request: InferenceRequest): Promise<string | undefined> {
    const id = request.adapterId;
    if (id === null) return undefined;
    if (!id.startsWith(`${this.config.BASE_MODEL}:`))
      throw new CommandError(
        INFERENCE_ERROR_CODES.BadRequest,
        `${id} is not an adapter of ${this.config.BASE_MODEL}`,
      );
    if (this.#ready.has(id)) this.#warm++;
    else this.#cold++;
    try {
      await this.register(id, request.adapterSha256);
    } catch (err) {
      throw new CommandError(INFERENCE_ERROR_CODES.AdapterUnavailable, (err as Error).message, {
        cause: err,
      });
    }
    return id;
  }

  /** The adapter's registration in the engine, started once (a failed one is forgotten). */
  private register(id: string, sha256: string | null): Promise<void> {
    let registration = this.#registered.get(id);
    if (registration === undefined) {
      const started: Promise<void> = (async () => {
        const dir = await this.#adapters.resolve(id, sha256);
        if (dir === undefined) throw new Error(`adapter ${id} is not available on this worker`);
        await this.#engine!.registerAdapterAsync(id, dir);
      })().then(() => {
        if (this.#registered.get(id) === started) this.#ready.add(id);
      });
      registration = started;
      this.#registered.set(id, started);
      started.catch(() => {
        if (this.#registered.get(id) === started) this.#registered.delete(id);
      });
    }
    return registration;
  }

  private publishOutcome(
    request: InferenceRequest,
    outcome: RequestOutcome,
    startedAt: Date,
    t0: number,
  ): void {
    const totalMs = Math.round(performance.now() - t0);
    const common = {
      requestId: request.requestId,
      tenantId: request.tenantId,
      ...(request.apiKeyId === undefined ? {} : { apiKeyId: request.apiKeyId }),
      model: request.model,
      adapterId: request.adapterId,
      workerId: this.config.WORKER_ID,
      operatorAddress: this.config.OPERATOR_ADDRESS,
      promptTokens: outcome.promptTokens,
      completionTokens: outcome.completionTokens,
      timings: {
        queuedMs: Math.min(outcome.queuedMs, totalMs),
        firstTokenMs:
          outcome.completionTokens === 0 ? null : Math.min(outcome.firstTokenMs ?? totalMs, totalMs),
        totalMs,
      },
      startedAt: startedAt.toISOString(),
      endedAt: new Date(Math.max(Date.now(), startedAt.getTime())).toISOString(),
    };
    const metadata = {
      ...(UUID_V7.test(request.requestId) ? { id: request.requestId } : {}),
      correlationId: request.requestId,
      causationId: null,
    };
    const p = (async () => {
      const event = outcome.error
        ? createEvent(
            InferenceFailedV1,
            {
              ...common,
              error: {
                code: outcome.error.code.toLowerCase(),
                message: outcome.error.message.slice(0, 1000) || 'failed',
              },
            },
            metadata,
          )
        : createEvent(
            InferenceCompletedV1,
            { ...common, finishReason: overallFinish(outcome.finishReasons) },
            metadata,
          );
      await this.publisher.publish(event);
    })()
      .catch((err: unknown) =>
        this.logger.error({ err, requestId: request.requestId }, 'inference event not published'),
      )
      .finally(() => this.#publishing.delete(p));
    this.#publishing.add(p);
  }
}

/** The request's sampling in the engine's terms; the seed differs per choice so n choices differ. */
function engineSampling(s: Sampling, seed: bigint, stopTokenIds: readonly number[]): SamplingOptions {
  const out: SamplingOptions = { maxTokens: s.maxTokens, seed, stopTokenIds };
  if (s.temperature !== undefined) out.temperature = s.temperature;
  if (s.topP !== undefined) out.topP = s.topP;
  if (s.topK !== undefined) out.topK = s.topK;
  if (s.minP !== undefined) out.minP = s.minP;
  if (s.frequencyPenalty !== undefined) out.frequencyPenalty = s.frequencyPenalty;
  if (s.presencePenalty !== undefined) out.presencePenalty = s.presencePenalty;
  if (s.repetitionPenalty !== undefined) out.repetitionPenalty = s.repetitionPenalty;
  if (s.logprobs !== undefined) out.logprobs = s.logprobs;
  if (s.topLogprobs !== undefined) out.topLogprobs = s.topLogprobs;
  return out;
}

/** One finish reason for the request: cancelled wins, then length (some choice was cut), else stop. */
function overallFinish(reasons: readonly FinishReason[]): FinishReason {
  if (reasons.includes('cancelled')) return 'cancelled';
  if (reasons.includes('length')) return 'length';
  return 'stop';
}
