import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';

import { createEvent, decodeEvent, encodeEvent, isEvent, parseEvent } from './codec.js';
import { CONTRACT_VIOLATION_CODES, ContractViolation } from './errors.js';
import { AdapterRegisteredV1 } from './events/adapters.js';
import { AttributionEpochClosedV1 } from './events/attribution.js';
import { DatanetContributionAddedV1 } from './events/datanets.js';
import { InferenceCompletedV1, InferenceFailedV1 } from './events/inference.js';
import { LedgerPayoutPostedV1 } from './events/ledger.js';
import { exampleData, exampleEvent } from './examples.js';
import { eventDefinitions, type KnownEvent } from './registry.js';

/** Property tests run thousands of cases; on a busy shared machine they need more than the default 10 s. */
const PROPERTY_TIMEOUT_MS = 60_000;

const META = { correlationId: 'req-1', causationId: null } as const;
const decoder = new TextDecoder();

/** Parses `raw` and returns the violation, failing the test if the input was accepted. */
function violationOf(raw: unknown): ContractViolation {
  const result = parseEvent(raw);
  if (result.ok) throw new Error(`expected a violation, got a valid ${result.event.type}`);
  return result.error;
}

/** The example event of a definition as plain JSON, with `change` applied to its data. */
function wireWith(
  definition: Parameters<typeof exampleEvent>[0],
  change: (data: Record<string, unknown>) => void,
): unknown {
  const event = JSON.parse(decoder.decode(encodeEvent(exampleEvent(definition)))) as {
    data: Record<string, unknown>;
  };
  change(event.data);
  return event;
}

describe('createEvent', () => {
  it('given valid data, when created, then the envelope is complete, frozen and has a UUIDv7 id', () => {
    const event = createEvent(InferenceCompletedV1, exampleData(InferenceCompletedV1) as never, META);

    expect(event.type).toBe('inference.completed');
    expect(event.version).toBe(1);
    expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Date.parse(event.occurredAt)).not.toBeNaN();
    expect(event.correlationId).toBe('req-1');
    expect(event.causationId).toBeNull();
    expect(Object.isFrozen(event)).toBe(true);
    expect(Object.isFrozen(event.data.timings)).toBe(true);
  });

  it('given ids of two events created in order, when compared, then they sort in creation order', () => {
    const first = createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, META);
    const second = createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, META);

    expect(first.id < second.id).toBe(true);
  });

  it('given a checksummed address, when created, then the address is lowercase', () => {
    const data = {
      ...exampleData(AdapterRegisteredV1),
      creatorAddress: '0x52908400098527886E0F7030069857D2E4169EE7',
    };

    const event = createEvent(AdapterRegisteredV1, data as never, META);

    expect(event.data.creatorAddress).toBe('0x52908400098527886e0f7030069857d2e4169ee7');
  });

  it('given a Date, when created, then occurredAt is ISO-8601 UTC', () => {
    const event = createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, {
      ...META,
      occurredAt: new Date(Date.UTC(2026, 0, 31, 12)),
    });

    expect(event.occurredAt).toBe('2026-01-31T12:00:00.000Z');
  });

  it('given invalid data, when created, then it throws a ContractViolation naming the type, version and path', () => {
    const data = { ...exampleData(InferenceCompletedV1), promptTokens: -1 };

    const attempt = () => createEvent(InferenceCompletedV1, data as never, META);

    expect(attempt).toThrow(ContractViolation);
    try {
      attempt();
    } catch (error) {
      const violation = error as ContractViolation;
      expect(violation.code).toBe(CONTRACT_VIOLATION_CODES.InvalidData);
      expect(violation.eventType).toBe('inference.completed');
      expect(violation.eventVersion).toBe(1);
      expect(violation.issues.map((issue) => issue.path)).toEqual(['data.promptTokens']);
      expect(violation.message).toContain('inference.completed v1');
      expect(violation.message).toContain('data.promptTokens');
      expect(violation.cause).toBeDefined();
    }
  });

  it('given an id that is not a UUIDv7 or an offset timestamp, when created, then it is an envelope violation', () => {
    const badId = () =>
      createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, {
        ...META,
        id: 'not-a-uuid',
      });
    const badTime = () =>
      createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, {
        ...META,
        occurredAt: '2026-01-31T12:00:00+01:00',
      });
    const v4Id = () =>
      createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, {
        ...META,
        id: '9b2f6c1e-4f1a-4c2b-9a7d-2f0e6b1c3d4e',
      });
    const upperId = () =>
      createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, {
        ...META,
        id: '0195F3C4-0000-7000-8000-000000000001',
      });

    const invalidDate = () =>
      createEvent(AdapterRegisteredV1, exampleData(AdapterRegisteredV1) as never, {
        ...META,
        occurredAt: new Date(Number.NaN),
      });

    for (const attempt of [badId, badTime, v4Id, upperId, invalidDate]) {
      expect(attempt).toThrow(expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.InvalidEnvelope }));
    }
  });
});

