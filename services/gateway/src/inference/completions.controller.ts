/**
 * OpenAI-compatible inference: `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`
 * (base models and the adapters the caller may use).
 * A request is validated, mapped to the worker contract, sent to a worker (InferenceClient), and
 * answered as one JSON body or as server-sent events ending in `data: [DONE]`. When the client
 * disconnects, the request is aborted, which cancels the generation at the worker.
 */
import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import type { z } from 'zod';
import type { InferenceRequest } from '@longtail/contracts';
import type { Logger } from '@longtail/telemetry';
import { InferenceAdmission } from '../auth/admission.js';
import { principalOf } from '../auth/principal.js';
import { InferenceKeyGuard } from '../http/inference-key.guard.js';
import { AdapterCatalog } from '../adapters/adapter-catalog.js';
import { GATEWAY_LOGGER } from '../logger.token.js';
import { ApiError, invalidRequest } from '../http/openai-errors.js';
import { InferenceClient, toApiError } from './inference-client.js';
import {
  ChatCompletionBodySchema,
  chatToInference,
  CompletionBodySchema,
  completionToInference,
  parseModelName,
} from './openai-requests.js';
import { OpenAiReply, type Endpoint } from './openai-responses.js';
import { WORKER_ROUTER, type WorkerRouter } from './worker-router.js';

const modelNotFound = (model: string): ApiError =>
  new ApiError(404, {
    message: `The model \`${model}\` does not exist or you do not have access to it.`,
    type: 'not_found_error',
    param: 'model',
    code: 'model_not_found',
  });

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalidRequest('Expected a JSON object body.');
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const param = unknownKey ?? (issue.path.map(String).join('.') || null);
    const message = unknownKey
      ? `Unrecognized request argument supplied: ${unknownKey}`
      : `Invalid value for '${param}': ${issue.message}`;
    throw invalidRequest(message, param, unknownKey ? 'unknown_parameter' : 'invalid_value');
  }
  return parsed.data;
}

@Controller('v1')
export class CompletionsController {
  constructor(
    private readonly client: InferenceClient,
    @Inject(WORKER_ROUTER) private readonly router: WorkerRouter,
    @Inject(GATEWAY_LOGGER) private readonly logger: Logger,
    private readonly admission: InferenceAdmission,
    private readonly adapters: AdapterCatalog,
  ) {}

