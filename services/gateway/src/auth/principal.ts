/** Who is calling: set by the key guards on the request, read by handlers. */
import { SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { SCOPES, type Scope } from './api-key.js';
import type { Principal } from './authenticator.js';

/** Injection token of the `Authenticator`, or null when the gateway runs without a database. */
export const AUTHENTICATOR = Symbol('longtail:gateway:authenticator');

/** Tenant of every request when the gateway has no database (any key is accepted). */
export const ANONYMOUS_TENANT = 'anonymous';
/** Tenant of requests made with the operator's admin key. */
export const OPERATOR_TENANT = 'operator';

export const anonymousPrincipal: Principal = {
  tenantId: ANONYMOUS_TENANT,
  apiKeyId: undefined,
  scopes: SCOPES,
  limits: undefined,
};
export const operatorPrincipal: Principal = {
  tenantId: OPERATOR_TENANT,
  apiKeyId: undefined,
  scopes: SCOPES,
  limits: undefined,
};

const principals = new WeakMap<object, Principal>();

export function setPrincipal(request: FastifyRequest, principal: Principal): void {
  principals.set(request, principal);
}

/** The caller of a request that passed a key guard. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (!principal) throw new Error('principalOf: the route has no key guard');
  return principal;
}

export const REQUIRED_SCOPE = 'longtail:required-scope';
/** The scope a route guarded by `InferenceKeyGuard` needs (default `inference`). */
export const RequireScope = (scope: Scope): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_SCOPE, scope);

/** The bearer token of a request, or undefined. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  return token === '' ? undefined : token;
}
