import { describe, expect, it } from 'vitest';
import { ChatCompletionBodySchema, chatToInference, parseModelName } from './openai-requests.js';
import { OpenAiReply } from './openai-responses.js';

describe('parseModelName', () => {
  it('reads a base model or base:owner/name, and nothing that could escape a path', () => {
    expect(parseModelName('tiny-llama')).toEqual({ base: 'tiny-llama', adapterId: null });
    expect(parseModelName('tiny-llama:acme/support')).toEqual({
      base: 'tiny-llama',
      adapterId: 'tiny-llama:acme/support',
    });
    expect(parseModelName('tiny-llama:../etc')).toBeUndefined();
    expect(parseModelName('Tiny')).toBeUndefined();
  });
});

describe('chatToInference', () => {
  const body = ChatCompletionBodySchema.parse({
    model: 'tiny',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
    ],
    max_tokens: 7,
    max_completion_tokens: 5,
    stop: 'x',
    logprobs: true,
    top_logprobs: 2,
  });

  it("maps OpenAI's parameters, max_completion_tokens over max_tokens, temperature 1 by default", () => {
    expect(
      chatToInference(body, { base: 'tiny', adapterId: null }, { requestId: 'r', tenantId: 't' }),
    ).toEqual({
      requestId: 'r',
      tenantId: 't',
      model: 'tiny',
      adapterId: null,
      adapterSha256: null,
      input: { kind: 'chat', messages: [{ role: 'user', content: 'ab' }] },
      sampling: { maxTokens: 5, temperature: 1, stop: ['x'], logprobs: true, topLogprobs: 2 },
      n: 1,
    });
  });

  it('refuses unknown parameters', () => {
    expect(
      ChatCompletionBodySchema.safeParse({
        model: 'tiny',
        messages: [{ role: 'user', content: 'a' }],
        tools: [],
      }).success,
    ).toBe(false);
  });
});

describe('OpenAiReply', () => {
  it("streams chat chunks in OpenAI's shape and accumulates the same text and usage", () => {
    const reply = new OpenAiReply('chat', 'chatcmpl-1', 'tiny', 1700000000, false);
    expect(reply.add({ index: 0, text: 'He', tokens: 1, finishReason: null })).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 1700000000,
      model: 'tiny',
      system_fingerprint: null,
      choices: [
        { index: 0, delta: { role: 'assistant', content: 'He' }, logprobs: null, finish_reason: null },
      ],
    });
    const last = reply.add({
      index: 0,
      text: 'llo',
      tokens: 2,
      finishReason: 'length',
      usage: { promptTokens: 4, completionTokens: 3 },
    });
    expect(last['choices']).toEqual([
      { index: 0, delta: { content: 'llo' }, logprobs: null, finish_reason: 'length' },
    ]);
    expect(reply.usageChunk()).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
    });
    expect(reply.body()).toMatchObject({
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'length' }],
      usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
    });
  });

  it('gives completions logprobs with text offsets', () => {
    const reply = new OpenAiReply('completion', 'cmpl-1', 'tiny', 1, true);
    const lp = (token: string) => ({
      token,
      logprob: -1,
      bytes: null,
      topLogprobs: [{ token, logprob: -1, bytes: null }],
    });
    reply.add({ index: 0, text: 'ab', tokens: 2, logprobs: [lp('a'), lp('b')], finishReason: null });
    reply.add({ index: 0, text: 'c', tokens: 1, logprobs: [lp('c')], finishReason: 'stop' });
    expect(reply.body()['choices']).toEqual([
      {
        index: 0,
        text: 'abc',
        finish_reason: 'stop',
        logprobs: {
          tokens: ['a', 'b', 'c'],
          token_logprobs: [-1, -1, -1],
          top_logprobs: [{ a: -1 }, { b: -1 }, { c: -1 }],
          text_offset: [0, 1, 2],
        },
      },
    ]);
  });
});
