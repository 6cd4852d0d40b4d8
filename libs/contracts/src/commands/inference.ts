/**
 * The gateway → gpu-worker inference command: a core NATS request with streamed replies
 * (`requestStream` / `serveStream` in @longtail/messaging) on `workerGenerateSubject(workerId)`.
 * Not an event and not in any stream: the subject is outside every stream's `<family>.>` filter.
 *
 * The worker tokenizes (the chat template of its model folder for `chat`), runs the engine, and
 * streams one `InferenceChunk` per generated piece of text; the last chunk of each choice carries
 * its `finishReason`, and the very last chunk carries `usage`. Errors end the stream with an error
 * frame whose code is one of INFERENCE_ERROR_CODES.
 *
 * Invariants the gateway relies on:
 * - Text is never split inside a UTF-8 character and never contains part of a stop string.
 * - The `tokens` of all chunks add up to `usage.completionTokens`, which is the `completionTokens`
 *   of the request's inference event: what the client was sent is what is billed.
 * - OVERLOADED and DRAINING come before any chunk and mean nothing was started and no event will
 *   be published: the gateway may send the same request (same `requestId`) to another worker.
 *   A worker that admitted a request publishes exactly one inference event for it.
 * - `requestId` should be a UUID v7: the worker uses it as the event id (`Nats-Msg-Id`), so a
 *   re-published outcome is dropped by JetStream.
 */
import { z } from 'zod';

import { AdapterIdSchema, ModelIdSchema, OpaqueIdSchema } from '../fields.js';
import { subjectToken } from '../streams.js';

export const ChatMessageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant', 'developer', 'tool']),
  content: z.string().max(1_000_000),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const SamplingSchema = z.strictObject({
  maxTokens: z.int().min(1).max(1_000_000),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().gt(0).max(1).optional(),
  topK: z.int().min(0).optional(),
  minP: z.number().min(0).lt(1).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  repetitionPenalty: z.number().gt(0).max(10).optional(),
  seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Stop strings: generation ends before the first occurrence; the text is not returned. */
  stop: z.array(z.string().min(1).max(256)).max(4).optional(),
  logprobs: z.boolean().optional(),
  topLogprobs: z.int().min(0).max(20).optional(),
});
export type Sampling = z.infer<typeof SamplingSchema>;

export const InferenceRequestSchema = z.strictObject({
  requestId: OpaqueIdSchema,
  tenantId: OpaqueIdSchema,
  apiKeyId: OpaqueIdSchema.optional(),
  model: ModelIdSchema,
  adapterId: AdapterIdSchema.nullable(),
  /** sha256 of the adapter's weights object (hex); the worker fetches and checks it. */
  adapterSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  input: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('chat'), messages: z.array(ChatMessageSchema).min(1).max(1024) }),
    z.strictObject({ kind: z.literal('text'), prompt: z.string().max(4_000_000) }),
  ]),
  sampling: SamplingSchema,
  /** Number of choices (OpenAI `n`). */
  n: z.int().min(1).max(16),
});
export type InferenceRequest = z.infer<typeof InferenceRequestSchema>;

export const TokenLogprobSchema = z.strictObject({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.int()).nullable(),
  topLogprobs: z.array(z.strictObject({ token: z.string(), logprob: z.number(), bytes: z.array(z.int()).nullable() })),
});

export const InferenceChunkSchema = z.strictObject({
  /** Choice index (0..n-1). */
  index: z.int().min(0),
  /** New text of this choice (may be empty, e.g. on the final chunk). */
  text: z.string(),
  /** Tokens this chunk stands for. */
  tokens: z.int().min(0),
  logprobs: z.array(TokenLogprobSchema).optional(),
  finishReason: z.enum(['stop', 'length', 'cancelled']).nullable(),
  /** On the last chunk of the request only. */
  usage: z
    .strictObject({ promptTokens: z.int().min(0), completionTokens: z.int().min(0) })
    .optional(),
});
export type InferenceChunk = z.infer<typeof InferenceChunkSchema>;

/** Error codes of the error frame that ends a failed stream. */
export const INFERENCE_ERROR_CODES = {
  /** The worker's queue is full: try another worker, else answer 429/503. Nothing was started. */
  Overloaded: 'OVERLOADED',
  /** The request cannot be served (prompt too long, unknown model/adapter, bad sampling). */
  BadRequest: 'BAD_REQUEST',
  /** The adapter could not be fetched or loaded. */
  AdapterUnavailable: 'ADAPTER_UNAVAILABLE',
  /** The worker is draining (SIGTERM): nothing was started. */
  Draining: 'DRAINING',
  /** The engine failed mid-generation. */
  Internal: 'INTERNAL',
} as const;

/** Core NATS subject a worker serves generation on (one per worker). */
export function workerGenerateSubject(workerId: string): string {
  return `worker.${subjectToken(workerId)}.generate`;
}
