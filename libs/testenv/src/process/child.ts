/**
 * A server process owned by a test: its output is kept (the tail goes into start-up errors), its
 * exit is a promise, and it is killed if this process exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';

import { killQuietly, onProcessExit, startReaper, type Reaper } from './cleanup.js';
import type { OsUser } from './service-user.js';

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  readonly pid: number;
  /** Set once the process has exited. */
  readonly exit: ChildExit | undefined;
  readonly exited: Promise<ChildExit>;
  /** The last ~32 KiB of stdout and stderr together. */
  output(): string;
  /** Sends `signal` and waits up to `graceMs` for exit, then SIGKILLs. */
  terminate(signal: NodeJS.Signals, graceMs?: number): Promise<ChildExit>;
}

export interface SpawnServerOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly user?: OsUser | undefined;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Signal the exit hook and the reaper send if this process dies first. */
  readonly emergencySignal: NodeJS.Signals;
  /** Directory the reaper removes after killing an orphaned server. */
  readonly reaperRemovesDir?: string | undefined;
}

const OUTPUT_LIMIT = 32 * 1024;

export function spawnServer(options: SpawnServerOptions): ServerProcess {
  const child: ChildProcess = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches only the owner, which stops the
    // servers after the processes that use them (the exit hook and the reaper cover crashes).
    detached: true,
    ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exit: ChildExit | undefined;
  let reaper: Reaper | undefined;
  let unregister: (() => void) | undefined;
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('error', (error) => {
      keep(
        Buffer.from(`\n[testenv] could not start ${options.name} (${options.command}): ${error.message}\n`),
      );
      exit ??= { code: -1, signal: null };
      resolve(exit);
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      reaper?.cancel();
      unregister?.();
      resolve(exit);
    });
  });

  const pid = child.pid ?? -1;
  if (child.pid !== undefined) {
    unregister = onProcessExit(() => killQuietly(child.pid, options.emergencySignal));
    reaper = startReaper({
      pid: child.pid,
      signal: options.emergencySignal,
      removeDir: options.reaperRemovesDir,
    });
  }

  return {
    pid,
    get exit() {
      return exit;
    },
    exited,
    output: () => output,
    async terminate(signal, graceMs = 10_000) {
      if (exit) return exit;
      killQuietly(child.pid, signal);
      const timer = setTimeout(() => killQuietly(child.pid, 'SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { user?: OsUser | undefined; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${command}: ${error.message}`, { cause: error }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else
        reject(
          new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`),
        );
    });
  });
}
