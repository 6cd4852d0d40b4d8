/**
 * Routes for API keys (inference by default; `@RequireScope('adapters')` for others). With a
 * database, the bearer key must be a live key of a tenant with the scope (401 when it is missing,
 * unknown or revoked; 403 without the scope); the operator's admin key passes as the `operator`
 * tenant. Without a database, any non-empty key passes as the `anonymous` tenant.
 */
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { Scope } from '../auth/api-key.js';
import type { Authenticator } from '../auth/authenticator.js';
import {
  AUTHENTICATOR,
  anonymousPrincipal,
  bearerToken,
  operatorPrincipal,
  REQUIRED_SCOPE,
  setPrincipal,
} from '../auth/principal.js';
import { ADMIN_KEY_DIGEST, isAdminKey } from './admin-key.guard.js';
import { forbidden, unauthorized } from './openai-errors.js';

export { ANONYMOUS_TENANT } from '../auth/principal.js';

export const MISSING_KEY = 'Missing API key: send `Authorization: Bearer <key>`.';
export const INVALID_KEY = 'Incorrect API key provided.';

@Injectable()
export class InferenceKeyGuard implements CanActivate {
  constructor(
    @Inject(AUTHENTICATOR) private readonly authenticator: Authenticator | null,
    @Inject(ADMIN_KEY_DIGEST) private readonly adminDigest: Buffer,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const token = bearerToken(request);
    if (token === undefined) throw unauthorized(MISSING_KEY);
    if (this.authenticator === null) {
      setPrincipal(request, anonymousPrincipal);
      return true;
    }
    if (isAdminKey(token, this.adminDigest)) {
      setPrincipal(request, operatorPrincipal);
      return true;
    }
    const result = await this.authenticator.authenticate(token);
    if (!result.ok)
      throw unauthorized(result.reason === 'revoked' ? 'This API key has been revoked.' : INVALID_KEY);
    const scope =
      this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, [
        context.getHandler(),
        context.getClass(),
      ]) ?? 'inference';
    if (!result.principal.scopes.includes(scope) && !result.principal.scopes.includes('admin'))
      throw forbidden(`This API key does not have the \`${scope}\` scope.`);
    setPrincipal(request, result.principal);
    return true;
  }
}
