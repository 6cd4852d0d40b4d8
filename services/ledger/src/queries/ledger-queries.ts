/**
 * What the ledger answers (over HTTP and NATS): an account's cumulative amount, what it has
 * claimed and its proof against the root now on chain; the payout status of each epoch. Proofs
 * are for the root the distributor holds right now (read from the contract, so a root that is
 * mined but not yet confirmed is already the one claims must use), from that epoch's tree, rebuilt
 * from the balances once per root and kept in memory; a rebuilt root that differs from the
 * posted one is an error, never served.
 */
import type { Kysely } from 'kysely';
import type { Address, Hex } from 'viem';

import { CumulativeTree } from '../tree/cumulative-tree.js';
import { loadCumulativeEntries } from '../store/balances.js';
import { payoutRecord, payoutRecords, payoutWithRoot, type PayoutOutboxRecord } from '../store/payout-outbox.js';
import type { LedgerDatabase } from '../store/schema.js';

/** What the queries read from the distributor. */
export interface DistributorReads {
  /** `claimed(account)`: base units paid to the account so far. */
  claimed(account: Address): Promise<bigint>;
  /** `merkleRoot()`: the root claims are checked against now (zero before the first post). */
  merkleRoot(): Promise<Hex>;
}

export interface AccountPayout {
  readonly account: Address;
  /** Epoch of the root the proof is for; null when no root is posted yet. */
  readonly epoch: number | null;
  readonly merkleRoot: Hex | null;
  readonly distributor: Address;
  readonly chainId: number;
  /** Base units as decimal strings (JSON has no bigint). */
  readonly cumulativeAmount: string;
  readonly claimed: string;
  readonly claimable: string;
  /** Pass to `claim(account, cumulativeAmount, proof)`; empty when nothing is in the tree. */
  readonly proof: readonly Hex[];
}

export interface EpochPayoutStatus {
  readonly epoch: number;
  readonly state: PayoutOutboxRecord['state'];
  readonly merkleRoot: Hex;
  readonly cumulativeTotal: string;
  readonly accountCount: number;
  readonly txHash: Hex | null;
  readonly blockNumber: number | null;
  readonly sendCount: number;
  readonly lastError: string | null;
}

export class AccountNotFound extends Error {
  override readonly name = 'AccountNotFound';
}

export class LedgerQueries {
  readonly #db: Kysely<LedgerDatabase>;
  readonly #reads: DistributorReads;
  readonly #chain: { distributor: Address; chainId: number };
  #tree: { epoch: bigint; tree: Promise<CumulativeTree> } | undefined;

  constructor(db: Kysely<LedgerDatabase>, reads: DistributorReads, chain: { distributor: Address; chainId: number }) {
    this.#db = db;
    this.#reads = reads;
    this.#chain = chain;
  }

  async accountPayout(account: string): Promise<AccountPayout> {
    const normalised = account.toLowerCase() as Address;
    if (!/^0x[0-9a-f]{40}$/.test(normalised)) throw new AccountNotFound(`not an EVM address: ${account}`);
    const [root, claimed] = await Promise.all([this.#reads.merkleRoot(), this.#reads.claimed(normalised)]);
    const posted = await payoutWithRoot(this.#db, root);
    if (!posted) {
      return { account: normalised, epoch: null, merkleRoot: null, ...this.#chain, cumulativeAmount: '0', claimed: claimed.toString(), claimable: '0', proof: [] };
    }
    const tree = await this.treeOf(posted);
    const entry = tree.proof(normalised);
    const cumulative = entry?.cumulativeAmount ?? 0n;
    return {
      account: normalised,
      epoch: Number(posted.epoch),
      merkleRoot: posted.merkle_root as Hex,
      ...this.#chain,
      cumulativeAmount: cumulative.toString(),
      claimed: claimed.toString(),
      claimable: (cumulative > claimed ? cumulative - claimed : 0n).toString(),
      proof: entry?.proof ?? [],
    };
  }

  async epochStatus(epoch: number): Promise<EpochPayoutStatus | undefined> {
    const record = await payoutRecord(this.#db, BigInt(epoch));
    return record && toStatus(record);
  }

  async epochStatuses(): Promise<EpochPayoutStatus[]> {
    return (await payoutRecords(this.#db)).map(toStatus);
  }

  /** The tree behind a posted root, cached for the latest one; checked against the root. */
  async treeOf(record: PayoutOutboxRecord): Promise<CumulativeTree> {
    if (this.#tree?.epoch !== record.epoch) {
      const tree = loadCumulativeEntries(this.#db, record.epoch).then((entries) => {
        const built = CumulativeTree.build(entries);
        if (built.root !== record.merkle_root) {
          throw new Error(`rebuilt tree of epoch ${record.epoch} has root ${built.root}, the posted root is ${record.merkle_root}`);
        }
        return built;
      });
      this.#tree = { epoch: record.epoch, tree };
      tree.catch(() => (this.#tree = undefined));
    }
    return this.#tree.tree;
  }
}

function toStatus(r: PayoutOutboxRecord): EpochPayoutStatus {
  return {
    epoch: Number(r.epoch),
    state: r.state,
    merkleRoot: r.merkle_root as Hex,
    cumulativeTotal: r.cumulative_total,
    accountCount: r.account_count,
    txHash: (r.posted_tx_hash ?? r.tx_hash) as Hex | null,
    blockNumber: r.posted_block === null ? null : Number(r.posted_block),
    sendCount: r.send_count,
    lastError: r.last_error,
  };
}
