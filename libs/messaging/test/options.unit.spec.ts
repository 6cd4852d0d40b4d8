import { describe, expect, it } from 'vitest';
import { consumerConfigFor } from '../src/consumer/event-consumer.js';
import { backoffFor, resolveConsumerOptions } from '../src/consumer/options.js';
import { eventCodec } from '../src/codec.js';
import { headerValue } from '../src/headers.js';
import { JetStreamErrorCode, jetStreamErrorCode, isWrongLastSequence } from '../src/errors.js';

const ms = 1_000_000; // ns per ms

describe('consumer options', () => {
  it('defaults: 5 deliveries, backoff 1s/5s/15s, ack wait 30s', () => {
    const o = resolveConsumerOptions({ stream: 'INFERENCE', durable: 'usage' });
    expect(o).toMatchObject({
      maxDeliver: 5,
      backoffMs: [1000, 5000, 15000],
      ackWaitMs: 30_000,
      prefetch: 8,
    });
  });

  it('backoff by delivery count; the last delay repeats', () => {
    expect([1, 2, 3, 4, 9].map((n) => backoffFor([1000, 5000, 15000], n))).toEqual([
      1000, 5000, 15000, 15000, 15000,
    ]);
  });

  it('server config: explicit acks, one spare delivery, backoff = ackWait + delay, cut below max_deliver', () => {
    const cfg = consumerConfigFor(
      resolveConsumerOptions({
        stream: 'S',
        durable: 'd',
        filterSubject: 's.a.>',
        maxDeliver: 2,
        backoffMs: [100, 200, 300],
        ackWaitMs: 2000,
      }),
    );
    expect(cfg).toMatchObject({
      durable_name: 'd',
      ack_policy: 'explicit',
      ack_wait: 2000 * ms,
      max_deliver: 3,
      backoff: [2100 * ms, 2200 * ms],
      filter_subject: 's.a.>',
    });
  });

  it('rejects bad names and a batch wait too close to the ack wait', () => {
    expect(() => resolveConsumerOptions({ stream: 'S', durable: 'a.b' })).toThrow(RangeError);
    expect(() =>
      resolveConsumerOptions({
        stream: 'S',
        durable: 'd',
        ackWaitMs: 4000,
        batch: { size: 10, maxWaitMs: 2000 },
      }),
    ).toThrow(/maxWaitMs/);
  });
});

describe('default codec', () => {
  const codec = eventCodec();
  it('parses a JSON envelope and reports a violation for anything else', () => {
    const event = {
      id: 'e1',
      type: 'a.b',
      version: 1,
      occurredAt: 't',
      correlationId: 'c',
      causationId: null,
      data: {},
    };
    expect(codec.parse(codec.encode(event))).toEqual({ ok: true, event });
    expect(codec.parse(new TextEncoder().encode('{'))).toMatchObject({ ok: false });
    expect(codec.parse(new TextEncoder().encode('{"id":"x"}'))).toMatchObject({ ok: false });
    expect(codec.subjectFor(event)).toBe('a.b');
    expect(codec.deadLetterSubject({ stream: 'S', durable: 'd', subject: 's.x' })).toBe('dlq.S.d');
  });

  it('a throwing parser counts as a violation', () => {
    const strict = eventCodec({
      parse: () => {
        throw new Error('bad');
      },
    });
    expect(strict.parse(new Uint8Array())).toMatchObject({ ok: false });
  });
});

describe('errors and headers', () => {
  it('finds the JetStream code through the cause chain', () => {
    const api = { apiError: () => ({ err_code: 10071, code: 400, description: 'wrong last sequence: 3' }) };
    const wrapped = new Error('outer', { cause: Object.assign(new Error('inner'), api) });
    expect(jetStreamErrorCode(wrapped)).toBe(JetStreamErrorCode.StreamWrongLastSequence);
    expect(isWrongLastSequence(wrapped)).toBe(true);
    expect(jetStreamErrorCode(new Error('plain'))).toBeUndefined();
  });

  it('header values are one printable line, cut to length', () => {
    expect(headerValue('a\r\nb\tc é')).toBe('a b c ?');
    expect(headerValue('x'.repeat(2000))).toHaveLength(1024);
  });
});
