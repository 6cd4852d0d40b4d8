import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, baseConfigSchema, databaseConfigSchema, loadConfig } from './config.js';

const schema = baseConfigSchema.extend(databaseConfigSchema.shape);

describe('loadConfig', () => {
  it('given a complete environment, when loaded, then values are typed and defaults applied', () => {
    const config = loadConfig(schema, { PORT: '8085', DATABASE_URL: 'postgres://u@h/db' });
    expect(config).toMatchObject({ PORT: 8085, NATS_URL: 'nats://127.0.0.1:4222', LOG_LEVEL: 'info' });
  });

  it('given a missing variable, when loaded, then a one-line error names it', () => {
    expect(() => loadConfig(schema, { PORT: '1' })).toThrowError(
      new ConfigError('config: DATABASE_URL: is required', 'DATABASE_URL'),
    );
  });

  it('given a malformed variable, when loaded, then the error names it and says what is expected', () => {
    const load = () => loadConfig(schema, { PORT: '1', DATABASE_URL: 'postgres://x', NATS_URL: 'http://x' });
    expect(load).toThrowError(/^config: NATS_URL: expected one or more nats:\/\/ URLs/);
    expect(() => loadConfig(schema, { PORT: 'eighty', DATABASE_URL: 'postgres://x' })).toThrowError(/^config: PORT: /);
  });

  it('given unrelated variables, when loaded, then they are ignored', () => {
    const only = z.object({ PORT: z.coerce.number() });
    expect(loadConfig(only, { PORT: '3', SECRET: 'x' })).toEqual({ PORT: 3 });
  });
});
