/**
 * The adapter registry: `POST /v1/adapters` (multipart upload, validated against the base model,
 * stored by SHA-256, recorded as `adapters.registered`), `GET /v1/adapters`,
 * `GET /v1/adapters/:owner/:name?base=` ... and `DELETE` (retire). The content type decides what a
 * POST is: multipart is an upload by a tenant's key; JSON is the admin registration of an adapter
 * whose weights are already in the object store (the admin key; kept for operators and the demo).
 */
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Injectable,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, randomUUID } from 'node:crypto';
import {
  AdapterRegisteredV1,
  AdapterRetiredV1,
  createEvent,
  isContractViolation,
  type AdapterRegisteredV1Data,
} from '@longtail/contracts';
import { EventPublisher, STREAM_SUBJECT_MUST_NOT_EXIST, WrongExpectedSequence } from '@longtail/messaging';
import { AdminKeyGuard } from '../http/admin-key.guard.js';
import { principalOf, RequireScope } from '../auth/principal.js';
import { InferenceKeyGuard } from '../http/inference-key.guard.js';
import { ApiError, invalidRequest } from '../http/openai-errors.js';
import { AdapterCatalog, type AdapterRecord } from './adapter-catalog.js';
import { AdapterObjectStore, adapterObjectKey, readBaseShape } from './adapter-store.js';
import { AdapterInvalid, CONFIG_FILE, WEIGHTS_FILE, validateAdapter } from './adapter-validation.js';

/** Settings of the registry (from the gateway configuration). */
export interface AdapterSettings {
  /** Largest accepted file in an upload, bytes (413 above). */
  readonly maxUploadBytes: number;
  /** Folder with `<base>/config.json` for each base model uploads are checked against. */
  readonly modelConfigDir: string | undefined;
}
export const ADAPTER_SETTINGS = Symbol('ADAPTER_SETTINGS');

/** One `<owner>/<name>` segment: lowercase `[a-z0-9._-]`, starts with a letter or digit. */
const SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function parseAdapterName(name: string): { owner: string; name: string } | undefined {
  const parts = name.split('/');
  if (parts.length !== 2 || name.includes('..') || !parts.every((p) => SEGMENT.test(p))) return undefined;
  return { owner: parts[0]!, name: parts[1]! };
}

/** The tenant of the key that passed the guard. */
export const tenantOf = (req: FastifyRequest): string => principalOf(req).tenantId;

const notFound = (what: string): ApiError =>
  new ApiError(404, {
    message: `The adapter \`${what}\` does not exist or you do not have access to it.`,
    type: 'not_found_error',
    param: null,
    code: 'adapter_not_found',
  });

/** Multipart uploads: any inference key (its tenant owns the adapter); JSON: the admin key. */
@Injectable()
export class AdapterWriteGuard implements CanActivate {
  constructor(
    private readonly inference: InferenceKeyGuard,
    private readonly admin: AdminKeyGuard,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const guard: CanActivate = req.isMultipart() ? this.inference : this.admin;
    return await (guard.canActivate(context) as boolean | Promise<boolean>);
  }
}

/** Registers `@fastify/multipart` on the gateway's Fastify instance before it starts. */
@Injectable()
export class MultipartSupport implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(ADAPTER_SETTINGS) private readonly settings: AdapterSettings,
  ) {}

  onModuleInit(): void {
    const fastify = this.host.httpAdapter.getInstance<FastifyInstance>();
    // Not awaited: awaiting would load the plugin queue now, before Nest installs its error
    // handler, and Fastify's own errors (malformed JSON) would then skip the OpenAI error shape.
    void fastify.register(multipart, {
      limits: {
        fileSize: this.settings.maxUploadBytes,
        files: 4,
        fields: 16,
        fieldSize: 64 * 1024,
        parts: 20,
      },
      throwFileSizeLimit: true,
    });
  }
}

interface Upload {
  readonly fields: Record<string, string>;
  readonly files: Map<string, Buffer>;
}

const FIELD_ALIASES: Record<string, string> = {
  name: 'name',
  baseModel: 'baseModel',
  base_model: 'baseModel',
  visibility: 'visibility',
  pricePer1kTokens: 'pricePer1kTokens',
  price_per_1k_tokens: 'pricePer1kTokens',
  creatorAddress: 'creatorAddress',
  creator_address: 'creatorAddress',
  trainedOn: 'trainedOn',
  trained_on: 'trainedOn',
};

