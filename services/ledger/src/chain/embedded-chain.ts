/**
 * The embedded default chain for one machine: when no CHAIN_RPC_URL is configured, the ledger
 * starts anvil with its state in `dataDir` (kept across restarts through `--state`), deploys the
 * token and the distributor the first time, and remembers their addresses in
 * `dataDir/contracts.json`. The poster is anvil dev account 1 (deployer: account 0), which may
 * mint the demo token. Never for a real chain: those keys are public.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Address, Hex } from 'viem';

import { startAnvil, type AnvilChain } from './anvil.js';
import { publicClientFor } from './clients.js';
import { deployLedgerContracts } from './deploy.js';

export interface EmbeddedChain {
  readonly chain: AnvilChain;
  readonly rpcUrl: string;
  readonly chainId: number;
  readonly posterKey: Hex;
  readonly token: Address;
  readonly distributor: Address;
  readonly deployedAtBlock: bigint;
  stop(): Promise<void>;
}

export async function startEmbeddedChain(options: { dataDir: string; port?: number; blockTimeMs?: number }): Promise<EmbeddedChain> {
  mkdirSync(options.dataDir, { recursive: true });
  const chain = await startAnvil({
    stateFile: join(options.dataDir, 'anvil-state.json'),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.blockTimeMs !== undefined ? { blockTimeMs: options.blockTimeMs } : {}),
  });
  const record = join(options.dataDir, 'contracts.json');
  const endpoint = { rpcUrl: chain.rpcUrl, chainId: chain.chainId };
  let contracts: { token: Address; distributor: Address; deployedAtBlock: string } | undefined;
  if (existsSync(record)) {
    const saved = JSON.parse(readFileSync(record, 'utf8')) as { token: Address; distributor: Address; deployedAtBlock: string };
    // State lost (file deleted, anvil upgraded)? Then the saved addresses point at nothing: redeploy.
    const code = await publicClientFor(endpoint).getCode({ address: saved.distributor });
    if (code && code !== '0x') contracts = saved;
  }
  if (!contracts) {
    const deployed = await deployLedgerContracts({ ...endpoint, deployerKey: chain.privateKeys[0]!, poster: chain.accounts[1]!, posterMayMint: true });
    contracts = { token: deployed.token, distributor: deployed.distributor, deployedAtBlock: String(deployed.deployedAtBlock) };
    writeFileSync(record, `${JSON.stringify(contracts, null, 2)}\n`);
  }
  return {
    chain,
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    posterKey: chain.privateKeys[1]!,
    token: contracts.token,
    distributor: contracts.distributor,
    deployedAtBlock: BigInt(contracts.deployedAtBlock),
    stop: () => chain.stop(),
  };
}
