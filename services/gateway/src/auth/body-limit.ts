/**
 * Inference bodies larger than the limit are refused with 413 (OpenAI's error shape) before they
 * are read, from their `Content-Length`. The server-wide Fastify limit (for adapter uploads) still
 * bounds chunked bodies that announce no length.
 */
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const INFERENCE_BODY_LIMIT = Symbol('longtail:gateway:inference-body-limit');

const INFERENCE_PATHS = ['/v1/chat/completions', '/v1/completions'];

@Injectable()
export class InferenceBodyLimit implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(INFERENCE_BODY_LIMIT) private readonly limitBytes: number,
  ) {}

  onModuleInit(): void {
    const fastify = this.host.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const path = request.url.split('?', 1)[0]!;
      if (!INFERENCE_PATHS.includes(path)) return;
      const length = Number(request.headers['content-length'] ?? 0);
      if (length > this.limitBytes) {
        await reply.status(413).send({
          error: {
            message: `Request body too large: ${length} bytes, the limit is ${this.limitBytes}.`,
            type: 'invalid_request_error',
            param: null,
            code: 'request_too_large',
          },
        });
      }
    });
  }
}
