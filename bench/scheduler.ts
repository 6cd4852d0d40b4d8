/**
 * Scheduler placement benchmark (issue 8): the placement simulation at 64 and 512 workers over
 * 100,000 adapters, bounded-load placement with replicas against random placement and plain
 * consistent hashing. Both fleets hold 131,072 adapters in all (64 × 2,048 and 512 × 256), so the
 * catalogue fits across the fleet, and both see the same traffic: Zipf(1) popularity with 10 % of
 * the ranks re-permuted every hour, a day of 24 hours compressed to `HOUR_S` simulated seconds
 * each at 3,400 requests/s, the first 6 hours excluded as warm-up.
 *
 *   node --conditions=longtail-source --import ./services/attribution/scripts/source-loader.mjs bench/scheduler.ts [hourSeconds]
 *
 * Writes bench/results/scheduler.json and prints a table. Decision latency is measured with
 * process.hrtime.bigint() around each observe + route call (so it includes the timer's own cost).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';

import {
  compare,
  POLICIES,
  type PolicyName,
  type PolicyReport,
  type Scenario,
} from '../services/scheduler/src/placement/index.js';

const HOUR_S = Number(process.argv[2] ?? 40);
const COMMAND = `node --conditions=longtail-source --import ./services/attribution/scripts/source-loader.mjs bench/scheduler.ts${process.argv[2] === undefined ? '' : ` ${process.argv[2]}`}`;

const traffic = {
  seed: 20261125,
  adapters: 100_000,
  hours: 24,
  hourSeconds: HOUR_S,
  requestsPerSecond: 3_400,
  zipfAlpha: 1,
  shiftFraction: 0.1,
  warmupHours: 6,
  windowSeconds: 60,
  serviceSeconds: 1,
  loadSeconds: 0.5,
  capacityFactor: 1.5,
  virtualNodes: 128,
} as const;

const fleets = [
  { workers: 64, poolAdapters: 2_048 },
  { workers: 512, poolAdapters: 256 },
] as const;

const placementDefaults = {
  loadFactor: 1.25,
  loadFloor: 16,
  loadHalfLifeS: 10,
  demandHalfLifeS: 15,
  replicaShare: 0.0625,
  unreplicateHysteresis: 0.5,
  replicaMinRequests: 8,
  replicaWarmupS: traffic.loadSeconds,
  probeLimit: 16,
  holdWhileWarming: true,
};

interface ConfigResult {
  readonly workers: number;
  readonly adapters: number;
  readonly poolAdapters: number;
  readonly requests: number;
  readonly wallSeconds: number;
  readonly policies: Record<PolicyName, PolicyReport>;
  readonly targets: Record<string, { readonly met: boolean; readonly detail: string }>;
}

function targetsFor(workers: number, r: Record<PolicyName, PolicyReport>): ConfigResult['targets'] {
  const ours = r['bounded-load'];
  const random = r.random;
  const hashing = r['consistent-hashing'];
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const targets: Record<string, { met: boolean; detail: string }> = {
    decisionP99Under1ms: {
      met: ours.decisionP99Us < 1000,
      detail: `p99 ${ours.decisionP99Us.toFixed(2)} µs`,
    },
    hitBetterThanBaselines: {
      met: ours.hitRate > random.hitRate && ours.hitRate > hashing.hitRate,
      detail: `${pct(ours.hitRate)} vs random ${pct(random.hitRate)}, consistent hashing ${pct(hashing.hitRate)}`,
    },
    imbalanceBetterThanBaselines: {
      met: ours.imbalance.mean < random.imbalance.mean && ours.imbalance.mean < hashing.imbalance.mean,
      detail: `${ours.imbalance.mean.toFixed(3)} vs random ${random.imbalance.mean.toFixed(3)}, consistent hashing ${hashing.imbalance.mean.toFixed(3)}`,
    },
  };
  if (workers === 512) {
    targets['hitAbove95'] = { met: ours.hitRate > 0.95, detail: pct(ours.hitRate) };
    targets['imbalanceUnder1_25'] = {
      met: ours.imbalance.mean < 1.25 && ours.imbalance.max < 1.25,
      detail: `mean ${ours.imbalance.mean.toFixed(3)}, worst window ${ours.imbalance.max.toFixed(3)}`,
    };
  }
  return targets;
}

function main(): void {
  const started = Date.now();
  const loadBefore = os.loadavg();
  const results: ConfigResult[] = [];
  for (const fleet of fleets) {
    const scenario: Scenario = { ...traffic, ...fleet, placement: placementDefaults };
    const t0 = Date.now();
    const policies = compare(scenario);
    const wallSeconds = (Date.now() - t0) / 1000;
    results.push({
      workers: fleet.workers,
      adapters: traffic.adapters,
      poolAdapters: fleet.poolAdapters,
      requests: policies['bounded-load'].requests,
      wallSeconds,
      policies,
      targets: targetsFor(fleet.workers, policies),
    });
    console.error(`${fleet.workers} workers: ${wallSeconds.toFixed(1)} s`);
  }
  const loadAfter = os.loadavg();
  const cpus = os.cpus();
  const output = {
    name: 'scheduler placement simulation (issue 8)',
    command: COMMAND,
    date: new Date(started).toISOString(),
    machine: {
      cpuModel: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadAverage1m: { before: round(loadBefore[0]!, 2), after: round(loadAfter[0]!, 2) },
    },
    parameters: {
      ...traffic,
      fleets,
      placement: placementDefaults,
      notes: [
        'hit: the request landed on a worker already holding its adapter, loaded at least loadSeconds earlier',
        'imbalance: max/mean of per-worker requests in each windowSeconds window after warm-up',
        'loads: adapter loads on workers after warm-up (misses; for bounded-load also prefetched replicas)',
        'decision latency: process.hrtime.bigint() around observe + route (bounded-load) or route (baselines)',
        "firstRequestShare: measured requests that were their adapter's first of the run (a miss for every policy)",
        'misses: first = first request of the run; reload = the worker did not hold the adapter; warming = the worker was still loading it (under plain consistent hashing every miss is first or warming: unavoidable when every adapter fits)',
        'holdWhileWarming: when every holder is at the cap, the request stays on a holder (up to loadFactor x the cap) while a new replica loads',
      ],
    },
    wallSeconds: round((Date.now() - started) / 1000, 1),
    results,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/scheduler.json', `${JSON.stringify(output, null, 2)}\n`);
  console.log(table(results));
  console.log(
    `\nwall ${output.wallSeconds} s; load average ${output.machine.loadAverage1m.before} → ${output.machine.loadAverage1m.after}`,
  );
}

function table(results: readonly ConfigResult[]): string {
  const rows = [
    '| workers × pool | policy | decisions/s | p50 µs | p99 µs | hit rate | misses: first / reload / warming | imbalance mean (worst) | loads/min | over capacity |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of results) {
    for (const name of POLICIES) {
      const r = c.policies[name];
      rows.push(
        `| ${c.workers} × ${c.poolAdapters.toLocaleString('en-US')} | ${name} | ${Math.round(r.decisionsPerSecond).toLocaleString('en-US')} | ${r.decisionP50Us.toFixed(2)} | ${r.decisionP99Us.toFixed(2)} | ${(r.hitRate * 100).toFixed(3)} % | ${r.misses.first.toLocaleString('en-US')} / ${r.misses.reload.toLocaleString('en-US')} / ${r.misses.warming.toLocaleString('en-US')} | ${r.imbalance.mean.toFixed(3)} (${r.imbalance.max.toFixed(3)}) | ${Math.round(r.loadsPerMinute).toLocaleString('en-US')} | ${(r.overCapacityShare * 100).toFixed(2)} % |`,
      );
    }
  }
  const targets = results.flatMap((c) =>
    Object.entries(c.targets).map(
      ([k, v]) => `- ${c.workers} workers, ${k}: ${v.met ? 'met' : 'NOT met'} (${v.detail})`,
    ),
  );
  return [...rows, '', ...targets].join('\n');
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

main();
