/**
 * Admission of an inference request: the prompt size limit (400) and the tenant's rate limits
 * (429 with `Retry-After`). The `x-ratelimit-*` headers go on the reply either way.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { InferenceRequest } from '@longtail/contracts';
import { invalidRequest, rateLimited } from '../http/openai-errors.js';
import type { Principal } from './authenticator.js';
import { RateLimiter, type Lease } from './rate-limiter.js';

export const AUTH_SETTINGS = Symbol('longtail:gateway:auth-settings');

export interface AuthSettings {
  /** Longest prompt (characters over all messages) accepted. */
  readonly maxPromptChars: number;
}

const noLease: Lease = { settle: () => undefined };

/** Characters of the prompt: the text, or every message's content. */
export function promptChars(request: InferenceRequest): number {
  return request.input.kind === 'text'
    ? request.input.prompt.length
    : request.input.messages.reduce((sum, m) => sum + m.content.length, 0);
}

/** Tokens reserved at admission: a prompt estimate (4 characters a token, rounded up) plus max_tokens for each choice. */
export const reservedTokens = (request: InferenceRequest): number =>
  Math.ceil(promptChars(request) / 4) + request.sampling.maxTokens * request.n;

@Injectable()
export class InferenceAdmission {
  constructor(
    private readonly limiter: RateLimiter,
    @Inject(AUTH_SETTINGS) private readonly settings: AuthSettings,
  ) {}

  /** Throws 400 or 429; otherwise a lease to settle with the usage when the request ends. */
  admit(principal: Principal, request: InferenceRequest, reply: FastifyReply): Lease {
    const chars = promptChars(request);
    if (chars > this.settings.maxPromptChars)
      throw invalidRequest(
        `The prompt is too long: ${chars} characters, the limit is ${this.settings.maxPromptChars}.`,
        request.input.kind === 'text' ? 'prompt' : 'messages',
        'prompt_too_long',
      );
    if (!principal.limits) return noLease;
    const admission = this.limiter.admit(principal.tenantId, principal.limits, reservedTokens(request));
    void reply.headers(admission.headers);
    if (admission.ok) return admission.lease;
    void reply.header('retry-after', String(admission.retryAfterS));
    throw rateLimited(admission.message);
  }
}
