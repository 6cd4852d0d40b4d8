/**
 * Runs the built services as real processes for end-to-end tests: the same `dist/main.js` an
 * operator runs, with configuration through the environment. Output is kept per process and
 * shown when a wait fails, so a failing test says why the service did not come up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@longtail/testenv';

const root = fileURLToPath(new URL('../../', import.meta.url));

export type ServiceName = 'gateway' | 'scheduler' | 'gpu-worker' | 'attribution' | 'ledger';

export interface ServiceProcess {
  readonly name: ServiceName;
  readonly port: number;
  readonly baseUrl: string;
  readonly child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM and wait; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | string>;
  kill(): Promise<number | string>;
}

export function startService(name: ServiceName, port: number, env: Record<string, string>): ServiceProcess {
  const main = `${root}services/${name}/dist/main.js`;
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npm run build:ts)`);
  const child = spawn(process.execPath, ['--enable-source-maps', main], {
    cwd: root,
    env: {
      PATH: process.env['PATH'] ?? '',
      LOG_LEVEL: 'info',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const stop = async (timeoutMs = 15_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const result = await exited;
    clearTimeout(timer);
    return result;
  };
  return {
    name,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    exited,
    stop,
    kill: async () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

export async function readiness(service: ServiceProcess): Promise<{ status: number; body: unknown }> {
  try {
    const res = await fetch(`${service.baseUrl}/health/ready`);
    return { status: res.status, body: await res.json() };
  } catch (err) {
    return { status: 0, body: String(err) };
  }
}

export async function waitUntilReady(service: ServiceProcess, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      if (service.child.exitCode !== null) throw new Error(`${service.name} exited:\n${service.output()}`);
      return (await readiness(service)).status === 200;
    },
    { timeoutMs, intervalMs: 100, what: `${service.name} ready` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n--- ${service.name} output ---\n${service.output()}`);
  });
}