  /**
   * Base models some live worker serves, the catalog's adapters this key may use (public ones and
   * its tenant's private ones, not retired; from the ADAPTERS stream, resident on a worker or not),
   * and adapters a worker serves from its own folders (not in the catalog). A catalog adapter a
   * worker holds is listed only when this tenant may use it.
   */
  @Get('models')
  @UseGuards(InferenceKeyGuard)
  models(@Req() req: FastifyRequest): { object: 'list'; data: ModelEntry[] } {
    const { baseModels, adapters: resident } = this.router.models();
    const model = (id: string, created: number, ownedBy: string): ModelEntry => ({
      id,
      object: 'model',
      created,
      owned_by: ownedBy,
    });
    const adapters = new Map<string, ModelEntry>();
    for (const a of this.adapters.list(principalOf(req).tenantId))
      adapters.set(a.adapterId, model(a.adapterId, Math.floor(Date.parse(a.registeredAt) / 1000), a.ownerTenantId));
    for (const id of resident)
      if (!adapters.has(id) && this.adapters.get(id) === undefined) adapters.set(id, model(id, 0, 'longtail'));
    return {
      object: 'list',
      data: [
        ...baseModels.map((id) => model(id, 0, 'longtail')),
        ...[...adapters.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)),
      ],
    };
  }

  @Post('chat/completions')
  @HttpCode(200)
  @UseGuards(InferenceKeyGuard)
  async chat(@Body() body: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const parsed = parseBody(ChatCompletionBodySchema, body);
    const model = this.resolveModel(parsed.model);
    const requestId = uuidv7();
    const request = chatToInference(parsed, model, callerOf(req, requestId));
    const lease = this.admission.admit(principalOf(req), request, reply);
    let usedTokens: number | undefined;
    try {
      usedTokens = await this.answer(
        'chat',
        parsed.model,
        request,
        parsed.stream === true,
        parsed.stream_options?.include_usage === true,
        parsed.logprobs === true,
        req,
        reply,
      );
    } finally {
      lease.settle(usedTokens);
    }
  }

  @Post('completions')
  @HttpCode(200)
  @UseGuards(InferenceKeyGuard)
  async completions(
    @Body() body: unknown,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const parsed = parseBody(CompletionBodySchema, body);
    const model = this.resolveModel(parsed.model);
    const requestId = uuidv7();
    const request = completionToInference(parsed, model, callerOf(req, requestId));
    const lease = this.admission.admit(principalOf(req), request, reply);
    let usedTokens: number | undefined;
    try {
      usedTokens = await this.answer(
        'completion',
        parsed.model,
        request,
        parsed.stream === true,
        parsed.stream_options?.include_usage === true,
        parsed.logprobs != null,
        req,
        reply,
      );
    } finally {
      lease.settle(usedTokens);
    }
  }

  private resolveModel(name: string): { base: string; adapterId: string | null } {
    const model = parseModelName(name);
    if (model === undefined || !this.router.knows(model.base)) throw modelNotFound(name);
    return model;
  }

  private async answer(
    endpoint: Endpoint,
    modelName: string,
    request: InferenceRequest,
    stream: boolean,
    includeUsage: boolean,
    wantLogprobs: boolean,
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<number | undefined> {
    // An adapter the registry knows: the worker fetches it by hash (404 when this tenant may not use it).
    const known = request.adapterId === null ? undefined : this.adapters.get(request.adapterId);
    if (known !== undefined) {
      const sha256 = this.adapters.sha256For(known.adapterId, request.tenantId);
      if (sha256 === undefined) throw modelNotFound(modelName);
      request = { ...request, adapterSha256: sha256 };
    }
    const abort = new AbortController();
    let done = false;
    // The client went away before the reply was complete: cancel at the worker.
    reply.raw.on('close', () => {
      if (!done) abort.abort();
    });
    req.raw.on('aborted', () => abort.abort());
    void reply.header('x-request-id', request.requestId);
    const started = await this.client.start(request, abort.signal);
    if (started === undefined) return undefined;
    const id = `${endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${request.requestId}`;
    const out = new OpenAiReply(endpoint, id, modelName, Math.floor(Date.now() / 1000), wantLogprobs);

    if (!stream) {
      out.add(started.first);
      for await (const chunk of started.rest) out.add(chunk);
      done = true;
      await reply.status(200).header('x-request-id', request.requestId).send(out.body());
      return out.usage?.total_tokens;
    }

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      // The x-ratelimit-* headers set at admission.
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': request.requestId,
    });
    const send = (data: unknown): void => {
      raw.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    try {
      send(withUsageField(out.add(started.first), includeUsage));
      for await (const chunk of started.rest) {
        if (abort.signal.aborted) break;
        send(withUsageField(out.add(chunk), includeUsage));
      }
      if (!abort.signal.aborted) {
        if (includeUsage) send(out.usageChunk());
        raw.write('data: [DONE]\n\n');
      }
    } catch (err) {
      const mapped = toApiError(err);
      if (mapped instanceof ApiError) send({ error: mapped.body });
      else {
        this.logger.error({ err, requestId: request.requestId }, 'inference stream failed');
        send({ error: { message: 'internal error', type: 'server_error', param: null, code: null } });
      }
    } finally {
      done = true;
      raw.end();
    }
    return out.usage?.total_tokens;
  }
}

/** One entry of `GET /v1/models`, OpenAI's model object (`created`: Unix seconds, 0 when unknown). */
interface ModelEntry {
  readonly id: string;
  readonly object: 'model';
  readonly created: number;
  readonly owned_by: string;
}

/** Tenant and key of the caller, for the worker and the inference events. */
const callerOf = (
  req: FastifyRequest,
  requestId: string,
): { requestId: string; tenantId: string; apiKeyId?: string } => {
  const { tenantId, apiKeyId } = principalOf(req);
  return apiKeyId === undefined ? { requestId, tenantId } : { requestId, tenantId, apiKeyId };
};

/** With `include_usage`, every chunk but the last carries `"usage": null`, as OpenAI sends it. */
const withUsageField = (chunk: Record<string, unknown>, includeUsage: boolean): Record<string, unknown> =>
  includeUsage ? { ...chunk, usage: null } : chunk;
