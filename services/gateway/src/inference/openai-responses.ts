/**
 * Worker chunks in OpenAI's shapes: `chat.completion.chunk` / `text_completion` stream chunks, and
 * the `chat.completion` / `text_completion` bodies of a non-streamed reply, which are the same
 * chunks accumulated. Pure: no I/O.
 */
import type { InferenceChunk } from '@longtail/contracts';

export type Endpoint = 'chat' | 'completion';
type WorkerLogprob = NonNullable<InferenceChunk['logprobs']>[number];

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

const finishReason = (r: InferenceChunk['finishReason']): 'stop' | 'length' | null =>
  r === null ? null : r === 'length' ? 'length' : 'stop';

const toUsage = (u: NonNullable<InferenceChunk['usage']>): OpenAiUsage => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.promptTokens + u.completionTokens,
});

const chatLogprob = (l: WorkerLogprob) => ({
  token: l.token,
  logprob: l.logprob,
  bytes: l.bytes,
  top_logprobs: l.topLogprobs.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
});

interface ChoiceState {
  text: string;
  logprobs: WorkerLogprob[];
  /** Characters of completion text before each token (completions' `text_offset`). */
  offsets: number[];
  /** Characters of the tokens' own text so far. */
  tokenChars: number;
  finish: 'stop' | 'length' | null;
  started: boolean;
}

export class OpenAiReply {
  readonly #choices = new Map<number, ChoiceState>();
  #usage: OpenAiUsage | undefined;

  constructor(
    readonly endpoint: Endpoint,
    readonly id: string,
    readonly model: string,
    readonly created: number,
    private readonly wantLogprobs: boolean,
  ) {}

  get usage(): OpenAiUsage | undefined {
    return this.#usage;
  }

  /** Records a worker chunk and returns it as an OpenAI stream chunk. */
  add(chunk: InferenceChunk): Record<string, unknown> {
    let state = this.#choices.get(chunk.index);
    if (state === undefined) {
      state = { text: '', logprobs: [], offsets: [], tokenChars: 0, finish: null, started: false };
      this.#choices.set(chunk.index, state);
    }
    state.text += chunk.text;
    const logprobs = chunk.logprobs ?? [];
    const offsets = logprobs.map((l) => {
      const at = state.tokenChars;
      state.tokenChars += l.token.length;
      return at;
    });
    state.logprobs.push(...logprobs);
    state.offsets.push(...offsets);
    state.finish = finishReason(chunk.finishReason);
    if (chunk.usage) this.#usage = toUsage(chunk.usage);
    const first = !state.started;
    state.started = true;
    if (this.endpoint === 'chat') {
      const delta: Record<string, unknown> = first
        ? { role: 'assistant', content: chunk.text }
        : chunk.text === ''
          ? {}
          : { content: chunk.text };
      return this.envelope('chat.completion.chunk', [
        {
          index: chunk.index,
          delta,
          logprobs: this.wantLogprobs ? { content: logprobs.map(chatLogprob), refusal: null } : null,
          finish_reason: state.finish,
        },
      ]);
    }
    return this.envelope('text_completion', [
      {
        index: chunk.index,
        text: chunk.text,
        logprobs: this.wantLogprobs ? completionLogprobs(logprobs, offsets) : null,
        finish_reason: state.finish,
      },
    ]);
  }

  /** The `stream_options.include_usage` chunk: no choices, the usage. */
  usageChunk(): Record<string, unknown> {
    return {
      ...this.envelope(this.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion', []),
      usage: this.#usage ?? null,
    };
  }

  /** The whole reply as one body (non-streamed). */
  body(): Record<string, unknown> {
    const indices = [...this.#choices.keys()].sort((a, b) => a - b);
    const choices = indices.map((index) => {
      const c = this.#choices.get(index)!;
      if (this.endpoint === 'chat')
        return {
          index,
          message: { role: 'assistant', content: c.text, refusal: null },
          logprobs: this.wantLogprobs ? { content: c.logprobs.map(chatLogprob), refusal: null } : null,
          finish_reason: c.finish ?? 'stop',
        };
      return {
        index,
        text: c.text,
        logprobs: this.wantLogprobs ? completionLogprobs(c.logprobs, c.offsets) : null,
        finish_reason: c.finish ?? 'stop',
      };
    });
    return {
      ...this.envelope(this.endpoint === 'chat' ? 'chat.completion' : 'text_completion', choices),
      usage: this.#usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    };
  }

  private envelope(object: string, choices: unknown[]): Record<string, unknown> {
    return {
      id: this.id,
      object,
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices,
    };
  }
}

function completionLogprobs(logprobs: readonly WorkerLogprob[], offsets: readonly number[]) {
  return {
    tokens: logprobs.map((l) => l.token),
    token_logprobs: logprobs.map((l) => l.logprob),
    top_logprobs: logprobs.map((l) => Object.fromEntries(l.topLogprobs.map((t) => [t.token, t.logprob]))),
    text_offset: offsets,
  };
}
