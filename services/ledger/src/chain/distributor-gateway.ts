/**
 * The poster's window on the chain: reads the `ChainView` that `decide` needs and performs the
 * actions it returns (approve, mint, sign-and-broadcast postRoot). No decisions here. The poster's
 * private key lives inside viem's local account; it is never logged, returned or put in errors.
 */
import {
  BaseError,
  encodeFunctionData,
  keccak256,
  maxUint256,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type Address,
  type Hex,
} from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';

import type { ChainView, PayoutRow } from '../payouts/decide.js';
import { distributorCallAbi, longtailTokenAbi } from './artifacts.js';
import { publicClientFor, walletClientFor, type ChainEndpoint, type LedgerPublicClient, type LedgerWalletClient } from './clients.js';
import { MINTER_ROLE, POSTER_ROLE } from './deploy.js';

export interface DistributorGatewayOptions extends ChainEndpoint {
  readonly distributor: Address;
  readonly posterKey: Hex;
  /** First block to search for RootPosted logs (the distributor's deployment block). */
  readonly fromBlock?: bigint;
}

export interface ChainReading extends ChainView {
  /** What the RPC says the chain id is (the poster refuses to act on another chain). */
  readonly chainId: number;
  readonly token: Address | undefined;
}

/** An RPC call failed (node down, refused the transaction, timed out). Retried by the poster. */
export class ChainUnavailable extends Error {
  override readonly name = 'ChainUnavailable';
}

export class DistributorGateway {
  readonly #publicClient: LedgerPublicClient;
  readonly #wallet: LedgerWalletClient;
  readonly #account: PrivateKeyAccount;
  readonly #distributor: Address;
  readonly #fromBlock: bigint;
  readonly #chainId: number;
  #token: Address | undefined;

  constructor(options: DistributorGatewayOptions) {
    this.#publicClient = publicClientFor(options);
    this.#wallet = walletClientFor(options, options.posterKey);
    this.#account = privateKeyToAccount(options.posterKey);
    this.#distributor = options.distributor;
    this.#fromBlock = options.fromBlock ?? 0n;
    this.#chainId = options.chainId;
  }

  get poster(): Address {
    return this.#account.address;
  }

  get distributor(): Address {
    return this.#distributor;
  }

