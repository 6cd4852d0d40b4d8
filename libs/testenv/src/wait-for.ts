/**
 * Polling with a deadline: the one way this package waits for a server to come up (or go down).
 * A timeout names what was awaited and the last error seen, so a failed start-up reads as a
 * cause, not as "hook timed out".
 */

export interface WaitForOptions {
  /** Give up after this long. Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Pause between attempts. Default 50 ms. */
  readonly intervalMs?: number;
  /** What is awaited, for the timeout message ("PostgreSQL on 127.0.0.1:5433 to accept connections"). */
  readonly what?: string;
  /**
   * Checked before every attempt; an error it returns is thrown at once (e.g. the server process
   * exited, so waiting longer is pointless).
   */
  readonly bail?: () => Error | undefined;
}

/** Thrown by {@link waitFor} when the deadline passes; `cause` is the last attempt's error. */
export class WaitForTimeoutError extends Error {
  override readonly name = 'WaitForTimeoutError';
  readonly code = 'TESTENV_WAIT_TIMEOUT';
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly attempts: number,
    cause: unknown,
  ) {
    const last = cause === undefined ? '' : `; last error: ${describe(cause)}`;
    super(`Timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}${last}`, { cause });
  }
}

/**
 * Calls `fn` until it returns a value other than `undefined`/`false`, or throws past the deadline.
 * A throwing attempt counts as "not yet". Resolves to the first accepted value.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitForOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50, what = 'condition', bail } = options;
  const deadline = performance.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  for (;;) {
    const fatal = bail?.();
    if (fatal) throw fatal;
    attempts += 1;
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() + intervalMs > deadline) {
      throw new WaitForTimeoutError(what, timeoutMs, attempts, lastError);
    }
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
