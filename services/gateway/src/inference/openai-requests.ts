/**
 * OpenAI request bodies (`/v1/chat/completions`, `/v1/completions`) as strict schemas: a parameter
 * we do not support is a 400 naming it, not silently ignored. `toInferenceRequest` maps a valid
 * body to the gateway → worker contract, with OpenAI's defaults made explicit.
 */
import { z } from 'zod';
import { AdapterIdSchema, ModelIdSchema, type InferenceRequest, type Sampling } from '@longtail/contracts';

const nullish = <T extends z.ZodType>(schema: T) => schema.nullish();

const common = {
  model: z.string().min(1).max(256),
  stream: nullish(z.boolean()),
  stream_options: nullish(z.strictObject({ include_usage: z.boolean().optional() })),
  max_tokens: nullish(z.int().min(1).max(1_000_000)),
  n: nullish(z.int().min(1).max(16)),
  temperature: nullish(z.number().min(0).max(2)),
  top_p: nullish(z.number().gt(0).max(1)),
  seed: nullish(z.int().min(0).max(Number.MAX_SAFE_INTEGER)),
  stop: nullish(z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(4)])),
  frequency_penalty: nullish(z.number().min(-2).max(2)),
  presence_penalty: nullish(z.number().min(-2).max(2)),
  user: z.string().max(256).optional(),
};

const ContentPartSchema = z.strictObject({ type: z.literal('text'), text: z.string() });

export const ChatCompletionBodySchema = z.strictObject({
  ...common,
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['system', 'user', 'assistant', 'developer', 'tool']),
        content: z.union([z.string(), z.array(ContentPartSchema)]),
        name: z.string().max(64).optional(),
      }),
    )
    .min(1)
    .max(1024),
  max_completion_tokens: nullish(z.int().min(1).max(1_000_000)),
  logprobs: nullish(z.boolean()),
  top_logprobs: nullish(z.int().min(0).max(20)),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionBodySchema>;

export const CompletionBodySchema = z.strictObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
  /** Completions: the number of alternatives per position (0..5). */
  logprobs: nullish(z.int().min(0).max(5)),
  echo: nullish(z.literal(false)),
  suffix: nullish(z.null()),
});
export type CompletionBody = z.infer<typeof CompletionBodySchema>;

/** OpenAI's default length when the client names none (completions: 16, as OpenAI). */
const DEFAULT_CHAT_MAX_TOKENS = 512;
const DEFAULT_COMPLETION_MAX_TOKENS = 16;

/** `base` or `base:owner/name`; undefined when it cannot name a model at all. */
export function parseModelName(model: string): { base: string; adapterId: string | null } | undefined {
  const colon = model.indexOf(':');
  if (colon === -1)
    return ModelIdSchema.safeParse(model).success ? { base: model, adapterId: null } : undefined;
  return AdapterIdSchema.safeParse(model).success
    ? { base: model.slice(0, colon), adapterId: model }
    : undefined;
}

interface Caller {
  readonly requestId: string;
  readonly tenantId: string;
  readonly apiKeyId?: string;
}

function sampling(body: ChatCompletionBody | CompletionBody, maxTokens: number): Sampling {
  const s: Sampling = { maxTokens, temperature: body.temperature ?? 1 };
  if (body.top_p != null) s.topP = body.top_p;
  if (body.seed != null) s.seed = body.seed;
  if (body.stop != null) s.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (body.frequency_penalty != null) s.frequencyPenalty = body.frequency_penalty;
  if (body.presence_penalty != null) s.presencePenalty = body.presence_penalty;
  return s;
}

export function chatToInference(
  body: ChatCompletionBody,
  model: { base: string; adapterId: string | null },
  caller: Caller,
): InferenceRequest {
  const s = sampling(body, body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_CHAT_MAX_TOKENS);
  if (body.logprobs === true) {
    s.logprobs = true;
    if (body.top_logprobs != null) s.topLogprobs = body.top_logprobs;
  }
  return {
    ...caller,
    model: model.base,
    adapterId: model.adapterId,
    adapterSha256: null,
    input: {
      kind: 'chat',
      messages: body.messages.map((m) => ({
        role: m.role,
        content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
      })),
    },
    sampling: s,
    n: body.n ?? 1,
  };
}

export function completionToInference(
  body: CompletionBody,
  model: { base: string; adapterId: string | null },
  caller: Caller,
): InferenceRequest {
  const s = sampling(body, body.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS);
  if (body.logprobs != null) {
    s.logprobs = true;
    s.topLogprobs = body.logprobs;
  }
  return {
    ...caller,
    model: model.base,
    adapterId: model.adapterId,
    adapterSha256: null,
    input: { kind: 'text', prompt: typeof body.prompt === 'string' ? body.prompt : body.prompt[0]! },
    sampling: s,
    n: body.n ?? 1,
  };
}
