/**
 * Last-resort cleanup for servers started by this process. Normal teardown is the server's own
 * `stop()`; this covers a test file that throws before its hooks run, a worker that exits
 * without teardown (synchronous kill on `exit`), and a worker that is killed outright (a
 * detached shell "reaper" that watches this process and kills the server when it disappears).
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

type ExitHook = () => void;
const exitHooks = new Set<ExitHook>();
let installed = false;

/** Runs `hook` synchronously when this process exits. Returns the function that unregisters it. */
export function onProcessExit(hook: ExitHook): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const run of [...exitHooks].reverse()) {
        try {
          run();
        } catch {
          // Exit handlers must not throw; the reaper is still there.
        }
      }
    });
  }
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

/** Kills a pid, ignoring "no such process". */
export function killQuietly(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Removes a directory tree, ignoring errors (used on exit, where nothing can be reported). */
export function removeQuietly(dir: string | undefined): void {
  if (!dir) return;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Best effort.
  }
}

export interface Reaper {
  cancel(): void;
}

/**
 * Starts a detached `sh` that polls this process every half second; once it is gone, the
 * reaper sends `signal` to `pid` and removes `removeDir`. Cancelled by a normal stop.
 */
export function startReaper(options: { pid: number; signal: NodeJS.Signals; removeDir?: string }): Reaper {
  const script =
    'while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; ' +
    'kill -s "$3" "$2" 2>/dev/null; ' +
    'if [ -n "$4" ]; then sleep 2; rm -rf "$4"; fi';
  const signalName = options.signal.replace(/^SIG/, '');
  const child = spawn(
    'sh',
    [
      '-c',
      script,
      'longtail-testenv-reaper',
      String(process.pid),
      String(options.pid),
      signalName,
      options.removeDir ?? '',
    ],
    { detached: true, stdio: 'ignore' },
  );
  child.on('error', () => undefined);
  child.unref();
  return {
    cancel: () => killQuietly(child.pid, 'SIGKILL'),
  };
}
