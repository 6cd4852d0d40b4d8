/**
 * Attribution events (stream `ATTRIBUTION`, aggregate: the epoch). Closing an epoch states, once
 * and for all, what each account earned from the INFERENCE events of a contiguous range of stream
 * sequences. The event checks itself: the totals are canonical, their sum and their hash match.
 */
import { z } from 'zod';

import { defineEvent, withRules, type EventOf } from '../define.js';
import {
  BaseUnitsSchema,
  EvmAddressSchema,
  PositiveBaseUnitsSchema,
  Sha256HexSchema,
  StreamSequenceSchema,
} from '../fields.js';
import { totalsHash } from './totals.js';

const EpochTotalSchema = z
  .strictObject({
    account: EvmAddressSchema.describe('Account (creator, contributor, operator or protocol treasury).'),
    amount: PositiveBaseUnitsSchema.describe('What the account earned in this epoch, base units (> 0).'),
  })
  .describe('What one account earned in the epoch.');

const EpochClosedDataSchema = withRules(
  z.strictObject({
    epoch: z
      .int()
      .nonnegative()
      .describe('Epoch number; epochs are closed in order 0, 1, 2, ... without gaps.'),
    policyVersion: z
      .int()
      .min(1)
      .describe('Version of the pricing and split policy that produced the totals.'),
    totals: z
      .array(EpochTotalSchema)
      .describe('Per-account earnings, sorted by account ascending, each account once, amounts > 0.'),
    totalAmount: BaseUnitsSchema.describe('Sum of totals[].amount, base units.'),
    totalsHash: Sha256HexSchema.describe(
      'SHA-256 (hex) of the canonical encoding of totals: `longtail.totals.v1\\n`, then `<account>,<amount>\\n` per entry in order.',
    ),
    eventCount: z.int().nonnegative().describe('Number of INFERENCE events priced into this epoch.'),
    firstSequence: z
      .int()
      .min(1)
      .describe(
        "First INFERENCE stream sequence covered (inclusive); equals the previous epoch's lastSequence + 1.",
      ),
    lastSequence: StreamSequenceSchema.describe(
      'Last INFERENCE stream sequence covered (inclusive); firstSequence - 1 when the epoch covers nothing.',
    ),
  }),
  (data, rawFail) => {
    let broken = false;
    const fail = (path: (string | number)[], message: string): void => {
      broken = true;
      rawFail(path, message);
    };
    let sum = 0n;
    data.totals.forEach((entry, index) => {
      sum += BigInt(entry.amount);
      const previous = index > 0 ? data.totals[index - 1] : undefined;
      if (previous && !(previous.account < entry.account))
        fail(['totals', index, 'account'], 'accounts must be sorted ascending and unique');
    });
    if (sum.toString() !== data.totalAmount) fail(['totalAmount'], 'must equal the sum of totals[].amount');
    if (data.lastSequence < data.firstSequence - 1)
      fail(['lastSequence'], 'must be at least firstSequence - 1');
    else if (data.eventCount > data.lastSequence - data.firstSequence + 1) {
      fail(['eventCount'], 'must not exceed the number of sequences covered');
    }
    // The hash is only worth computing over totals that are otherwise sound.
    if (!broken && totalsHash(data.totals) !== data.totalsHash) {
      fail(['totalsHash'], 'must be the SHA-256 of the canonical encoding of totals');
    }
  },
).describe('An attribution epoch was closed.');

export const AttributionEpochClosedV1 = defineEvent({
  type: 'attribution.epoch.closed',
  version: 1,
  description:
    'An attribution epoch was closed: the exact amounts each account earned from the INFERENCE events with stream ' +
    'sequences firstSequence..lastSequence. Published once per epoch; the ledger turns it into a Merkle root.',
  invariants: [
    'totals are sorted by account ascending (lowercase), each account once, every amount > 0.',
    'totalAmount is the sum of totals[].amount.',
    'totalsHash = sha256(canonicalTotalsEncoding(totals)), see "Canonical totals encoding".',
    'lastSequence >= firstSequence - 1, and eventCount <= lastSequence - firstSequence + 1.',
  ],
  aggregate: 'epoch (decimal)',
  data: EpochClosedDataSchema,
  aggregateKey: (data) => String(data.epoch),
});
export type AttributionEpochClosedV1 = EventOf<typeof AttributionEpochClosedV1>;
export type AttributionEpochClosedV1Data = AttributionEpochClosedV1['data'];

const BasisPoints = z.int().min(0).max(10_000);

const PolicySetDataSchema = withRules(
  z.strictObject({
    version: z.int().min(1).describe('Policy version: 1, 2, 3, ...; each is published once.'),
    effectiveFromEpoch: z.int().nonnegative().describe('First epoch the policy may govern.'),
    operatorBps: BasisPoints.describe('Share of the GPU operator that served the inference, basis points.'),
    creatorBps: BasisPoints.describe('Share of the adapter creator, basis points.'),
    contributorsBps: BasisPoints.describe(
      "Share of the contributors of the adapter's training snapshots (split by mix weight, then by contributor weight), basis points.",
    ),
    treasuryBps: BasisPoints.describe('Share of the protocol treasury, basis points.'),
    treasuryAddress: EvmAddressSchema.describe('Protocol treasury account.'),
    reason: z.string().min(1).max(500).optional().describe('Why (a governance reference), for people.'),
  }),
  (data, fail) => {
    const sum = data.operatorBps + data.creatorBps + data.contributorsBps + data.treasuryBps;
    if (sum !== 10_000) fail(['treasuryBps'], `basis points must sum to 10000, got ${sum}`);
    if (data.version === 1 && data.effectiveFromEpoch !== 0)
      fail(['effectiveFromEpoch'], 'version 1 governs the first epoch (0)');
  },
).describe('A split policy version was adopted.');

export const AttributionPolicySetV1 = defineEvent({
  type: 'attribution.policy.set',
  version: 1,
  description:
    'A split policy version was adopted (governance): how each fee is shared between the GPU operator, the adapter creator, ' +
    'the Datanet contributors and the protocol treasury. It governs an epoch when the marker that opens the epoch ' +
    '(inference.epoch_closing of the previous one) names it; an open epoch never changes policy.',
  invariants: [
    'operatorBps + creatorBps + contributorsBps + treasuryBps = 10000.',
    'Version 1 has effectiveFromEpoch 0: it governs the first epoch.',
    'Each version is published once (the subject must not exist yet).',
  ],
  aggregate: 'version (decimal)',
  data: PolicySetDataSchema,
  aggregateKey: (data) => String(data.version),
});
export type AttributionPolicySetV1 = EventOf<typeof AttributionPolicySetV1>;
export type AttributionPolicySetV1Data = AttributionPolicySetV1['data'];
