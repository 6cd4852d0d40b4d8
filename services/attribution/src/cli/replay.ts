/**
 * The replay command: rebuilds every attribution projection from the start of the streams into a
 * fresh schema and prints its state hash (and, with --compare, the live schema's, exiting 1 when
 * they differ).
 *
 *   NATS_URL=... DATABASE_URL=... node services/attribution/dist/cli/replay.js [--target <schema>] [--compare] [--batch <n>]
 *   npm run replay --workspace @longtail/attribution -- --compare
 *
 * The live service may keep running: the replay reads the streams up to their last message at
 * start and writes only its own schema. Compare when the live consumer has caught up.
 */
import { parseArgs } from 'node:util';

import { createDatabase } from '@longtail/database';
import { connectMessaging } from '@longtail/messaging';

import type { AttributionTables } from '../projections/schema.js';
import { attributionStateHash, replayAttribution } from '../replay/replay.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    compare: { type: 'boolean', default: false },
    batch: { type: 'string', default: '10000' },
  },
});
const natsUrl = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
const databaseUrl = process.env['DATABASE_URL'];
const schema = process.env['ATTRIBUTION_SCHEMA'] ?? 'attribution';
if (!databaseUrl) {
  process.stderr.write('replay: DATABASE_URL is required\n');
  process.exit(2);
}

const conn = await connectMessaging({ servers: natsUrl.split(','), name: 'attribution-replay' });
try {
  const started = performance.now();
  const result = await replayAttribution({
    conn,
    connectionString: databaseUrl,
    baseSchema: schema,
    batchSize: Number(values.batch),
    ...(values.target ? { targetSchema: values.target } : {}),
  });
  const report: Record<string, unknown> = {
    schema: result.schema,
    stateHash: result.hash.sha256,
    events: result.events,
    skippedInvalid: result.skipped,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    tables: result.hash.tables,
  };
  let equal = true;
  if (values.compare) {
    const live = createDatabase<AttributionTables>({ connectionString: databaseUrl, schema, poolSize: 1 });
    try {
      const liveHash = await attributionStateHash(live.db, schema);
      equal = liveHash.sha256 === result.hash.sha256;
      report['liveSchema'] = schema;
      report['liveStateHash'] = liveHash.sha256;
      report['equal'] = equal;
      if (!equal) {
        report['differingTables'] = liveHash.tables
          .filter((t) => result.hash.tables.find((r) => r.name === t.name)?.sha256 !== t.sha256)
          .map((t) => t.name);
      }
    } finally {
      await live.destroy();
    }
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.exitCode = equal ? 0 : 1;
} finally {
  await conn.close();
}
