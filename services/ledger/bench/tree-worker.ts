/**
 * One benchmark size in its own process, so that its peak memory (maxRSS) is its own: builds the
 * cumulative tree of N pseudo-random accounts, times proof generation, and prints one JSON line.
 * Usage: node --import ./services/ledger/bench/source-hooks.mjs services/ledger/bench/tree-worker.ts <N>
 */
import { performance } from 'node:perf_hooks';
import type { Address } from 'viem';

import { CumulativeTree, verifyProof, type CumulativeEntry } from '../src/tree/cumulative-tree.js';

const n = Number(process.argv[2] ?? '100000');
const PROOF_SAMPLE = 10_000;

/** Deterministic accounts (xorshift32) and amounts of up to ~10^24 base units. */
function makeEntries(count: number): CumulativeEntry[] {
  const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
  let s = 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const entries: CumulativeEntry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    let account = '0x';
    for (let b = 0; b < 5; b++) {
      const w = next();
      account += hex[w >>> 24]! + hex[(w >>> 16) & 255]! + hex[(w >>> 8) & 255]! + hex[w & 255]!;
    }
    entries[i] = { account: account as Address, cumulativeAmount: BigInt(next()) * 1_000_000_000_000_000n + BigInt(i) };
  }
  return entries;
}

const entries = makeEntries(n);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const tree = CumulativeTree.build(entries);
const buildMs = performance.now() - t0;
const cpu1 = process.cpuUsage(cpu0);

// Proofs: the first lookup builds the account → leaf index; then a sample of lookups by address.
const t2 = performance.now();
tree.proof(entries[0]!.account);
const indexMs = performance.now() - t2;
const t1 = performance.now();
const sample = Math.min(PROOF_SAMPLE, n);
let proofLength = 0;
for (let i = 0; i < sample; i++) {
  const p = tree.proof(entries[Math.floor((i * n) / sample)]!.account)!;
  proofLength = Math.max(proofLength, p.proof.length);
}
const proofMs = performance.now() - t1;
const probe = entries[n >> 1]!;
const probeProof = tree.proofAt(n >> 1);
if (!verifyProof(tree.root, probe.account, probe.cumulativeAmount, probeProof)) throw new Error('proof does not verify');

process.stdout.write(
  `${JSON.stringify({
    accounts: n,
    buildMs: Math.round(buildMs),
    buildCpuMs: Math.round((cpu1.user + cpu1.system) / 1000),
    accountIndexMs: Math.round(indexMs),
    proofsSampled: sample,
    proofMsTotal: Math.round(proofMs),
    proofUsEach: Math.round((proofMs * 1000) / sample),
    proofLength,
    root: tree.root,
    maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    probe: { account: probe.account, cumulativeAmount: String(probe.cumulativeAmount), proof: probeProof },
  })}\n`,
);
