/** Readiness: can the pool run a query, and how long did it take. */
import type { DatabaseHandle } from './create-database.js';

export type DatabasePing =
  | { readonly ok: true; readonly latencyMs: number }
  | { readonly ok: false; readonly latencyMs: number; readonly error: Error };

/**
 * Runs `select 1` through the pool within `timeoutMs` (default 1 000 ms). Never throws: a down
 * or slow server is `{ ok: false, error }`.
 */
export async function pingDatabase(
  handle: Pick<DatabaseHandle<unknown>, 'pool'>,
  timeoutMs = 1_000,
): Promise<DatabasePing> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const query = handle.pool.query('select 1');
    query.catch(() => undefined); // may settle after the timeout
    await Promise.race([query, timeout]);
    return { ok: true, latencyMs: performance.now() - started };
  } catch (error) {
    return {
      ok: false,
      latencyMs: performance.now() - started,
      error: error instanceof Error ? error : new Error(String(error)),
    };
  } finally {
    clearTimeout(timer);
  }
}
