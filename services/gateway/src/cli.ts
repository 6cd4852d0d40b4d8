/**
 * Admin command line for tenants and API keys, straight on the gateway's database
 * (`DATABASE_URL`; the schema is migrated first):
 *
 *   node services/gateway/dist/cli.js create-tenant --name acme [--requests-per-min 600] [--tokens-per-min 1000000] [--max-concurrent 32]
 *   node services/gateway/dist/cli.js create-key --tenant <tenant id> [--scopes inference,adapters]
 *   node services/gateway/dist/cli.js revoke-key --key <key id>
 *   node services/gateway/dist/cli.js show-tenant --tenant <tenant id>
 *
 * Prints JSON. A created key is printed once and stored only as a hash. Gateways notice a
 * revocation made here within their key cache time (API_KEY_CACHE_TTL_MS, default 30 s).
 */
import { parseArgs } from 'node:util';
import { createDatabase, migrateToLatest, withProjectionCheckpoints } from '@longtail/database';
import { isScope } from './auth/api-key.js';
import { ApiKeyStore, DEFAULT_TENANT_LIMITS } from './auth/api-key-store.js';
import { gatewayMigrations } from './auth/migrations.js';
import type { GatewayTables } from './auth/tables.js';

const USAGE =
  'usage: cli.js create-tenant --name <name> | create-key --tenant <id> [--scopes inference,adapters,admin] | revoke-key --key <id> | show-tenant --tenant <id>';

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const positiveInt = (value: string | undefined, fallback: number, name: string): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer`);
  return n;
};

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string' },
    tenant: { type: 'string' },
    key: { type: 'string' },
    scopes: { type: 'string' },
    'requests-per-min': { type: 'string' },
    'tokens-per-min': { type: 'string' },
    'max-concurrent': { type: 'string' },
  },
});

const url = process.env['DATABASE_URL'];
if (!url) fail('DATABASE_URL is not set');
const command = positionals[0];
if (!command) fail('no command');

const handle = createDatabase<GatewayTables>({
  connectionString: url,
  schema: 'gateway',
  applicationName: 'longtail-gateway-cli',
});
try {
  await migrateToLatest(handle, withProjectionCheckpoints(gatewayMigrations));
  const store = new ApiKeyStore(handle);
  let result: unknown;
  switch (command) {
    case 'create-tenant': {
      if (!values.name) fail('--name is required');
      result = await store.createTenant(values.name, {
        requestsPerMin: positiveInt(
          values['requests-per-min'],
          DEFAULT_TENANT_LIMITS.requestsPerMin,
          'requests-per-min',
        ),
        tokensPerMin: positiveInt(
          values['tokens-per-min'],
          DEFAULT_TENANT_LIMITS.tokensPerMin,
          'tokens-per-min',
        ),
        maxConcurrent: positiveInt(
          values['max-concurrent'],
          DEFAULT_TENANT_LIMITS.maxConcurrent,
          'max-concurrent',
        ),
      });
      break;
    }
    case 'create-key': {
      if (!values.tenant) fail('--tenant is required');
      const scopes = (values.scopes ?? 'inference').split(',').map((s) => s.trim());
      const bad = scopes.find((s) => !isScope(s));
      if (bad !== undefined) fail(`unknown scope ${JSON.stringify(bad)}`);
      const created = await store.createKey(values.tenant, scopes.filter(isScope));
      if (!created) fail(`no tenant ${values.tenant}`);
      result = { ...created.info, key: created.key };
      break;
    }
    case 'revoke-key': {
      if (!values.key) fail('--key is required');
      if (!(await store.revokeKey(values.key))) fail(`no key ${values.key}`);
      result = { id: values.key, revoked: true };
      break;
    }
    case 'show-tenant': {
      if (!values.tenant) fail('--tenant is required');
      result = (await store.getTenant(values.tenant)) ?? fail(`no tenant ${values.tenant}`);
      break;
    }
    default:
      fail(`unknown command ${command}`);
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await handle.destroy();
}