describe('round trip', () => {
  it.each(
    eventDefinitions().map(
      (definition) => [`${definition.type} v${definition.version}`, definition] as const,
    ),
  )(
    'given the example %s, when encoded and parsed, then the same event comes back and re-encodes to the same bytes',
    (_name, definition) => {
      const event = exampleEvent(definition);

      const bytes = encodeEvent(event);
      const result = parseEvent(bytes);

      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.event).toEqual(event);
      expect(encodeEvent(result.event)).toEqual(bytes);
    },
  );

  it('given JSON text or a parsed object, when parsed, then both are accepted like bytes', () => {
    const event = exampleEvent(InferenceFailedV1);
    const text = decoder.decode(encodeEvent(event));

    expect(parseEvent(text)).toEqual({ ok: true, event });
    expect(parseEvent(JSON.parse(text))).toEqual({ ok: true, event });
  });

  it('given the same event with keys in another order, when encoded, then the bytes are the same', () => {
    const event = exampleEvent(LedgerPayoutPostedV1);
    const reordered = Object.fromEntries(Object.entries(event).reverse()) as typeof event;

    expect(encodeEvent(reordered)).toEqual(encodeEvent(event));
  });

  it('given a parsed event, when narrowed with isEvent, then its data is typed', () => {
    const result = parseEvent(encodeEvent(exampleEvent(InferenceCompletedV1)));

    expect(
      result.ok && isEvent(InferenceCompletedV1, result.event) && result.event.data.completionTokens,
    ).toBe(128);
    expect(result.ok && isEvent(InferenceFailedV1, result.event)).toBe(false);
  });
});