  /** Reads everything `decide` looks at, for `row`'s epoch, in parallel. */
  async readView(row: Pick<PayoutRow, 'epoch' | 'tx'>): Promise<ChainReading> {
    return rpc('read the chain', async () => {
      const client = this.#publicClient;
      const [chainId, code, head, latest, pending, fees] = await Promise.all([
        client.getChainId(),
        client.getCode({ address: this.#distributor }),
        client.getBlockNumber({ cacheTime: 0 }),
        client.getTransactionCount({ address: this.poster, blockTag: 'latest' }),
        client.getTransactionCount({ address: this.poster, blockTag: 'pending' }),
        client.estimateFeesPerGas(),
      ]);
      const base = {
        chainId,
        head,
        posterNonce: { latest, pending },
        fees: { maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas },
      };
      if (!code || code === '0x') {
        return {
          ...base,
          token: undefined,
          distributorDeployed: false,
          posterIsAuthorized: false,
          nextEpoch: 0n,
          totalFunded: 0n,
          posterTokenBalance: 0n,
          posterAllowance: 0n,
          posterCanMint: false,
        };
      }
      const token = await this.#tokenAddress();
      const [nextEpoch, totalFunded, posterIsAuthorized, posterTokenBalance, posterAllowance, posterCanMint, tx] = await Promise.all([
        client.readContract({ address: this.#distributor, abi: distributorCallAbi, functionName: 'nextEpoch' }),
        client.readContract({ address: this.#distributor, abi: distributorCallAbi, functionName: 'totalFunded' }),
        client.readContract({ address: this.#distributor, abi: distributorCallAbi, functionName: 'hasRole', args: [POSTER_ROLE, this.poster] }),
        client.readContract({ address: token, abi: longtailTokenAbi, functionName: 'balanceOf', args: [this.poster] }),
        client.readContract({ address: token, abi: longtailTokenAbi, functionName: 'allowance', args: [this.poster, this.#distributor] }),
        this.#canMint(token),
        row.tx ? this.#txStatus(row.tx.hash) : Promise.resolve(undefined),
      ]);
      const posted = nextEpoch > row.epoch ? await this.#rootPosted(row.epoch) : undefined;
      return {
        ...base,
        token,
        distributorDeployed: true,
        posterIsAuthorized,
        nextEpoch,
        totalFunded,
        posted,
        tx,
        posterTokenBalance,
        posterAllowance,
        posterCanMint,
      };
    });
  }

  /**
   * Signs postRoot locally, then broadcasts it. Returns the hash (known before broadcasting) and
   * calls `beforeBroadcast`/`afterBroadcast` around the send, where tests put their crashes.
   */
  async sendPostRoot(
    row: Pick<PayoutRow, 'epoch' | 'merkleRoot' | 'cumulativeTotal'>,
    tx: { nonce: number; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  ): Promise<Hex> {
    const args = [row.epoch, row.merkleRoot, row.cumulativeTotal] as const;
    const gas = await rpc('estimate postRoot gas', () =>
      this.#publicClient.estimateContractGas({ account: this.#account, address: this.#distributor, abi: distributorCallAbi, functionName: 'postRoot', args }),
    );
    const serializedTransaction = await this.#account.signTransaction({
      type: 'eip1559',
      chainId: this.#chainId,
      to: this.#distributor,
      data: encodeFunctionData({ abi: distributorCallAbi, functionName: 'postRoot', args }),
      nonce: tx.nonce,
      // Posting costs the same whatever the tree's size; a margin covers a colder state than estimated.
      gas: (gas * 13n) / 10n,
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    });
    const hash = keccak256(serializedTransaction);
    await rpc('broadcast postRoot', () => this.#publicClient.sendRawTransaction({ serializedTransaction }));
    return hash;
  }

  async approveMax(): Promise<Hex> {
    const token = await this.#tokenAddress();
    return this.#writeAndWait('approve the distributor', () =>
      this.#wallet.writeContract({ address: token, abi: longtailTokenAbi, functionName: 'approve', args: [this.#distributor, maxUint256] }),
    );
  }

  async mint(amount: bigint): Promise<Hex> {
    const token = await this.#tokenAddress();
    return this.#writeAndWait('mint funding', () =>
      this.#wallet.writeContract({ address: token, abi: longtailTokenAbi, functionName: 'mint', args: [this.poster, amount] }),
    );
  }

  /** ISO-8601 time of a block: `occurredAt` of the payout event (time from the chain, not a clock). */
  async blockTime(blockNumber: bigint): Promise<string> {
    const block = await rpc('read a block', () => this.#publicClient.getBlock({ blockNumber }));
    return new Date(Number(block.timestamp) * 1000).toISOString();
  }

  async #tokenAddress(): Promise<Address> {
    this.#token ??= await this.#publicClient.readContract({ address: this.#distributor, abi: distributorCallAbi, functionName: 'token' });
    return this.#token;
  }

  async #canMint(token: Address): Promise<boolean> {
    try {
      return await this.#publicClient.readContract({ address: token, abi: longtailTokenAbi, functionName: 'hasRole', args: [MINTER_ROLE, this.poster] });
    } catch {
      return false; // a token without AccessControl: funding must come from a treasury
    }
  }

  async #txStatus(hash: Hex): Promise<ChainView['tx']> {
    try {
      const receipt = await this.#publicClient.getTransactionReceipt({ hash });
      return { status: 'mined', reverted: receipt.status !== 'success' };
    } catch (error) {
      if (!(error instanceof TransactionReceiptNotFoundError)) throw error;
    }
    try {
      await this.#publicClient.getTransaction({ hash });
      return { status: 'pending' };
    } catch (error) {
      if (error instanceof TransactionNotFoundError) return { status: 'unknown' };
      throw error;
    }
  }

  async #rootPosted(epoch: bigint): Promise<ChainView['posted']> {
    const logs = await this.#publicClient.getContractEvents({
      address: this.#distributor,
      abi: distributorCallAbi,
      eventName: 'RootPosted',
      args: { epoch },
      fromBlock: this.#fromBlock,
      toBlock: 'latest',
    });
    const log = logs.find((l) => !l.removed);
    if (!log || log.blockNumber === null || log.transactionHash === null || !log.args.root) return undefined;
    return { txHash: log.transactionHash, blockNumber: log.blockNumber, root: log.args.root };
  }

  async #writeAndWait(what: string, write: () => Promise<Hex>): Promise<Hex> {
    const hash = await rpc(what, write);
    const receipt = await rpc(`wait for ${what}`, () => this.#publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 }));
    if (receipt.status !== 'success') throw new ChainUnavailable(`${what}: transaction ${hash} reverted`);
    return hash;
  }
}

/** Runs an RPC step; turns viem's errors into a ChainUnavailable with viem's short message. */
async function rpc<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ChainUnavailable) throw error;
    // The node's own words (details) and viem's summary, on one line; never viem's full message or
    // metaMessages, which carry the RPC URL (it may hold an API key) and the request body.
    const detail =
      error instanceof BaseError
        ? [error.details, error.shortMessage.split('\n')[0]].filter((part, i, all) => part && all.indexOf(part) === i).join(' — ')
        : error instanceof Error
          ? error.message
          : String(error);
    const revert = error instanceof BaseError ? revertName(error) : undefined;
    throw new ChainUnavailable(`${what}: ${revert ? `reverted with ${revert}: ` : ''}${detail}`, { cause: error });
  }
}

function revertName(error: BaseError): string | undefined {
  const found = error.walk((e) => typeof e === 'object' && e !== null && 'data' in e && typeof (e as { data?: { errorName?: unknown } }).data?.errorName === 'string');
  return (found as { data?: { errorName?: string } } | null)?.data?.errorName;
}
