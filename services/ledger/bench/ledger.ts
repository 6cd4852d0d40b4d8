/**
 * Ledger benchmark: Merkle tree build and proofs for 100,000 and 1,000,000 accounts (each size in
 * its own process, for its peak memory), and gas on a real chain (anvil): posting an epoch,
 * claiming with a real proof from each tree, against paying the same accounts by individual
 * ERC-20 transfers (a few transfers measured, extrapolated linearly).
 *
 * Run from the repository root:
 *   node --import ./services/ledger/bench/source-hooks.mjs services/ledger/bench/ledger.ts
 * Writes bench/results/ledger.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { maxUint256, type Address, type Hex } from 'viem';

import { cumulativeMerkleDistributorAbi, longtailTokenAbi } from '../src/chain/artifacts.js';
import { startAnvil } from '../src/chain/anvil.js';
import { publicClientFor, walletClientFor } from '../src/chain/clients.js';
import { deployLedgerContracts } from '../src/chain/deploy.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');
const SIZES = (process.env['LEDGER_BENCH_SIZES'] ?? '100000,1000000').split(',').map(Number);
const TRANSFERS_MEASURED = 5;

interface TreeFigures {
  accounts: number;
  buildMs: number;
  buildCpuMs: number;
  accountIndexMs: number;
  proofsSampled: number;
  proofMsTotal: number;
  proofUsEach: number;
  proofLength: number;
  root: Hex;
  maxRssMiB: number;
  probe: { account: Address; cumulativeAmount: string; proof: Hex[] };
}

function runTree(n: number): TreeFigures {
  const out = execFileSync(process.execPath, ['--import', join(HERE, 'source-hooks.mjs'), join(HERE, 'tree-worker.ts'), String(n)], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as TreeFigures;
}

async function main(): Promise<void> {
  const trees: TreeFigures[] = [];
  for (const n of SIZES) {
    process.stderr.write(`tree of ${n} accounts…\n`);
    trees.push(runTree(n));
  }

  process.stderr.write('gas on anvil…\n');
  const chain = await startAnvil();
  try {
    const endpoint = { rpcUrl: chain.rpcUrl, chainId: chain.chainId };
    const contracts = await deployLedgerContracts({ ...endpoint, deployerKey: chain.privateKeys[0]!, poster: chain.accounts[1]!, posterMayMint: true });
    const client = publicClientFor(endpoint);
    const poster = walletClientFor(endpoint, chain.privateKeys[1]!);
    const claimer = walletClientFor(endpoint, chain.privateKeys[2]!);
    const gasOf = async (hash: Hex) => (await client.waitForTransactionReceipt({ hash })).gasUsed;
    await gasOf(await poster.writeContract({ address: contracts.token, abi: longtailTokenAbi, functionName: 'approve', args: [contracts.distributor, maxUint256] }));
    await gasOf(await poster.writeContract({ address: contracts.token, abi: longtailTokenAbi, functionName: 'mint', args: [poster.account.address, 10n ** 40n] }));

    // Posts: each tree's root as one epoch. The tree's size only changes the 32-byte root.
    const posts: Array<{ epoch: number; accounts: number; gas: number }> = [];
    const claims: Array<{ accounts: number; proofLength: number; firstClaimGas: number; note: string }> = [];
    let funded = 0n;
    for (const [epoch, tree] of trees.entries()) {
      // The probe account's leaf is in this tree; fund the whole cumulative total it stands for
      // with a stand-in total (gas does not depend on the amount beyond its byte count).
      funded += 10n ** 30n;
      const gas = await gasOf(
        await poster.writeContract({ address: contracts.distributor, abi: cumulativeMerkleDistributorAbi, functionName: 'postRoot', args: [BigInt(epoch), tree.root, funded] }),
      );
      posts.push({ epoch, accounts: tree.accounts, gas: Number(gas) });
      const claimGas = await gasOf(
        await claimer.writeContract({
          address: contracts.distributor,
          abi: cumulativeMerkleDistributorAbi,
          functionName: 'claim',
          args: [tree.probe.account, BigInt(tree.probe.cumulativeAmount), tree.probe.proof],
        }),
      );
      claims.push({ accounts: tree.accounts, proofLength: tree.probe.proof.length, firstClaimGas: Number(claimGas), note: 'first claim, recipient held no tokens (worst case)' });
    }
    // A later post (same slots rewritten) is what every epoch after the first costs.
    const steady = await gasOf(
      await poster.writeContract({ address: contracts.distributor, abi: cumulativeMerkleDistributorAbi, functionName: 'postRoot', args: [BigInt(trees.length), trees[0]!.root, funded + 1n] }),
    );

    // Individual ERC-20 transfers to fresh accounts: the alternative to a Merkle distributor.
    const transferGas: number[] = [];
    for (let i = 0; i < TRANSFERS_MEASURED; i++) {
      const to = `0x${(0xbe00 + i).toString(16).padStart(40, '0')}` as Address;
      transferGas.push(Number(await gasOf(await poster.writeContract({ address: contracts.token, abi: longtailTokenAbi, functionName: 'transfer', args: [to, 10n ** 18n] }))));
    }
    const perTransfer = Math.round(transferGas.reduce((a, b) => a + b, 0) / transferGas.length);

    const results = {
      benchmark: 'ledger',
      command: 'node --import ./services/ledger/bench/source-hooks.mjs services/ledger/bench/ledger.ts',
      date: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
        node: process.version,
        note: 'shared machine: wall-clock times include waiting for the CPU; buildCpuMs is the process CPU time',
      },
      chain: { node: 'anvil 1.7.1 (default hardfork)', solc: '0.8.37, via-IR, 10,000 runs', evm: 'cancun' },
      targets: { treeOf1MillionUnderSeconds: 60, claimUnderGas: 90_000 },
      trees: trees.map(({ probe: _probe, ...figures }) => figures),
      gas: {
        postFirstEpoch: posts[0]?.gas,
        postLaterEpoch: Number(steady),
        postsByTreeSize: posts,
        claims,
        erc20TransferToFreshAccount: { measured: transferGas, average: perTransfer },
        comparison: trees.map((t) => ({
          accounts: t.accounts,
          merkle: { postGas: Number(steady), note: 'one post per epoch, whatever the number of accounts; each account pays its own claim' },
          individualTransfersGas: perTransfer * t.accounts,
          extrapolation: `${perTransfer} gas × ${t.accounts} accounts (linear extrapolation from ${TRANSFERS_MEASURED} measured transfers)`,
        })),
      },
    };
    const file = join(ROOT, 'bench/results/ledger.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await chain.stop();
  }
}

await main();