describe('parseEvent rejects', () => {
  it('given bytes that are not UTF-8 JSON, then malformed_json', () => {
    expect(violationOf(new Uint8Array([0x7b, 0xff, 0x7d])).code).toBe('malformed_json');
    expect(violationOf('{"type":').code).toBe('malformed_json');
  });

  it('given something that is not an envelope, then invalid_envelope', () => {
    for (const raw of [null, 42, [], {}, { type: 'inference.completed' }]) {
      expect(violationOf(raw).code).toBe('invalid_envelope');
    }
  });

  it('given an envelope with an extra key, then invalid_envelope naming it', () => {
    const raw = { ...exampleEvent(AdapterRegisteredV1), extra: true };

    const violation = violationOf(raw);

    expect(violation.code).toBe('invalid_envelope');
    expect(violation.issues[0]?.message).toContain('extra');
  });

  it('given an unknown type, then unknown_type', () => {
    const raw = { ...exampleEvent(AdapterRegisteredV1), type: 'adapters.exploded' };

    const violation = violationOf(raw);

    expect(violation.code).toBe('unknown_type');
    expect(violation.eventType).toBe('adapters.exploded');
  });

  it('given a type that is an Object.prototype key, then unknown_type', () => {
    expect(violationOf({ ...exampleEvent(AdapterRegisteredV1), type: 'constructor.name' }).code).toBe(
      'unknown_type',
    );
  });

  it('given a known type at an unknown version, then unknown_version', () => {
    const raw = { ...exampleEvent(AdapterRegisteredV1), version: 2 };

    const violation = violationOf(raw);

    expect(violation.code).toBe('unknown_version');
    expect([violation.eventType, violation.eventVersion]).toEqual(['adapters.registered', 2]);
  });

  it('given a version that is not a positive integer, then invalid_envelope', () => {
    for (const version of [0, -1, 1.5, '1']) {
      expect(violationOf({ ...exampleEvent(AdapterRegisteredV1), version }).code).toBe('invalid_envelope');
    }
  });

  it('given an empty correlation id or a missing causation id, then invalid_envelope', () => {
    const { causationId: _dropped, ...withoutCausation } = exampleEvent(AdapterRegisteredV1);

    expect(violationOf({ ...exampleEvent(AdapterRegisteredV1), correlationId: '' }).code).toBe(
      'invalid_envelope',
    );
    expect(violationOf(withoutCausation).code).toBe('invalid_envelope');
  });

  const dataCases: [
    string,
    Parameters<typeof exampleEvent>[0],
    (data: Record<string, unknown>) => void,
    string,
  ][] = [
    [
      'a money amount as a number',
      AdapterRegisteredV1,
      (d) => (d.pricePer1kTokens = 2000),
      'data.pricePer1kTokens',
    ],
    [
      'a negative money amount',
      AdapterRegisteredV1,
      (d) => (d.pricePer1kTokens = '-1'),
      'data.pricePer1kTokens',
    ],
    [
      'a fractional money amount',
      AdapterRegisteredV1,
      (d) => (d.pricePer1kTokens = '1.5'),
      'data.pricePer1kTokens',
    ],
    [
      'a money amount with leading zeros',
      AdapterRegisteredV1,
      (d) => (d.pricePer1kTokens = '007'),
      'data.pricePer1kTokens',
    ],
    [
      'a money amount above 2^256-1',
      AdapterRegisteredV1,
      (d) => (d.pricePer1kTokens = ((1n << 256n) + 0n).toString()),
      'data.pricePer1kTokens',
    ],
    ['negative tokens', InferenceCompletedV1, (d) => (d.completionTokens = -5), 'data.completionTokens'],
    ['fractional tokens', InferenceCompletedV1, (d) => (d.promptTokens = 1.5), 'data.promptTokens'],
    [
      'a negative timing',
      InferenceCompletedV1,
      (d) => ((d.timings as Record<string, unknown>).totalMs = -1),
      'data.timings.totalMs',
    ],
    ['a short address', InferenceCompletedV1, (d) => (d.operatorAddress = '0x1234'), 'data.operatorAddress'],
    [
      'an address without 0x',
      InferenceCompletedV1,
      (d) => (d.operatorAddress = '4'.repeat(40)),
      'data.operatorAddress',
    ],
    [
      'a non-hex address',
      InferenceCompletedV1,
      (d) => (d.operatorAddress = `0x${'g'.repeat(40)}`),
      'data.operatorAddress',
    ],
    ['a short sha256', AdapterRegisteredV1, (d) => (d.weightsSha256 = 'ab'), 'data.weightsSha256'],
    [
      'an uppercase sha256',
      AdapterRegisteredV1,
      (d) => (d.weightsSha256 = 'A'.repeat(64)),
      'data.weightsSha256',
    ],
    [
      'an adapter id with ..',
      AdapterRegisteredV1,
      (d) => (d.adapterId = 'llama-3-8b:acme/..'),
      'data.adapterId',
    ],
    [
      'an adapter id with a leading /',
      InferenceCompletedV1,
      (d) => (d.adapterId = '/etc/passwd'),
      'data.adapterId',
    ],
    [
      'an adapter id with uppercase',
      AdapterRegisteredV1,
      (d) => (d.adapterId = 'llama-3-8b:Acme/legal'),
      'data.adapterId',
    ],
    [
      'an adapter of another base model',
      InferenceCompletedV1,
      (d) => (d.adapterId = 'qwen2-7b:acme/legal-ur'),
      'data.adapterId',
    ],
    ['a mismatched baseModel', AdapterRegisteredV1, (d) => (d.baseModel = 'qwen2-7b'), 'data.baseModel'],
    [
      'a training mix not summing to 10000',
      AdapterRegisteredV1,
      (d) => ((d.trainedOn as { mixWeightBps: number }[])[0]!.mixWeightBps = 6000),
      'data.trainedOn',
    ],
    [
      'duplicate target modules',
      AdapterRegisteredV1,
      (d) => (d.targetModules = ['q_proj', 'q_proj']),
      'data.targetModules',
    ],
    [
      'an unknown target module',
      AdapterRegisteredV1,
      (d) => (d.targetModules = ['lm_head']),
      'data.targetModules[0]',
    ],
    [
      'an unknown finish reason',
      InferenceCompletedV1,
      (d) => (d.finishReason = 'exploded'),
      'data.finishReason',
    ],
    [
      'endedAt before startedAt',
      InferenceCompletedV1,
      (d) => (d.endedAt = '2026-01-31T11:59:59.000Z'),
      'data.endedAt',
    ],
    [
      'a first-token time with no tokens',
      InferenceCompletedV1,
      (d) => (d.completionTokens = 0),
      'data.timings.firstTokenMs',
    ],
    ['a missing field', InferenceCompletedV1, (d) => delete d.workerId, 'data.workerId'],
    ['an extra field', InferenceCompletedV1, (d) => (d.prompt = 'secret text'), 'data'],
    [
      'a worker without operator',
      InferenceFailedV1,
      (d) => (d.operatorAddress = null),
      'data.operatorAddress',
    ],
    [
      'an object key escaping the store',
      DatanetContributionAddedV1,
      (d) => (d.objectKey = '../secrets'),
      'data.objectKey',
    ],
    [
      'an absolute object key',
      DatanetContributionAddedV1,
      (d) => (d.objectKey = '/etc/passwd'),
      'data.objectKey',
    ],
    [
      'unsorted totals',
      AttributionEpochClosedV1,
      (d) => (d.totals as unknown[]).reverse(),
      'data.totals[1].account',
    ],
    [
      'a totalAmount that is not the sum',
      AttributionEpochClosedV1,
      (d) => (d.totalAmount = '1'),
      'data.totalAmount',
    ],
    [
      'a totalsHash of other totals',
      AttributionEpochClosedV1,
      (d) => (d.totalsHash = 'e'.repeat(64)),
      'data.totalsHash',
    ],
    [
      'a zero total',
      AttributionEpochClosedV1,
      (d) => ((d.totals as { amount: string }[])[0]!.amount = '0'),
      'data.totals[0].amount',
    ],
    ['more events than sequences', AttributionEpochClosedV1, (d) => (d.eventCount = 3), 'data.eventCount'],
    [
      'a merkle root without 0x',
      LedgerPayoutPostedV1,
      (d) => (d.merkleRoot = 'c'.repeat(64)),
      'data.merkleRoot',
    ],
  ];

  it.each(dataCases)('given %s, then invalid_data at the path', (_name, definition, change, path) => {
    const violation = violationOf(wireWith(definition, change));

    expect(violation.code).toBe('invalid_data');
    expect([violation.eventType, violation.eventVersion]).toEqual([definition.type, definition.version]);
    expect(violation.issues.map((issue) => issue.path)).toContain(path);
  });

  it('given an extra field carrying text, then the violation message does not repeat the value', () => {
    const violation = violationOf(wireWith(InferenceCompletedV1, (d) => (d.prompt = 'secret text')));

    expect(violation.message).not.toContain('secret text');
  });
});

