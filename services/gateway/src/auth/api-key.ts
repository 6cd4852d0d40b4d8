/**
 * API keys: `lt_<key id: 32 hex>_<secret: 43 base64url>`. The key id finds the row; the secret is
 * stored only as SHA-256 and compared in constant time. A key is shown once, when it is created.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['inference', 'adapters', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const isScope = (value: unknown): value is Scope =>
  typeof value === 'string' && (SCOPES as readonly string[]).includes(value);

export interface NewApiKey {
  readonly id: string;
  /** The whole key, to hand to its owner once. */
  readonly key: string;
  /** `lt_<id>`: safe to show and store. */
  readonly prefix: string;
  readonly secretSha256: Buffer;
}

export interface ParsedApiKey {
  readonly id: string;
  readonly secret: string;
}

const KEY_PATTERN = /^lt_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

export function generateApiKey(): NewApiKey {
  const id = randomBytes(16).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `lt_${id}_${secret}`, prefix: `lt_${id}`, secretSha256: hashSecret(secret) };
}

/** The key's id and secret, or undefined when the text is not shaped like an API key. */
export function parseApiKey(key: string): ParsedApiKey | undefined {
  const match = KEY_PATTERN.exec(key);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

/** Constant-time check of a presented secret against the stored digest. */
export function secretMatches(secret: string, storedSha256: Buffer): boolean {
  const presented = hashSecret(secret);
  return storedSha256.length === presented.length && timingSafeEqual(presented, storedSha256);
}
