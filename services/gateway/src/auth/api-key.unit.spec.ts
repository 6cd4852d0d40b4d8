import { describe, expect, it } from 'vitest';
import { generateApiKey, hashSecret, parseApiKey, secretMatches } from './api-key.js';

describe('API keys', () => {
  it('look like lt_<id>_<secret> and parse back to their id and secret', () => {
    const generated = generateApiKey();
    expect(generated.key).toMatch(/^lt_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(generated.prefix).toBe(`lt_${generated.id}`);
    const parsed = parseApiKey(generated.key);
    expect(parsed?.id).toBe(generated.id);
    expect(generated.key.endsWith(parsed!.secret)).toBe(true);
    expect(generated.secretSha256.equals(hashSecret(parsed!.secret))).toBe(true);
  });

  it('are different every time and keep no secret in what is stored', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.id).not.toBe(b.id);
    expect(a.key).not.toBe(b.key);
    const secret = parseApiKey(a.key)!.secret;
    expect(a.prefix).not.toContain(secret);
    expect(a.secretSha256.toString('hex')).not.toContain(Buffer.from(secret).toString('hex'));
  });

  it('refuse malformed keys', () => {
    for (const key of [
      '',
      'lt_',
      'sk-abc',
      `lt_admin_${'a'.repeat(43)}`,
      `lt_${'g'.repeat(32)}_${'a'.repeat(43)}`,
      `${generateApiKey().key}x`,
    ])
      expect(parseApiKey(key)).toBeUndefined();
  });

  it('match only their own secret', () => {
    const { key, secretSha256 } = generateApiKey();
    const { secret } = parseApiKey(key)!;
    expect(secretMatches(secret, secretSha256)).toBe(true);
    expect(secretMatches(`${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`, secretSha256)).toBe(
      false,
    );
    expect(secretMatches(secret, Buffer.alloc(3))).toBe(false);
  });
});
