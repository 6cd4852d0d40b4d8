/**
 * Admin endpoints need the operator's admin key as a bearer token. Compared in constant time;
 * the key never appears in logs, errors or traces.
 */
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { unauthorized } from './openai-errors.js';

export const ADMIN_KEY_DIGEST = Symbol('ADMIN_KEY_DIGEST');

export const digestKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

@Injectable()
export class AdminKeyGuard implements CanActivate {
  constructor(@Inject(ADMIN_KEY_DIGEST) private readonly adminDigest: Buffer) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) throw unauthorized('Missing API key: send `Authorization: Bearer <key>`.');
    if (!timingSafeEqual(digestKey(token), this.adminDigest)) throw unauthorized('Invalid API key.');
    return true;
  }
}
