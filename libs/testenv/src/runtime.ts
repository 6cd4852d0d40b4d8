/**
 * Where test servers run: as local processes (initdb/pg_ctl binaries, nats-server) or in
 * containers through testcontainers. Containers are chosen only when a container runtime
 * answers; `LONGTAIL_TESTENV=local|containers` forces one. testcontainers is imported only when
 * needed: loading it costs over a second per test worker.
 */
export type TestenvRuntime = 'local' | 'containers';

const DETECT_TIMEOUT_MS = 3_000;
let detected: Promise<TestenvRuntime> | undefined;

/** Resolves the runtime once per process (memoised). */
export function resolveRuntime(): Promise<TestenvRuntime> {
  detected ??= detect();
  return detected;
}

async function detect(): Promise<TestenvRuntime> {
  const forced = process.env['LONGTAIL_TESTENV'];
  if (forced === 'local' || forced === 'containers') return forced;
  if (forced !== undefined && forced !== '') {
    throw new Error(`LONGTAIL_TESTENV must be "local" or "containers", got "${forced}"`);
  }
  return (await containerRuntimeAnswers()) ? 'containers' : 'local';
}

/** testcontainers' own strategy detection, bounded by a short timeout. */
async function containerRuntimeAnswers(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), DETECT_TIMEOUT_MS);
    timer.unref();
  });
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    return await Promise.race([
      getContainerRuntimeClient().then(
        () => true,
        () => false,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Image names, overridable for air-gapped registries. */
export const images = {
  postgres: process.env['LONGTAIL_TEST_PG_IMAGE'] ?? 'postgres:15-alpine',
  nats: process.env['LONGTAIL_TEST_NATS_IMAGE'] ?? 'nats:2.10-alpine',
} as const;
