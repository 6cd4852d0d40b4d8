import { describe, expect, it } from 'vitest';

import { waitFor, WaitForTimeoutError } from './wait-for.js';

describe('waitFor', () => {
  it('resolves with the first value that is not undefined or false', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls < 3 ? undefined : `ready after ${calls}`), { intervalMs: 1 });
    expect(value).toBe('ready after 3');
  });

  it('names what it waited for, and the last error, on timeout', async () => {
    const error = await waitFor(
      () => {
        throw new Error('not yet');
      },
      { timeoutMs: 100, intervalMs: 20, what: 'the impossible' },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitForTimeoutError);
    expect((error as WaitForTimeoutError).code).toBe('TESTENV_WAIT_TIMEOUT');
    expect((error as Error).message).toMatch(/waiting for the impossible; last error: Error: not yet/);
  });

  it('stops at once when bail() returns an error', async () => {
    const fatal = new Error('server exited');
    const started = performance.now();
    await expect(waitFor(() => false, { timeoutMs: 5_000, bail: () => fatal })).rejects.toBe(fatal);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
