/**
 * Deploys the ledger's two contracts: the stand-in network token and the cumulative distributor.
 * Used by tests, the benchmark and the one-command stack (against anvil); on a real chain an
 * operator deploys once and gives the ledger `DISTRIBUTOR_ADDRESS`.
 *
 * Funding model (see README): the poster pays for what it promises when it posts, and on a demo
 * chain the poster may mint the token. So the deployer grants the poster MINTER_ROLE when asked.
 */
import { keccak256, toBytes, type Address, type Hex } from 'viem';

import { cumulativeMerkleDistributorAbi, cumulativeMerkleDistributorBytecode, longtailTokenAbi, longtailTokenBytecode } from './artifacts.js';
import { publicClientFor, walletClientFor, type ChainEndpoint } from './clients.js';

export const MINTER_ROLE: Hex = keccak256(toBytes('MINTER_ROLE'));
export const POSTER_ROLE: Hex = keccak256(toBytes('POSTER_ROLE'));

export interface DeployLedgerOptions extends ChainEndpoint {
  /** Key of the account that deploys and administers both contracts. */
  readonly deployerKey: Hex;
  /** Account allowed to post roots. */
  readonly poster: Address;
  /** Grant the poster MINTER_ROLE on the token (demo funding: the poster mints what it promises). */
  readonly posterMayMint?: boolean;
  readonly tokenName?: string;
  readonly tokenSymbol?: string;
}

export interface LedgerContracts {
  readonly token: Address;
  readonly distributor: Address;
  /** Block of the distributor's deployment: where log scans start. */
  readonly deployedAtBlock: bigint;
}

export async function deployLedgerContracts(options: DeployLedgerOptions): Promise<LedgerContracts> {
  const publicClient = publicClientFor(options);
  const wallet = walletClientFor(options, options.deployerKey);
  const admin = wallet.account.address;

  const tokenTx = await wallet.deployContract({
    abi: longtailTokenAbi,
    bytecode: longtailTokenBytecode,
    args: [options.tokenName ?? 'Longtail', options.tokenSymbol ?? 'LONG', admin],
  });
  const tokenReceipt = await publicClient.waitForTransactionReceipt({ hash: tokenTx });
  const token = tokenReceipt.contractAddress;
  if (!token || tokenReceipt.status !== 'success') throw new Error(`token deployment failed in ${tokenTx}`);

  const distributorTx = await wallet.deployContract({
    abi: cumulativeMerkleDistributorAbi,
    bytecode: cumulativeMerkleDistributorBytecode,
    args: [token, admin, options.poster],
  });
  const distributorReceipt = await publicClient.waitForTransactionReceipt({ hash: distributorTx });
  const distributor = distributorReceipt.contractAddress;
  if (!distributor || distributorReceipt.status !== 'success') throw new Error(`distributor deployment failed in ${distributorTx}`);

  if (options.posterMayMint && options.poster.toLowerCase() !== admin.toLowerCase()) {
    const grant = await wallet.writeContract({ address: token, abi: longtailTokenAbi, functionName: 'grantRole', args: [MINTER_ROLE, options.poster] });
    await publicClient.waitForTransactionReceipt({ hash: grant });
  }
  return { token, distributor, deployedAtBlock: distributorReceipt.blockNumber };
}
