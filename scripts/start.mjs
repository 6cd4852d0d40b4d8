#!/usr/bin/env node
// `npm start`: the whole of longtail on this machine, on embedded defaults. Builds what changed,
// starts NATS (JetStream) and PostgreSQL on free ports with temporary data (the same local
// servers the tests use), then every service, waits until each is ready and prints where to
// send a request. Ctrl-C stops the services gracefully, then the servers, and removes the data.
//
// The gpu-worker serves a generated demo model (`tiny-llama`: a small random Llama with the real
// Llama 3 tokenizer and chat template, so its text is gibberish but every byte of the path is real)
// and DEMO_ADAPTERS generated PEFT adapters (`tiny-llama:demo/adapter-01`, ...).
//
// Settings: PORT (gateway, default 8080), EPOCH_SECONDS (attribution, default 300), LONGTAIL_ADMIN_KEY (default: a fresh random key),
// DEMO_ADAPTERS (default 24), LOG_LEVEL (default warn, so the terminal stays readable), LONGTAIL_SKIP_BUILD=1.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// A larger young generation for attribution: its batches allocate short-lived objects by the
// hundred thousand, and scavenges of the default 16 MiB semi-space took ~8 % of the replay's CPU
// (measured: 1M-event replay 19,900 -> 23,400 events/s; bench/README.md "Attribution").
const ATTRIBUTION_NODE_ARGS = ['--max-semi-space-size=64'];
const log = (msg) => process.stdout.write(`[longtail] ${msg}\n`);