describe('encodeEvent', () => {
  it('given an invalid event built by hand, when encoded, then it throws instead of producing bytes', () => {
    const forged = {
      ...exampleEvent(InferenceCompletedV1),
      data: { ...exampleData(InferenceCompletedV1), promptTokens: -1 },
    };

    expect(() => encodeEvent(forged as never)).toThrow(ContractViolation);
  });

  it('given bad input, when decodeEvent is used, then it throws the same violation parseEvent returns', () => {
    expect(() => decodeEvent('nope')).toThrow(expect.objectContaining({ code: 'malformed_json' }));
  });
});

describe('parseEvent on hostile input', () => {
  it(
    'given any JSON value, when parsed, then it returns a result and never throws',
    () => {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const result = parseEvent(value);

          expect(result.ok).toBe(false);
        }),
        { numRuns: 500 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'given an example event with one data field replaced by anything, when parsed, then it returns a result and never throws',
    () => {
      const definitions = eventDefinitions();
      fc.assert(
        fc.property(fc.nat(definitions.length - 1), fc.nat(), fc.jsonValue(), (which, field, value) => {
          const definition = definitions[which]!;
          const raw = wireWith(definition, (data) => {
            const keys = Object.keys(data);
            data[keys[field % keys.length]!] = value;
          });

          const result = parseEvent(raw);

          if (result.ok) expect(encodeEvent(result.event)).toBeInstanceOf(Uint8Array);
          else expect(result.error).toBeInstanceOf(ContractViolation);
        }),
        { numRuns: 1000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'given arbitrary bytes, when parsed, then it returns a violation and never throws',
    () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
          expect(parseEvent(bytes).ok).toBe(false);
        }),
        { numRuns: 500 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});

describe('types', () => {
  it("given a known event, when narrowed by type, then data has that event's type", () => {
    const event = exampleEvent(InferenceCompletedV1);

    if (event.type === 'inference.completed') {
      expectTypeOf(event.data.completionTokens).toEqualTypeOf<number>();
      expectTypeOf(event.data.adapterId).toEqualTypeOf<string | null>();
      expectTypeOf(event.version).toEqualTypeOf<1>();
    }
    if (event.type === 'attribution.epoch.closed') {
      expectTypeOf(event.data.totals).toEqualTypeOf<{ account: string; amount: string }[]>();
    }
    expectTypeOf(
      createEvent(LedgerPayoutPostedV1, exampleData(LedgerPayoutPostedV1) as never, META),
    ).toExtend<KnownEvent>();
    expectTypeOf<InferenceCompletedV1>().toExtend<KnownEvent>();
    expectTypeOf<InferenceCompletedV1['data']['finishReason']>().toEqualTypeOf<
      'stop' | 'length' | 'cancelled'
    >();
  });
});
