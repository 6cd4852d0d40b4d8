/**
 * Test helpers for contract tests: a fresh anvil with both contracts deployed and the poster
 * funded, plus `revertOf()` to name the custom error a call reverted with.
 */
import { BaseError, ContractFunctionRevertedError, maxUint256, type Address, type Hex } from 'viem';

import { cumulativeMerkleDistributorAbi, longtailTokenAbi } from '../src/chain/artifacts.js';
import { startAnvil, type AnvilChain, type StartAnvilOptions } from '../src/chain/anvil.js';
import { publicClientFor, walletClientFor, type LedgerPublicClient, type LedgerWalletClient } from '../src/chain/clients.js';
import { deployLedgerContracts, type LedgerContracts } from '../src/chain/deploy.js';

export interface ChainFixture {
  readonly chain: AnvilChain;
  readonly contracts: LedgerContracts;
  readonly publicClient: LedgerPublicClient;
  /** Admin of both contracts (dev account 0). */
  readonly admin: LedgerWalletClient;
  /** Holds POSTER_ROLE and MINTER_ROLE, has approved the distributor (dev account 1). */
  readonly poster: LedgerWalletClient;
  /** An unprivileged account that submits claims (dev account 2). */
  readonly claimer: LedgerWalletClient;
  stop(): Promise<void>;
}

export async function startChainFixture(options: StartAnvilOptions = {}): Promise<ChainFixture> {
  const chain = await startAnvil(options);
  const endpoint = { rpcUrl: chain.rpcUrl, chainId: chain.chainId };
  const contracts = await deployLedgerContracts({
    ...endpoint,
    deployerKey: chain.privateKeys[0]!,
    poster: chain.accounts[1]!,
    posterMayMint: true,
  });
  const publicClient = publicClientFor(endpoint);
  const poster = walletClientFor(endpoint, chain.privateKeys[1]!);
  const approve = await poster.writeContract({
    address: contracts.token,
    abi: longtailTokenAbi,
    functionName: 'approve',
    args: [contracts.distributor, maxUint256],
  });
  await publicClient.waitForTransactionReceipt({ hash: approve });
  return {
    chain,
    contracts,
    publicClient,
    admin: walletClientFor(endpoint, chain.privateKeys[0]!),
    poster,
    claimer: walletClientFor(endpoint, chain.privateKeys[2]!),
    stop: () => chain.stop(),
  };
}

/** The custom error name (and args) a rejected call reverted with; throws if it did not revert. */
export async function revertOf(call: Promise<unknown>): Promise<{ name: string; args: readonly unknown[] }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof BaseError) {
      const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
      if (reverted instanceof ContractFunctionRevertedError && reverted.data) {
        return { name: reverted.data.errorName, args: reverted.data.args ?? [] };
      }
    }
    throw error;
  }
  throw new Error('expected the call to revert, it succeeded');
}

export async function tokenBalance(f: ChainFixture, account: Address): Promise<bigint> {
  return f.publicClient.readContract({ address: f.contracts.token, abi: longtailTokenAbi, functionName: 'balanceOf', args: [account] });
}

/** Mints what the next post adds, then posts; returns the receipt's gas. */
export async function postRoot(f: ChainFixture, epoch: bigint, root: Hex, cumulativeTotal: bigint): Promise<bigint> {
  const funded = await f.publicClient.readContract({ address: f.contracts.distributor, abi: cumulativeMerkleDistributorAbi, functionName: 'totalFunded' });
  if (cumulativeTotal > funded) {
    const mint = await f.poster.writeContract({
      address: f.contracts.token,
      abi: longtailTokenAbi,
      functionName: 'mint',
      args: [f.poster.account.address, cumulativeTotal - funded],
    });
    await f.publicClient.waitForTransactionReceipt({ hash: mint });
  }
  const hash = await f.poster.writeContract({
    address: f.contracts.distributor,
    abi: cumulativeMerkleDistributorAbi,
    functionName: 'postRoot',
    args: [epoch, root, cumulativeTotal],
  });
  const receipt = await f.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`postRoot reverted in ${hash}`);
  return receipt.gasUsed;
}

/** Submits a claim from the claimer account; returns the receipt's gas. */
export async function claim(f: ChainFixture, account: Address, cumulativeAmount: bigint, proof: readonly Hex[]): Promise<bigint> {
  const hash = await f.claimer.writeContract({
    address: f.contracts.distributor,
    abi: cumulativeMerkleDistributorAbi,
    functionName: 'claim',
    args: [account, cumulativeAmount, proof],
  });
  const receipt = await f.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`claim reverted in ${hash}`);
  return receipt.gasUsed;
}

/** Deterministic distinct account addresses (not dev accounts: they start with zero tokens). */
export function accountAt(i: number): Address {
  return `0x${(0x1000_0000 + i).toString(16).padStart(40, 'a')}` as Address;
}
