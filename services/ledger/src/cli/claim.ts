#!/usr/bin/env node
/**
 * Claims an account's payout from the distributor with viem.
 *
 *   node services/ledger/dist/cli/claim.js --rpc URL --distributor ADDR --key KEY --proof-from URL|FILE
 *
 *   --rpc          JSON-RPC URL of the chain
 *   --distributor  CumulativeMerkleDistributor address
 *   --key          private key that signs and pays gas (or env CLAIM_PRIVATE_KEY, which keeps it
 *                  out of shell history); the tokens always go to the proof's account
 *   --proof-from   the ledger's answer for the account: an HTTP URL
 *                  (http://ledger:port/v1/ledger/accounts/0x…) or a JSON file with
 *                  { account, cumulativeAmount, proof }
 *   --chain-id     optional; read from the RPC when omitted
 *   --dry-run      simulate only
 *
 * Prints one JSON line: { account, paid, cumulativeAmount, txHash, gasUsed } (amounts in base units).
 * Exit codes: 0 claimed (or nothing to claim), 1 usage or input error, 2 the claim was refused.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BaseError, ContractFunctionRevertedError, createPublicClient, createWalletClient, http, isAddress, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

import { distributorCallAbi } from '../chain/artifacts.js';
import { chainOf } from '../chain/clients.js';

export interface ClaimInput {
  readonly account: Address;
  readonly cumulativeAmount: bigint;
  readonly proof: readonly Hex[];
}

export interface ClaimOutcome {
  readonly account: Address;
  readonly cumulativeAmount: string;
  /** Base units this claim paid ('0' when there was nothing to claim). */
  readonly paid: string;
  readonly txHash: Hex | null;
  readonly gasUsed: string | null;
}

export class ClaimRefused extends Error {
  override readonly name = 'ClaimRefused';
}

/** Reads `{ account, cumulativeAmount, proof }` from the ledger's HTTP API or a JSON file. */
export async function readClaimInput(source: string): Promise<ClaimInput> {
  const text = /^https?:\/\//.test(source) ? await fetchText(source) : await readFile(source, 'utf8');
  const value = JSON.parse(text) as { account?: unknown; cumulativeAmount?: unknown; proof?: unknown };
  if (typeof value.account !== 'string' || !isAddress(value.account)) throw new Error('proof input: account must be an address');
  if (typeof value.cumulativeAmount !== 'string' || !/^(0|[1-9][0-9]*)$/.test(value.cumulativeAmount)) {
    throw new Error('proof input: cumulativeAmount must be a decimal string of base units');
  }
  if (!Array.isArray(value.proof) || !value.proof.every((p) => typeof p === 'string' && /^0x[0-9a-fA-F]{64}$/.test(p))) {
    throw new Error('proof input: proof must be an array of 32-byte hex strings');
  }
  return { account: value.account as Address, cumulativeAmount: BigInt(value.cumulativeAmount), proof: value.proof as Hex[] };
}

export async function claimPayout(options: { rpcUrl: string; chainId?: number; distributor: Address; key: Hex; input: ClaimInput; dryRun?: boolean }): Promise<ClaimOutcome> {
  const transport = http(options.rpcUrl);
  const chainId = options.chainId ?? (await createPublicClient({ transport }).getChainId());
  const chain = chainOf({ rpcUrl: options.rpcUrl, chainId });
  const client = createPublicClient({ chain, transport, pollingInterval: 250 });
  const wallet = createWalletClient({ chain, transport, account: privateKeyToAccount(options.key) });
  const { account, cumulativeAmount, proof } = options.input;
  const base = { account, cumulativeAmount: cumulativeAmount.toString() };

  const already = await client.readContract({ address: options.distributor, abi: distributorCallAbi, functionName: 'claimed', args: [account] });
  if (cumulativeAmount <= already) return { ...base, paid: '0', txHash: null, gasUsed: null };
  try {
    const { request } = await client.simulateContract({
      account: wallet.account,
      address: options.distributor,
      abi: distributorCallAbi,
      functionName: 'claim',
      args: [account, cumulativeAmount, proof],
    });
    if (options.dryRun) return { ...base, paid: (cumulativeAmount - already).toString(), txHash: null, gasUsed: null };
    const hash = await wallet.writeContract(request);
    const receipt = await client.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success') throw new ClaimRefused(`claim transaction ${hash} reverted`);
    return { ...base, paid: (cumulativeAmount - already).toString(), txHash: hash, gasUsed: receipt.gasUsed.toString() };
  } catch (error) {
    if (error instanceof BaseError) {
      const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
      if (reverted instanceof ContractFunctionRevertedError) {
        const name = reverted.data?.errorName ?? 'unknown error';
        const hint = name === 'InvalidProof' ? ' (the proof is not for the root now on chain: fetch a fresh one)' : '';
        throw new ClaimRefused(`the distributor refused the claim: ${name}${hint}`, { cause: error });
      }
      throw new Error(error.shortMessage, { cause: error });
    }
    throw error;
  }
}

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.text();
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rpc: { type: 'string' },
      distributor: { type: 'string' },
      key: { type: 'string' },
      'proof-from': { type: 'string' },
      'chain-id': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const key = values.key ?? process.env['CLAIM_PRIVATE_KEY'];
  if (values.help || !values.rpc || !values.distributor || !key || !values['proof-from']) {
    process.stderr.write('usage: claim --rpc URL --distributor ADDR --key KEY (or CLAIM_PRIVATE_KEY) --proof-from URL|FILE [--chain-id N] [--dry-run]\n');
    return values.help ? 0 : 1;
  }
  if (!isAddress(values.distributor)) throw new Error('--distributor must be an address');
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new Error('--key must be 0x + 64 hex digits');
  const outcome = await claimPayout({
    rpcUrl: values.rpc,
    ...(values['chain-id'] ? { chainId: Number(values['chain-id']) } : {}),
    distributor: values.distributor,
    key: key as Hex,
    input: await readClaimInput(values['proof-from']),
    dryRun: values['dry-run'],
  });
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
  return 0;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      // Only the message: never the key, never viem's full text (it carries the RPC URL).
      process.stderr.write(`claim: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(error instanceof ClaimRefused ? 2 : 1);
    },
  );
}
