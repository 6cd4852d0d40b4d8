/**
 * Datanet events (stream `DATANETS`, aggregate: the Datanet id). A Datanet is a named dataset with
 * contributors; a snapshot freezes who contributed what, and an adapter names the snapshots it
 * was trained on, which decides who shares in its fees. Content lives in the `datanet-content`
 * object store; events carry its hash, never the content.
 */
import { z } from 'zod';

import { defineEvent, withRules, type EventOf } from '../define.js';
import {
  DatanetIdSchema,
  EvmAddressSchema,
  ObjectKeySchema,
  OpaqueIdSchema,
  Sha256HexSchema,
  StreamSequenceSchema,
  TokenCountSchema,
  boundedText,
} from '../fields.js';

const ContributionAddedDataSchema = z
  .strictObject({
    datanetId: DatanetIdSchema,
    contributionId: OpaqueIdSchema.describe('Id of the contribution, unique within the Datanet.'),
    contributorAddress: EvmAddressSchema.describe("EVM address that receives the contributor's share."),
    contentSha256: Sha256HexSchema.describe('SHA-256 of the contributed content.'),
    sizeTokens: TokenCountSchema.describe('Size of the content in tokens of the Datanet tokenizer.'),
    weight: z
      .int()
      .nonnegative()
      .optional()
      .describe('Curator-given weight of the contribution; when absent, the weight is sizeTokens.'),
    objectKey: ObjectKeySchema.optional().describe(
      'Key of the content in the `datanet-content` object-store bucket, when stored there.',
    ),
  })
  .describe('A contribution was accepted into a Datanet.');

export const DatanetContributionAddedV1 = defineEvent({
  type: 'datanets.contribution.added',
  version: 1,
  description:
    'A contribution was accepted into a Datanet. It counts from the next snapshot on. Its weight defaults to sizeTokens.',
  aggregate: 'datanetId',
  data: ContributionAddedDataSchema,
  aggregateKey: (data) => data.datanetId,
});
export type DatanetContributionAddedV1 = EventOf<typeof DatanetContributionAddedV1>;
export type DatanetContributionAddedV1Data = DatanetContributionAddedV1['data'];

const SnapshotContributorSchema = z
  .strictObject({
    account: EvmAddressSchema.describe('Contributor address.'),
    weight: z
      .int()
      .min(1)
      .describe("Sum of the weights of this contributor's contributions in the snapshot (> 0)."),
  })
  .describe('One contributor of the snapshot and its weight.');

const SnapshotPublishedDataSchema = withRules(
  z.strictObject({
    datanetId: DatanetIdSchema,
    snapshotId: OpaqueIdSchema.describe('Id of the snapshot, unique within the Datanet.'),
    throughSequence: StreamSequenceSchema.describe(
      'Last DATANETS stream sequence whose contributions the snapshot includes (every contribution of this Datanet up to it).',
    ),
    contributionCount: z.int().nonnegative().describe('Number of contributions in the snapshot.'),
    contributors: z
      .array(SnapshotContributorSchema)
      .describe('Contributors and their weights, sorted by account ascending, each account once.'),
  }),
  (data, fail) => {
    for (let i = 1; i < data.contributors.length; i += 1) {
      if (!(data.contributors[i - 1]!.account < data.contributors[i]!.account)) {
        fail(['contributors', i, 'account'], 'accounts must be sorted ascending and unique');
      }
    }
    if (data.contributors.length > data.contributionCount) {
      fail(['contributionCount'], 'must be at least the number of contributors');
    }
  },
).describe('A Datanet snapshot was frozen.');

export const DatanetSnapshotPublishedV1 = defineEvent({
  type: 'datanets.snapshot.published',
  version: 1,
  description:
    'A Datanet snapshot was frozen: the contributors and weights that adapters trained on it pay. A future version may add ' +
    'the content index used by Proof of Attribution (suffix-array over the tokenized content, by object key and hash).',
  invariants: [
    'contributors are sorted by account ascending (lowercase), each account once.',
    'contributionCount is at least the number of contributors.',
  ],
  aggregate: 'datanetId',
  data: SnapshotPublishedDataSchema,
  aggregateKey: (data) => data.datanetId,
});
export type DatanetSnapshotPublishedV1 = EventOf<typeof DatanetSnapshotPublishedV1>;
export type DatanetSnapshotPublishedV1Data = DatanetSnapshotPublishedV1['data'];

const DatanetCreatedDataSchema = z
  .strictObject({
    datanetId: DatanetIdSchema,
    name: boundedText(200, 'Display name of the Datanet, 1..200 characters.'),
    ownerTenantId: OpaqueIdSchema.describe('Tenant that curates the Datanet.'),
    description: z
      .string()
      .max(2000)
      .optional()
      .describe('What the dataset is, for people (at most 2000 characters).'),
  })
  .describe('A Datanet was created.');

export const DatanetCreatedV1 = defineEvent({
  type: 'datanets.datanet.created',
  version: 1,
  description:
    'A Datanet (a named dataset that contributors add to and snapshots freeze) was created. Published once per datanetId ' +
    '(the subject must not exist yet).',
  aggregate: 'datanetId',
  data: DatanetCreatedDataSchema,
  aggregateKey: (data) => data.datanetId,
});
export type DatanetCreatedV1 = EventOf<typeof DatanetCreatedV1>;
export type DatanetCreatedV1Data = DatanetCreatedV1['data'];
