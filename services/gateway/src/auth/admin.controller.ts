/**
 * Tenants and API keys, for the operator (admin key) or an API key with the `admin` scope.
 * A new key is in the creation response and nowhere else: the database keeps its SHA-256.
 */
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { AdminKeyGuard } from '../http/admin-key.guard.js';
import { ApiError, invalidRequest } from '../http/openai-errors.js';
import { SCOPES } from './api-key.js';
import { ApiKeyStore, DEFAULT_TENANT_LIMITS, type ApiKeyInfo, type Tenant } from './api-key-store.js';
import type { Authenticator } from './authenticator.js';
import { AUTHENTICATOR } from './principal.js';

const limit = z.number().int().min(1).max(1_000_000_000);

const CreateTenantSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  requests_per_min: limit.optional(),
  tokens_per_min: limit.optional(),
  max_concurrent: z.number().int().min(1).max(100_000).optional(),
});

const CreateKeySchema = z.strictObject({
  scopes: z.array(z.enum(SCOPES)).min(1).default(['inference']),
});

const notFound = (what: string, id: string): ApiError =>
  new ApiError(404, {
    message: `No ${what} \`${id}\`.`,
    type: 'not_found_error',
    param: null,
    code: `${what}_not_found`,
  });

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = issue.path.map(String).join('.') || null;
    throw invalidRequest(`Invalid value for '${param ?? 'body'}': ${issue.message}`, param, 'invalid_value');
  }
  return parsed.data;
}

const tenantJson = (t: Tenant) => ({
  id: t.id,
  object: 'tenant' as const,
  name: t.name,
  requests_per_min: t.limits.requestsPerMin,
  tokens_per_min: t.limits.tokensPerMin,
  max_concurrent: t.limits.maxConcurrent,
  created_at: t.createdAt.toISOString(),
});

const keyJson = (k: ApiKeyInfo) => ({
  id: k.id,
  object: 'api_key' as const,
  tenant_id: k.tenantId,
  prefix: k.prefix,
  scopes: k.scopes,
  created_at: k.createdAt.toISOString(),
  revoked_at: k.revokedAt?.toISOString() ?? null,
});

@Controller('v1/admin')
@UseGuards(AdminKeyGuard)
export class AdminController {
  constructor(
    private readonly store: ApiKeyStore,
    @Inject(AUTHENTICATOR) private readonly authenticator: Authenticator,
  ) {}

  @Post('tenants')
  @HttpCode(201)
  async createTenant(@Body() body: unknown) {
    const input = parse(CreateTenantSchema, body);
    const tenant = await this.store.createTenant(input.name, {
      requestsPerMin: input.requests_per_min ?? DEFAULT_TENANT_LIMITS.requestsPerMin,
      tokensPerMin: input.tokens_per_min ?? DEFAULT_TENANT_LIMITS.tokensPerMin,
      maxConcurrent: input.max_concurrent ?? DEFAULT_TENANT_LIMITS.maxConcurrent,
    });
    return tenantJson(tenant);
  }

  @Get('tenants/:id')
  async getTenant(@Param('id') id: string) {
    const tenant = await this.store.getTenant(id);
    if (!tenant) throw notFound('tenant', id);
    return { ...tenantJson(tenant), keys: tenant.keys.map(keyJson) };
  }

  @Post('tenants/:id/keys')
  @HttpCode(201)
  async createKey(@Param('id') id: string, @Body() body: unknown) {
    const input = parse(CreateKeySchema, body);
    const created = await this.store.createKey(id, input.scopes);
    if (!created) throw notFound('tenant', id);
    // The only time the key is shown.
    return { ...keyJson(created.info), key: created.key };
  }

  @Delete('keys/:id')
  async revokeKey(@Param('id') id: string) {
    if (!(await this.store.revokeKey(id))) throw notFound('api_key', id);
    this.authenticator.evict(id);
    return { id, object: 'api_key', revoked: true };
  }
}