if (process.env.LONGTAIL_SKIP_BUILD !== '1') {
  log('building (incremental)...');
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const { startNatsServer } = await import(`${root}libs/testenv/dist/nats/start.js`);
const { startPostgresServer } = await import(`${root}libs/testenv/dist/postgres/start.js`);

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

const cleanups = [];
let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  log('stopping...');
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => log(`cleanup failed: ${err.message}`));
  log('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  log('starting NATS (JetStream) and PostgreSQL...');
  const [nats, postgres] = await Promise.all([
    startNatsServer(),
    startPostgresServer({ settings: { synchronous_commit: 'on', fsync: 'on' } }),
  ]);
  const dataDir = mkdtempSync(join(tmpdir(), 'longtail-stack-'));
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  cleanups.push(() => nats.stop(), () => postgres.destroy());
  const databaseUrl = postgres.url.replace(/\/postgres$/, '/longtail');
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('create database longtail');
  await admin.end();

  log('generating the demo model and adapters...');
  const modelDir = join(dataDir, 'models', 'tiny-llama');
  const fixtures = (...args) => {
    const run = spawnSync(process.execPath, [join(root, 'libs/model-fixtures/src/cli.ts'), ...args], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`model-fixtures ${args[0]}: ${run.stderr.trim()}`);
  };
  fixtures('model', '--out', modelDir, '--hidden', '64', '--layers', '2', '--heads', '4', '--kv-heads', '2',
    '--intermediate', '128', '--vocab', '128256', '--dtype', 'f32', '--seed', '1', '--tied', '--max-pos', '4096',
    '--tokenizer', 'llama3');
  const adapterDirs = {};
  const demoAdapters = Number(process.env.DEMO_ADAPTERS ?? 24);
  for (let i = 1; i <= demoAdapters; i++) {
    const name = `tiny-llama:demo/adapter-${String(i).padStart(2, '0')}`;
    const dir = join(dataDir, 'adapters', `adapter-${i}`);
    fixtures('adapter', '--base', modelDir, '--out', dir, '--rank', String(4 << (i % 3)), '--alpha', '16',
      '--modules', 'all-linear', '--seed', String(1000 + i));
    adapterDirs[name] = dir;
  }

  const adminKey = process.env.LONGTAIL_ADMIN_KEY ?? `lt_admin_${randomBytes(24).toString('base64url')}`;
  const gatewayPort = Number(process.env.PORT ?? 8080);
  const common = { NATS_URL: nats.url, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', PATH: process.env.PATH ?? '' };
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) common.OTEL_EXPORTER_OTLP_ENDPOINT = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const services = [
    { name: 'gateway', port: gatewayPort, env: { LONGTAIL_ADMIN_KEY: adminKey, DATABASE_URL: databaseUrl, MODEL_CONFIG_DIR: join(dataDir, 'models') } },
    { name: 'scheduler', port: await freePort(), env: { DATABASE_URL: databaseUrl } },
    {
      name: 'gpu-worker',
      port: await freePort(),
      env: {
        WORKER_ID: 'local-worker-1',
        BASE_MODEL: 'tiny-llama',
        MODEL_DIR: modelDir,
        ADAPTER_DIRS: JSON.stringify(adapterDirs),
        ADAPTER_CACHE_DIR: join(dataDir, 'adapter-cache'),
      },
    },
    { name: 'attribution', nodeArgs: ATTRIBUTION_NODE_ARGS, port: await freePort(), env: { DATABASE_URL: databaseUrl, EPOCH_SECONDS: process.env.EPOCH_SECONDS ?? '300' } },
    // No CHAIN_* settings: the ledger runs an embedded anvil and deploys the contracts once.
    { name: 'ledger', port: await freePort(), env: { DATABASE_URL: databaseUrl, LEDGER_DATA_DIR: join(dataDir, 'ledger') } },
  ];

  for (const service of services) {
    const child = spawn(process.execPath, ['--enable-source-maps', ...(service.nodeArgs ?? []), `services/${service.name}/dist/main.js`], {
      cwd: root,
      env: { ...common, ...service.env, PORT: String(service.port) },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true, // Ctrl-C reaches only this script, which stops services before servers
    });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    child.once('exit', (code) => {
      if (!stopping) {
        log(`${service.name} exited (${code}); stopping everything`);
        void shutdown(1);
      }
    });
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    });
    service.url = `http://127.0.0.1:${service.port}`;
  }

  for (const service of services) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`${service.url}/health/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`${service.name} did not become ready within 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    log(`${service.name.padEnd(11)} ready at ${service.url}`);
  }

  // A demo tenant and its inference key, made through the admin endpoint (shown once, stored hashed).
  // Should that fail, the banner falls back to the admin key, which inference also accepts.
  let apiKey;
  try {
    const admin = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
    const tenant = await fetch(`${services[0].url}/v1/admin/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'demo' }) });
    if (!tenant.ok) throw new Error(`creating the demo tenant: HTTP ${tenant.status}`);
    const { id } = await tenant.json();
    const key = await fetch(`${services[0].url}/v1/admin/tenants/${id}/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ scopes: ['inference', 'adapters'] }) });
    if (!key.ok) throw new Error(`creating the demo key: HTTP ${key.status}`);
    apiKey = (await key.json()).key;
  } catch (err) {
    log(`no demo API key (${err.message}); the examples use the admin key`);
  }

  const example = JSON.stringify({
    adapterId: 'tiny-llama:acme/legal-ur',
    baseModel: 'tiny-llama',
    ownerTenantId: 'tenant-acme',
    name: 'Legal (Urdu)',
    visibility: 'public',
    pricePer1kTokens: '1000000000000000',
    creatorAddress: '0x' + '11'.repeat(20),
    rank: 16,
    targetModules: ['q_proj', 'v_proj'],
    weightsSha256: '0'.repeat(64),
    sizeBytes: 1048576,
    weightsObjectKey: `sha256/${'0'.repeat(64)}`,
    trainedOn: [],
  });
  const chat = JSON.stringify({
    model: 'tiny-llama:demo/adapter-01',
    messages: [{ role: 'user', content: 'Say hello.' }],
    max_tokens: 16,
  });
  process.stdout.write(`
longtail is running.
  NATS        ${nats.url}
  PostgreSQL  ${databaseUrl}
  gateway     http://127.0.0.1:${gatewayPort}
  admin key   ${adminKey}
${apiKey ? `  API key     ${apiKey}   (tenant "demo", scopes inference and adapters)\n` : ''}
Chat with a demo adapter (OpenAI API; stream with "stream": true; models: GET /v1/models):
  curl -s http://127.0.0.1:${gatewayPort}/v1/chat/completions -H 'authorization: Bearer ${apiKey ?? adminKey}' \\
    -H 'content-type: application/json' -d '${chat}'

Register an adapter (the scheduler's catalog picks it up from the ADAPTERS stream):
  curl -s http://127.0.0.1:${gatewayPort}/v1/adapters -H 'authorization: Bearer ${adminKey}' \\
    -H 'content-type: application/json' -d '${example}'

Earnings and payouts through the gateway:
  curl -s http://127.0.0.1:${gatewayPort}/v1/attribution/epochs -H 'authorization: Bearer ${adminKey}'
  curl -s http://127.0.0.1:${gatewayPort}/v1/ledger/epochs

Readiness of the gateway: curl -s http://127.0.0.1:${gatewayPort}/health/ready
Ctrl-C stops everything and removes the temporary data.
`);
} catch (err) {
  log(`failed to start: ${err.message}`);
  await shutdown(1);
}
