/**
 * Ledger events (stream `LEDGER`, aggregate: the epoch). A payout root is posted on chain exactly
 * once per epoch; this event records where and how, after the transaction is confirmed.
 */
import { z } from 'zod';

import { defineEvent, type EventOf } from '../define.js';
import { BaseUnitsSchema, Bytes32HexSchema, EvmAddressSchema, Sha256HexSchema } from '../fields.js';

const PayoutPostedDataSchema = z
  .strictObject({
    epoch: z
      .int()
      .nonnegative()
      .describe('Epoch whose closing this root includes (cumulatively, with every earlier epoch).'),
    epochTotalsHash: Sha256HexSchema.describe(
      'totalsHash of the attribution.epoch.closed event of that epoch.',
    ),
    merkleRoot: Bytes32HexSchema.describe(
      'Root of the cumulative Merkle tree (account, cumulative amount) posted on chain.',
    ),
    chainId: z.int().min(1).describe('EVM chain id (EIP-155).'),
    distributorAddress: EvmAddressSchema.describe(
      'Address of the distributor contract the root was posted to.',
    ),
    txHash: Bytes32HexSchema.describe('Hash of the transaction that posted the root.'),
    blockNumber: z.int().nonnegative().describe('Block that includes the transaction.'),
    cumulativeTotal: BaseUnitsSchema.describe(
      'Sum of all amounts in the tree: everything earned up to and including this epoch, base units.',
    ),
  })
  .describe('A payout root was posted on chain and confirmed.');

export const LedgerPayoutPostedV1 = defineEvent({
  type: 'ledger.payout.posted',
  version: 1,
  description:
    'The cumulative Merkle root including an epoch was posted to the distributor contract and the transaction is confirmed. ' +
    'Accounts can claim from then on. Published once per epoch.',
  aggregate: 'epoch (decimal)',
  data: PayoutPostedDataSchema,
  aggregateKey: (data) => String(data.epoch),
});
export type LedgerPayoutPostedV1 = EventOf<typeof LedgerPayoutPostedV1>;
export type LedgerPayoutPostedV1Data = LedgerPayoutPostedV1['data'];
