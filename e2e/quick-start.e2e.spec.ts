/**
 * The README's run command stays true: `npm start` (scripts/start.mjs, here without its build
 * step) brings every service up with the demo model and adapters, prints working requests (a chat
 * completion on a demo adapter, an adapter registration), and Ctrl-C stops it all cleanly.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort, waitFor } from '@longtail/testenv';

const root = fileURLToPath(new URL('../', import.meta.url));

describe('npm start', () => {
  it('starts the stack, serves the printed request, and stops cleanly on SIGINT', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['scripts/start.mjs'], {
      cwd: root,
      env: { ...process.env, LONGTAIL_SKIP_BUILD: '1', PORT: String(port), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('longtail is running.') || child.exitCode !== null, {
        timeoutMs: 90_000,
        what: 'the stack to start',
      });
      expect(out, out).toContain('longtail is running.');
      for (const name of ['gateway', 'scheduler', 'gpu-worker', 'attribution', 'ledger'])
        expect(out).toMatch(new RegExp(`${name} +ready at`));
      const key = /admin key\s+(\S+)/.exec(out)?.[1];
      const chat = /chat\/completions .*\n.*-d '(\{.*\})'/.exec(out)?.[1];
      const body = /v1\/adapters .*\n.*-d '(\{.*\})'/.exec(out)?.[1];
      expect(key).toMatch(/^lt_admin_/);
      const res = await fetch(`http://127.0.0.1:${port}/v1/adapters`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body!,
      });
      expect(res.status).toBe(201);
      // The printed chat request is served by the demo model and adapter, through the engine.
      const answer = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: chat!,
      });
      const completion = (await answer.json()) as {
        choices?: { message: { content: string } }[];
        usage?: { completion_tokens: number };
      };
      expect(answer.status, JSON.stringify(completion)).toBe(200);
      expect(completion.choices?.[0]?.message.content.length).toBeGreaterThan(0);
      expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out).toContain('[longtail] stopped');
  });
});