async function readUpload(req: FastifyRequest): Promise<Upload> {
  const fields: Record<string, string> = {};
  const files = new Map<string, Buffer>();
  try {
    for await (const part of req.parts()) {
      if (part.type === 'field') {
        const key = FIELD_ALIASES[part.fieldname];
        if (key === undefined)
          throw invalidRequest(`Unknown field \`${part.fieldname}\`.`, part.fieldname, 'unknown_parameter');
        fields[key] = String(part.value);
        continue;
      }
      const file = (part.filename.split(/[\\/]/).pop() ?? '') || part.fieldname;
      if (
        file.endsWith('.bin') ||
        part.fieldname.endsWith('.bin') ||
        file.endsWith('.pt') ||
        file.endsWith('.pth')
      ) {
        throw invalidRequest(
          `${file}: pickle adapters are not supported (safetensors only: upload adapter_model.safetensors).`,
          part.fieldname,
          'invalid_adapter',
        );
      }
      const name = file === CONFIG_FILE || file === WEIGHTS_FILE ? file : part.fieldname;
      if (name !== CONFIG_FILE && name !== WEIGHTS_FILE)
        throw invalidRequest(
          `Unexpected file \`${file}\`: upload ${CONFIG_FILE} and ${WEIGHTS_FILE}.`,
          part.fieldname,
          'invalid_adapter',
        );
      if (files.has(name)) throw invalidRequest(`${name} was sent twice.`, part.fieldname, 'invalid_adapter');
      files.set(name, await part.toBuffer());
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const status = (err as { statusCode?: unknown }).statusCode;
    if (status === 413)
      throw new ApiError(413, {
        message: `Upload too large (${(err as Error).message}).`,
        type: 'invalid_request_error',
        param: null,
        code: 'upload_too_large',
      });
    if (typeof status === 'number' && status >= 400 && status < 500)
      throw invalidRequest(`Malformed multipart body: ${(err as Error).message}`);
    throw err;
  }
  return { fields, files };
}

@Controller('v1/adapters')
export class AdaptersController {
  readonly #store: AdapterObjectStore;

  constructor(
    private readonly publisher: EventPublisher,
    private readonly catalog: AdapterCatalog,
    @Inject(ADAPTER_SETTINGS) private readonly settings: AdapterSettings,
    @Inject(AdapterObjectStore) store: AdapterObjectStore,
  ) {
    this.#store = store;
  }

  @Post()
  @HttpCode(201)
  @RequireScope('adapters')
  @UseGuards(AdapterWriteGuard)
  async register(@Body() body: unknown, @Req() req: FastifyRequest): Promise<object> {
    if (req.isMultipart()) return this.upload(req);
    if (typeof body !== 'object' || body === null) throw invalidRequest('Expected a JSON object body.');
    const event = this.event(body as AdapterRegisteredV1Data);
    const result = await this.publishRegistration(event);
    return {
      adapterId: event.data.adapterId,
      eventId: event.id,
      sequence: String(result.seq),
      duplicate: result.duplicate,
    };
  }

  @Get()
  @UseGuards(InferenceKeyGuard)
  list(@Req() req: FastifyRequest): { object: 'list'; data: AdapterRecord[] } {
    return { object: 'list', data: this.catalog.list(tenantOf(req)) };
  }

  @Get(':owner/:name')
  @UseGuards(InferenceKeyGuard)
  get(
    @Param('owner') owner: string,
    @Param('name') name: string,
    @Query('base') base: string | undefined,
    @Req() req: FastifyRequest,
  ): AdapterRecord {
    return this.find(`${owner}/${name}`, base, tenantOf(req));
  }

  @Delete(':owner/:name')
  @RequireScope('adapters')
  @UseGuards(InferenceKeyGuard)
  async retire(
    @Param('owner') owner: string,
    @Param('name') name: string,
    @Query('base') base: string | undefined,
    @Req() req: FastifyRequest,
  ): Promise<AdapterRecord> {
    const tenantId = tenantOf(req);
    const record = this.find(`${owner}/${name}`, base, tenantId);
    if (record.ownerTenantId !== tenantId)
      throw new ApiError(403, {
        message: `Only the owner may retire \`${record.adapterId}\`.`,
        type: 'permission_error',
        param: null,
        code: null,
      });
    const event = createEvent(
      AdapterRetiredV1,
      { adapterId: record.adapterId, reason: 'retired by its owner' },
      { correlationId: randomUUID(), causationId: null },
    );
    await this.publisher.publish(event);
    this.catalog.apply(event);
    return { ...record, retired: true };
  }

  /**
   * Publishes a registration only if its adapter id was never registered: the event's subject is
   * `adapters.registered.<id>`, and JetStream accepts it only while that subject is empty, so two
   * uploads of one new id (through this gateway or another) cannot both pass; the loser gets 409.
   */
  private async publishRegistration(event: AdapterRegisteredV1) {
    try {
      const result = await this.publisher.publish(event, {
        expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST,
      });
      this.catalog.apply(event);
      return result;
    } catch (err) {
      if (err instanceof WrongExpectedSequence) throw adapterExists(event.data.adapterId);
      throw err;
    }
  }

  /** The live adapter `<owner>/<name>` (of base `base` when given) that `tenantId` may see. */
  private find(name: string, base: string | undefined, tenantId: string): AdapterRecord {
    if (parseAdapterName(name) === undefined)
      throw invalidRequest(`Invalid adapter name \`${name}\`.`, 'name', 'invalid_value');
    const matches = this.catalog
      .list(tenantId)
      .filter((a) => a.adapterId.endsWith(`:${name}`) && (base === undefined || a.baseModel === base));
    if (matches.length === 0) throw notFound(name);
    if (matches.length > 1)
      throw invalidRequest(
        `\`${name}\` exists for several base models: add ?base=<model>.`,
        'base',
        'ambiguous_adapter',
      );
    return matches[0]!;
  }

  private event(data: AdapterRegisteredV1Data): AdapterRegisteredV1 {
    try {
      return createEvent(AdapterRegisteredV1, data as never, {
        correlationId: randomUUID(),
        causationId: null,
      });
    } catch (err) {
      if (isContractViolation(err)) {
        const first = err.issues[0];
        throw invalidRequest(
          err.message,
          first ? first.path.replace(/^data\.?/, '') || null : null,
          'invalid_adapter',
        );
      }
      throw err;
    }
  }

  private async upload(req: FastifyRequest): Promise<object> {
    const tenantId = tenantOf(req);
    const { fields, files } = await readUpload(req);
    const field = (key: string): string => {
      const v = fields[key];
      if (v === undefined || v === '')
        throw invalidRequest(`Missing field \`${key}\`.`, key, 'missing_field');
      return v;
    };
    const name = field('name');
    if (parseAdapterName(name) === undefined)
      throw invalidRequest(
        `Invalid adapter name \`${name}\`: expected <owner>/<name>, lowercase [a-z0-9._-] segments, no "..".`,
        'name',
        'invalid_value',
      );
    const baseModel = field('baseModel');
    let trainedOn: unknown = [];
    if (fields['trainedOn'] !== undefined && fields['trainedOn'] !== '') {
      try {
        trainedOn = JSON.parse(fields['trainedOn']);
      } catch {
        throw invalidRequest(
          'trainedOn: invalid JSON (expected a list of {datanetId, snapshotId, mixWeightBps}).',
          'trainedOn',
          'invalid_value',
        );
      }
    }
    const config = files.get(CONFIG_FILE);
    const weights = files.get(WEIGHTS_FILE);
    if (config === undefined || weights === undefined)
      throw invalidRequest(
        `Missing file: upload both ${CONFIG_FILE} and ${WEIGHTS_FILE}.`,
        config === undefined ? CONFIG_FILE : WEIGHTS_FILE,
        'missing_file',
      );
    const base = await readBaseShape(this.settings.modelConfigDir, baseModel);
    if (base === undefined)
      throw invalidRequest(
        `Unknown base model \`${baseModel}\`: this gateway has no config.json for it.`,
        'baseModel',
        'model_not_found',
      );
    let validated;
    try {
      validated = validateAdapter(config, weights, base);
    } catch (err) {
      if (err instanceof AdapterInvalid) throw invalidRequest(err.message, err.file, 'invalid_adapter');
      throw err;
    }
    const sha256 = createHash('sha256').update(weights).digest('hex');
    const event = this.event({
      adapterId: `${baseModel}:${name}`,
      baseModel,
      ownerTenantId: tenantId,
      name,
      visibility: field('visibility') as 'public',
      pricePer1kTokens: field('pricePer1kTokens'),
      creatorAddress: field('creatorAddress') as AdapterRegisteredV1Data['creatorAddress'],
      rank: validated.rank,
      targetModules: [...validated.targetModules],
      weightsSha256: sha256,
      sizeBytes: weights.length,
      weightsObjectKey: adapterObjectKey(sha256, WEIGHTS_FILE),
      trainedOn: trainedOn as AdapterRegisteredV1Data['trainedOn'],
    });
    if (this.catalog.get(event.data.adapterId) !== undefined) throw adapterExists(event.data.adapterId);
    await this.#store.put(sha256, weights, config);
    const result = await this.publishRegistration(event);
    const record = this.catalog.get(event.data.adapterId);
    return {
      ...(record ?? { ...event.data, retired: false, registeredAt: event.occurredAt }),
      eventId: event.id,
      sequence: String(result.seq),
      duplicate: result.duplicate,
    };
  }
}

const adapterExists = (adapterId: string): ApiError =>
  new ApiError(409, {
    message: `The adapter \`${adapterId}\` already exists (ids are never reused).`,
    type: 'invalid_request_error',
    param: 'name',
    code: 'adapter_exists',
  });
