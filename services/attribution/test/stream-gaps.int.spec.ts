/**
 * Given a stream where the events a projection needs are interleaved with others and with an
 * invalid message, when the gap source reads from a sequence, then it returns the next event due
 * (passing over other subjects in one request) and skips what is invalid.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { useNats } from '@longtail/testenv';

import { streamGapSource } from '@longtail/messaging';
import { parseAttributionEvent } from '../src/ingest/codec.js';
import { connect } from './support/harness.js';
import { address, prng, uuidV7 } from './support/scenario.js';

describe('stream gap source', () => {
  const nats = useNats();
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it('finds the next event of a filtered projection and skips invalid messages', async () => {
    const conn = await connect(nats().url);
    closers.push(() => conn.close());
    const jsm = await conn.jsm();
    await jsm.streams.add({ name: 'ATTRIBUTION', subjects: ['attribution.>'] });
    const rand = prng(1);
    const policy = (version: number) => ({
      id: uuidV7(Date.parse('2026-03-01T00:00:00Z') + version, rand),
      type: 'attribution.policy.set',
      version: 1,
      occurredAt: '2026-03-01T00:00:00.000Z',
      correlationId: 'c',
      causationId: null,
      data: {
        version,
        effectiveFromEpoch: version === 1 ? 0 : 3,
        operatorBps: 2500,
        creatorBps: 2500,
        contributorsBps: 2500,
        treasuryBps: 2500,
        treasuryAddress: address(1),
      },
    });
    const enc = new TextEncoder();
    await conn.js.publish('attribution.policy.set.1', enc.encode(JSON.stringify(policy(1))));
    await conn.js.publish('attribution.epoch.closed.0', enc.encode('{"not":"for the policy projection"}'));
    await conn.js.publish('attribution.epoch.closed.1', enc.encode('{"not":"for the policy projection"}'));
    await conn.js.publish('attribution.policy.set.2', enc.encode('{"broken":'));
    await conn.js.publish('attribution.policy.set.3', enc.encode(JSON.stringify(policy(3))));

    const policies = streamGapSource(conn, { stream: 'ATTRIBUTION', filterSubject: 'attribution.policy.set.>', parse: parseAttributionEvent });
    expect(await policies.next(1n)).toMatchObject({
      seq: 1n,
      event: { type: 'attribution.policy.set', data: { version: 1 } },
    });
    expect(await policies.next(2n)).toEqual({ seq: 4n, event: 'skip' }); // epoch.closed passed over; the broken one is skipped
    expect(await policies.next(5n)).toMatchObject({ seq: 5n, event: { data: { version: 3 } } });
    expect(await policies.next(6n)).toBeUndefined();

    const all = streamGapSource(conn, { stream: 'ATTRIBUTION', parse: parseAttributionEvent });
    expect(await all.next(2n)).toEqual({ seq: 2n, event: 'skip' }); // not a valid event
  });
});
