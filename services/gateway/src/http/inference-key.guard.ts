/**
 * Inference endpoints need a bearer key. Until tenants and API keys land, any non-empty key is
 * accepted and every request is billed to the `anonymous` tenant; this guard is where the key
 * lookup (hash, scopes, tenant) goes.
 */
import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { unauthorized } from './openai-errors.js';

export const ANONYMOUS_TENANT = 'anonymous';

@Injectable()
export class InferenceKeyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (token === '') throw unauthorized('Missing API key: send `Authorization: Bearer <key>`.');
    return true;
  }
}
