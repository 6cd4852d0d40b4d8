import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { encodeEvent } from './codec.js';
import { CONTRACT_VIOLATION_CODES } from './errors.js';
import { AdapterRegisteredV1 } from './events/adapters.js';
import { AttributionEpochClosedV1 } from './events/attribution.js';
import { InferenceCompletedV1, InferenceFailedV1 } from './events/inference.js';
import { exampleEvent } from './examples.js';
import { eventDefinitions } from './registry.js';
import {
  KV_BUCKETS,
  OBJECT_BUCKETS,
  STREAMS,
  aggregateSubjectFilter,
  deadLetterSubject,
  keyFromSubjectToken,
  streamFor,
  subjectFor,
  subjectToken,
} from './streams.js';

/** Property tests run thousands of cases; on a busy shared machine they need more than the default 10 s. */
const PROPERTY_TIMEOUT_MS = 60_000;

/** NATS subject matching: `*` is one token, `>` one or more trailing tokens. */
function matches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

describe('subjectToken', () => {
  // Properties return booleans rather than calling expect per run: thousands of runs stay fast on a busy machine.
  it(
    'given any well-formed string, when encoded, then the token is a safe NATS token and decodes back',
    () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (key) => {
          const token = subjectToken(key);
          return /^[A-Za-z0-9_-]+$/.test(token) && keyFromSubjectToken(token) === key;
        }),
        { numRuns: 1000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'given two different strings, when encoded, then the tokens differ',
    () => {
      fc.assert(
        fc.property(
          fc.string({ unit: 'binary', maxLength: 16 }),
          fc.string({ unit: 'binary', maxLength: 16 }),
          (a, b) => {
            fc.pre(a !== b);
            return subjectToken(a) !== subjectToken(b);
          },
        ),
        { numRuns: 1000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('given ids with characters NATS forbids, when encoded, then they are escaped readably', () => {
    expect(subjectToken('llama-3-8b:acme/legal-ur')).toBe('llama-3-8b_3Aacme_2Flegal-ur');
    expect(subjectToken('a.b*c>d e\tf')).toBe('a_2Eb_2Ac_3Ed_20e_09f');
    expect(subjectToken('under_score')).toBe('under_5Fscore');
    expect(subjectToken('é')).toBe('_C3_A9');
    expect(subjectToken('')).toBe('_');
    expect(subjectToken('42')).toBe('42');
  });

  it('given a string with a lone surrogate, when encoded, then it is refused', () => {
    expect(() => subjectToken('a\uD800b')).toThrow(
      expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.InvalidSubjectToken }),
    );
  });

  it.each([
    ['an empty token', ''],
    ['a forbidden character', 'a.b'],
    ['a dangling escape', 'abc_4'],
    ['lowercase hex', 'a_2f'],
    ['an escaped kept character', '_61'],
    ['bytes that are not UTF-8', '_FF'],
    ['an overlong UTF-8 encoding', '_C0_AF'],
  ])('given %s, when decoded, then it is refused', (_name, token) => {
    expect(() => keyFromSubjectToken(token)).toThrow(
      expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.InvalidSubjectToken }),
    );
  });
});

describe('subjects and streams', () => {
  it.each(
    eventDefinitions().map(
      (definition) => [`${definition.type} v${definition.version}`, definition] as const,
    ),
  )(
    'given the example %s, then its subject is <type>.<token>, lies in its stream and in its aggregate filter',
    (_name, definition) => {
      const event = exampleEvent(definition);

      const subject = subjectFor(event);
      const stream = streamFor(event.type);

      expect(subject.startsWith(`${event.type}.`)).toBe(true);
      expect(subject.split('.')).toHaveLength(event.type.split('.').length + 1);
      expect(stream.subjects.some((filter) => matches(filter, subject))).toBe(true);
      expect(matches(`${event.type}.>`, subject)).toBe(true);
      expect(matches(aggregateSubjectFilter(event), subject)).toBe(true);
    },
  );

  it('given an adapter event, then the subject ends with the encoded adapter id', () => {
    expect(subjectFor(exampleEvent(AdapterRegisteredV1))).toBe(
      'adapters.registered.llama-3-8b_3Aacme_2Flegal-ur',
    );
    expect(subjectFor(exampleEvent(AttributionEpochClosedV1))).toBe('attribution.epoch.closed.7');
  });

  it('given both outcome events of one request, then one aggregate filter covers both and nothing of another request', () => {
    const completed = exampleEvent(InferenceCompletedV1);
    const failed = exampleEvent(InferenceFailedV1);
    const filter = aggregateSubjectFilter(completed);
    const sameRequestFailure = `inference.failed.${subjectFor(completed).split('.').at(-1)}`;

    expect(filter).toBe('inference.*.req-0195f3c4-9a1b');
    expect(matches(filter, sameRequestFailure)).toBe(true);
    expect(matches(filter, subjectFor(failed))).toBe(false);
  });

  it('given every known type, then each family has one stream and all types of a family have the same depth', () => {
    const depthByFamily = new Map<string, number>();
    for (const definition of eventDefinitions()) {
      const [family] = definition.type.split('.');
      const depth = definition.type.split('.').length;

      expect(streamFor(definition.type).subjects).toEqual([`${family}.>`]);
      expect(depthByFamily.get(family!) ?? depth).toBe(depth);
      depthByFamily.set(family!, depth);
    }
  });

  it('given the stream hints, then money streams are exactly INFERENCE, ATTRIBUTION and LEDGER, all with a 2 min dedup window', () => {
    const money = Object.values(STREAMS)
      .filter((stream) => stream.money)
      .map((stream) => stream.name);

    expect(money).toEqual(['INFERENCE', 'ATTRIBUTION', 'LEDGER']);
    for (const stream of Object.values(STREAMS)) {
      expect(stream.storage).toBe('file');
      expect(stream.duplicateWindowMs).toBe(120_000);
    }
  });

  it('given the bucket names, then they are valid NATS bucket names and do not collide', () => {
    const names = [...Object.values(KV_BUCKETS), ...Object.values(OBJECT_BUCKETS)].map(
      (bucket) => bucket.bucket,
    );

    expect(names).toEqual(['workers', 'placements', 'leases', 'adapters', 'datanet-content']);
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('given a stream and a durable, then the dead-letter subject is dlq.<stream>.<durable> in the DLQ stream', () => {
    const subject = deadLetterSubject({ stream: 'INFERENCE', durable: 'attribution-projector' });

    expect(subject).toBe('dlq.INFERENCE.attribution-projector');
    expect(matches(STREAMS.DLQ.subjects[0], subject)).toBe(true);
    expect(() => deadLetterSubject({ stream: 'INFERENCE', durable: 'a.b' })).toThrow(
      expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.InvalidSubjectToken }),
    );
  });

  it('given an event, then encoding does not depend on the subject (the subject is derived, not carried)', () => {
    const event = exampleEvent(InferenceCompletedV1);

    expect(new TextDecoder().decode(encodeEvent(event))).not.toContain(subjectFor(event));
  });

  it('given an envelope whose data lacks the aggregate key, then subjectFor refuses it', () => {
    const event = { ...exampleEvent(InferenceCompletedV1), data: {} };

    expect(() => subjectFor(event)).toThrow(
      expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.InvalidData }),
    );
  });

  it('given a type no stream holds, then streamFor refuses it', () => {
    expect(() => streamFor('billing.charged')).toThrow(
      expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.UnknownType }),
    );
  });
});
