/**
 * Given the service has consumed a stream, when an operator runs the replay command with
 * --compare, then it rebuilds into a fresh schema, prints the same state hash as the live schema
 * and exits 0.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, describe, expect, it } from 'vitest';

import { useDatabase, useNats } from '@longtail/testenv';

import { connect, openDb, publishAll, startAttributionApp, waitForInference } from './support/harness.js';
import { generateScenario } from './support/scenario.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('attribution: the replay command', () => {
  const nats = useNats();
  const database = useDatabase({ prefix: 'attr_cli' });
  let app: INestApplicationContext | undefined;
  afterAll(async () => app?.close());

  it('rebuilds into a fresh schema and reports the live state hash', async () => {
    const scenario = generateScenario({
      seed: 3,
      adapters: 10,
      datanets: 4,
      contributors: 20,
      inferences: 300,
      epochs: 2,
      faults: false,
    });
    app = await startAttributionApp({ natsUrl: nats().url, databaseUrl: database().url });
    const conn = await connect(nats().url);
    const db = openDb(database().url);
    try {
      await publishAll(conn, scenario.facts);
      const seqs = await publishAll(conn, scenario.inference);
      await waitForInference(db, Math.max(...seqs));
      const result = await run(
        [
          '--conditions=longtail-source',
          '--import',
          './services/attribution/scripts/source-loader.mjs',
          'services/attribution/src/cli/replay.ts',
          '--compare',
        ],
        { NATS_URL: nats().url, DATABASE_URL: database().url },
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as {
        schema: string;
        stateHash: string;
        liveStateHash: string;
        equal: boolean;
        events: Record<string, number>;
      };
      expect(report).toMatchObject({ schema: 'attribution_replay_1', equal: true });
      expect(report.stateHash).toBe(report.liveStateHash);
      expect(report.events['INFERENCE']).toBe(scenario.inference.length);
    } finally {
      await db.destroy();
      await conn.close();
    }
  });
});
