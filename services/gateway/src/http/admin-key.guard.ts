/**
 * Admin endpoints need the operator's admin key or, when the gateway has a database, an API key
 * with the `admin` scope (403 for a live key without it). Compared in constant time; keys never
 * appear in logs, errors or traces.
 */
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import { AUTHENTICATOR, bearerToken, operatorPrincipal, setPrincipal } from '../auth/principal.js';
import { forbidden, unauthorized } from './openai-errors.js';

export const ADMIN_KEY_DIGEST = Symbol('ADMIN_KEY_DIGEST');

export const digestKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

export const isAdminKey = (token: string, adminDigest: Buffer): boolean =>
  timingSafeEqual(digestKey(token), adminDigest);

@Injectable()
export class AdminKeyGuard implements CanActivate {
  constructor(
    @Inject(ADMIN_KEY_DIGEST) private readonly adminDigest: Buffer,
    @Inject(AUTHENTICATOR) private readonly authenticator: Authenticator | null,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const token = bearerToken(request);
    if (token === undefined) throw unauthorized('Missing API key: send `Authorization: Bearer <key>`.');
    if (isAdminKey(token, this.adminDigest)) {
      setPrincipal(request, operatorPrincipal);
      return true;
    }
    const result = this.authenticator ? await this.authenticator.authenticate(token) : undefined;
    if (!result?.ok)
      throw unauthorized(
        result?.reason === 'revoked' ? 'This API key has been revoked.' : 'Invalid API key.',
      );
    if (!result.principal.scopes.includes('admin'))
      throw forbidden('This API key does not have the `admin` scope.');
    setPrincipal(request, result.principal);
    return true;
  }
}
