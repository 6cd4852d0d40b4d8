/**
 * A deterministic simulation of adapter placement over a compressed day of traffic, to compare
 * bounded-load placement with replicas (`Placement`) against two baselines: random placement
 * (each request to a uniformly random worker) and plain consistent hashing (each adapter on its
 * ring owner; no load bound, no replicas). Everything but the measured latencies is a function of
 * the scenario (seed included), and all three policies see the same request sequence.
 *
 * The traffic: Poisson arrivals at `requestsPerSecond`; adapter popularity is Zipf(α) over ranks,
 * and at every simulated hour a random `shiftFraction` of the ranks swap adapters among
 * themselves (yesterday's hot adapter can become cold, and a cold one hot).
 *
 * The workers: each holds at most `poolAdapters` adapters (one page each) with LRU eviction of
 * its own, and takes `loadSeconds` to load one: a request is a hit when its worker already holds
 * its adapter, loaded at least `loadSeconds` earlier. Under `Placement` the worker loads and drops
 * exactly what the decision records say (the engine must keep pools within capacity: a load onto a
 * full pool is counted as a violation); under the baselines a miss loads the adapter on the worker,
 * evicting its least recently used one. Requests stay in flight for `serviceSeconds`.
 *
 * Measured after `warmupHours`: hit rate, adapter loads, and per-window load imbalance (max/mean of
 * per-worker request counts over `windowSeconds`); over the whole run: the latency of each routing
 * decision (`process.hrtime.bigint()` around observe + route), as p50/p99 and decisions/s.
 */
import { HashRing } from './hash-ring.js';
import { Placement, type Decision, type DecisionKind, type PlacementOptions } from './placement.js';
import { hash32, xoshiro128, type Random } from './random.js';
import { zipf } from './zipf.js';

export interface Scenario {
  readonly seed: number;
  readonly adapters: number;
  readonly workers: number;
  /** Adapters one worker's pool holds. */
  readonly poolAdapters: number;
  readonly hours: number;
  /** Simulated seconds per hour (the day is compressed). */
  readonly hourSeconds: number;
  readonly requestsPerSecond: number;
  readonly zipfAlpha?: number;
  /** Fraction of ranks re-permuted at each hour. Default 0.1. */
  readonly shiftFraction?: number;
  /** Hours excluded from hit rate, loads and imbalance. */
  readonly warmupHours: number;
  /** Window of the imbalance measure, seconds. Default 60. */
  readonly windowSeconds?: number;
  /** Seconds a request is in flight. Default 1. */
  readonly serviceSeconds?: number;
  /** Seconds a worker takes to load an adapter. Default 0.5. */
  readonly loadSeconds?: number;
  /** A worker's service capacity over the mean offered load per worker. Default 1.5. */
  readonly capacityFactor?: number;
  /** Ring points per worker, for `Placement` and plain consistent hashing. Default 128. */
  readonly virtualNodes?: number;
  /** Tuning of the bounded-load policy. */
  readonly placement?: Omit<PlacementOptions, 'onDecision' | 'virtualNodes'>;
}

export type PolicyName = 'bounded-load' | 'random' | 'consistent-hashing';
export const POLICIES: readonly PolicyName[] = ['bounded-load', 'random', 'consistent-hashing'];

export interface PolicyReport {
  readonly policy: PolicyName;
  readonly requests: number;
  /** Requests after warm-up: the denominator of the rates below. */
  readonly measuredRequests: number;
  readonly hitRate: number;
  /** Share of measured requests that were an adapter's first request of the run (a miss for any policy). */
  readonly firstRequestShare: number;
  /** Adapter loads on workers after warm-up (misses, plus prefetched replicas for bounded-load). */
  readonly loads: number;
  readonly loadsPerMinute: number;
  readonly loadsPer1000Requests: number;
  /** max/mean of per-worker requests in each window after warm-up. */
  readonly imbalance: {
    readonly mean: number;
    readonly p50: number;
    readonly max: number;
    readonly windows: number;
  };
  /**
   * Measured misses by cause: `first` (the adapter's first request of the run: a miss under any
   * policy), `reload` (its worker did not hold it: evicted earlier, or never loaded there) and
   * `warming` (its worker was still loading it).
   */
  readonly misses: { readonly first: number; readonly reload: number; readonly warming: number };
  /** Share of measured requests above their worker's service capacity within a window. */
  readonly overCapacityShare: number;
  readonly decisionsPerSecond: number;
  readonly decisionP50Us: number;
  readonly decisionP99Us: number;
  readonly decisionMaxUs: number;
  /** Bounded-load only: decision records by kind over the whole run. */
  readonly decisions?: Readonly<Record<DecisionKind, number>>;
  /** Bounded-load only: decision records by `kind/reason` over the whole run. */
  readonly reasons?: Readonly<Record<string, number>>;
  /** Bounded-load only: the most replicas any adapter had at an hour boundary. */
  readonly maxReplicas?: number;
  /** Bounded-load only: loads onto a full pool (the engine broke its pool bound); must be 0. */
  readonly poolViolations?: number;
  /** Bounded-load only: requests routed to a worker the table did not place the adapter on; must be 0. */
  readonly unplacedRoutes?: number;
  /** A hash of every routing choice and hit: equal for equal runs. */
  readonly fingerprint: number;
}

/** What the simulated workers hold: one LRU list per worker over (worker, adapter) nodes. */
class WorkerPools {
  readonly #capacity: number;
  readonly #adapters: number;
  readonly #index = new Map<number, number>(); // worker·adapters + adapter → node
  readonly #prev: Int32Array; // [nodes]
  readonly #next: Int32Array;
  readonly #adapterOf: Int32Array;
  readonly #workerOf: Int32Array;
  readonly loadedAt: Float64Array; // [nodes] seconds
  readonly #size: Int32Array; // [workers]
  #free: number[] = [];
  evictions = 0;

  constructor(workers: number, capacity: number, adapters: number) {
    this.#capacity = capacity;
    this.#adapters = adapters;
    // Nodes 0..workers-1 are the sentinels; `capacity` nodes per worker, plus slack for overshoot.
    const nodes = workers + workers * capacity + 1024;
    this.#prev = new Int32Array(nodes);
    this.#next = new Int32Array(nodes);
    this.#adapterOf = new Int32Array(nodes).fill(-1);
    this.#workerOf = new Int32Array(nodes).fill(-1);
    this.loadedAt = new Float64Array(nodes);
    this.#size = new Int32Array(workers);
    for (let w = 0; w < workers; w += 1) {
      this.#prev[w] = w;
      this.#next[w] = w;
    }
    for (let n = nodes - 1; n >= workers; n -= 1) this.#free.push(n);
  }

  find(worker: number, adapter: number): number {
    return this.#index.get(worker * this.#adapters + adapter) ?? -1;
  }

  full(worker: number): boolean {
    return this.#size[worker]! >= this.#capacity;
  }

  touch(node: number): void {
    const w = this.#workerOf[node]!;
    this.#unlink(node);
    this.#linkNewest(w, node);
  }

  /** Loads the adapter, evicting the worker's least recently used one if the pool is full. */
  load(worker: number, adapter: number, now: number): number {
    const existing = this.find(worker, adapter);
    if (existing >= 0) {
      this.touch(existing);
      return existing;
    }
    if (this.full(worker)) {
      const oldest = this.#next[worker]!;
      this.unload(worker, this.#adapterOf[oldest]!);
      this.evictions += 1;
    }
    const node = this.#free.pop();
    if (node === undefined) throw new Error('WorkerPools: out of nodes');
    this.#adapterOf[node] = adapter;
    this.#workerOf[node] = worker;
    this.loadedAt[node] = now;
    this.#index.set(worker * this.#adapters + adapter, node);
    this.#linkNewest(worker, node);
    this.#size[worker] = this.#size[worker]! + 1;
    return node;
  }

  unload(worker: number, adapter: number): void {
    const node = this.find(worker, adapter);
    if (node < 0) return;
    this.#unlink(node);
    this.#index.delete(worker * this.#adapters + adapter);
    this.#size[worker] = this.#size[worker]! - 1;
    this.#free.push(node);
  }

  #unlink(node: number): void {
    const p = this.#prev[node]!;
    const n = this.#next[node]!;
    this.#next[p] = n;
    this.#prev[n] = p;
  }

  #linkNewest(worker: number, node: number): void {
    const last = this.#prev[worker]!;
    this.#next[last] = node;
    this.#prev[node] = last;
    this.#next[node] = worker;
    this.#prev[worker] = node;
  }
}

/** One routing policy as the simulator drives it. */
interface SimPolicy {
  /** Observe + route one request; returns the worker. */
  route(adapter: number, now: number): number;
  complete?(adapter: number, worker: number): void;
  tick?(now: number): void;
}

const adapterId = (a: number): string => `adapter-${a}`;
const workerId = (w: number): string => `worker-${w}`;

export function simulate(scenario: Scenario, policy: PolicyName): PolicyReport {
  const N = scenario.adapters;
  const W = scenario.workers;
  const rate = scenario.requestsPerSecond;
  const hourSeconds = scenario.hourSeconds;
  const duration = scenario.hours * hourSeconds;
  const warmupEnd = scenario.warmupHours * hourSeconds;
  const windowSeconds = scenario.windowSeconds ?? 60;
  const serviceSeconds = scenario.serviceSeconds ?? 1;
  const loadSeconds = scenario.loadSeconds ?? 0.5;
  const shiftFraction = scenario.shiftFraction ?? 0.1;
  const virtualNodes = scenario.virtualNodes ?? 128;
  const capacityPerWindow = ((scenario.capacityFactor ?? 1.5) * rate * windowSeconds) / W;

  const traffic = xoshiro128(scenario.seed);
  const popularity = zipf(N, scenario.zipfAlpha ?? 1);
  const rankToAdapter = new Int32Array(N);
  for (let r = 0; r < N; r += 1) rankToAdapter[r] = r;
  shuffle(rankToAdapter, N, traffic);

  const pools = new WorkerPools(W, scenario.poolAdapters, N);
  const ids = Array.from({ length: N }, (_, a) => adapterId(a));
  const workerIds = Array.from({ length: W }, (_, w) => workerId(w));
  const decisions: Record<DecisionKind, number> = { place: 0, replicate: 0, evict: 0, unreplicate: 0 };
  const reasons: Record<string, number> = {};
  let decisionLoads = 0; // loads ordered by decisions after warm-up
  let poolViolations = 0;
  let unplacedRoutes = 0;
  let engine: Placement | null = null;
  let clock = 0;

  const policyImpl = ((): SimPolicy => {
    if (policy === 'random') {
      const choice = xoshiro128(scenario.seed ^ 0x5eed);
      return { route: () => choice.below(W) };
    }
    if (policy === 'consistent-hashing') {
      const ring = new HashRing(virtualNodes);
      for (let w = 0; w < W; w += 1) ring.add(w, workerIds[w]!);
      const hashes = Uint32Array.from(ids, (id) => hash32(id));
      return { route: (a) => ring.owner(hashes[a]!) };
    }
    const workerIndex = new Map<string, number>();
    const adapterIndex = new Map<string, number>();
    ids.forEach((id, a) => adapterIndex.set(id, a));
    const onDecision = (d: Decision): void => {
      decisions[d.kind] += 1;
      const key = `${d.kind}/${d.reason}`;
      reasons[key] = (reasons[key] ?? 0) + 1;
      const w = workerIndex.get(d.worker)!;
      const a = adapterIndex.get(d.adapter)!;
      if (d.kind === 'place' || d.kind === 'replicate') {
        if (pools.full(w)) poolViolations += 1;
        pools.load(w, a, clock);
        if (clock >= warmupEnd) decisionLoads += 1;
      } else {
        pools.unload(w, a);
      }
    };
    const placement = new Placement({
      replicaWarmupS: loadSeconds,
      ...scenario.placement,
      virtualNodes,
      onDecision,
    });
    engine = placement;
    for (let w = 0; w < W; w += 1) {
      workerIndex.set(workerIds[w]!, w);
      placement.addWorker({ id: workerIds[w]!, baseModel: 'base', poolPages: scenario.poolAdapters });
    }
    for (const id of ids) placement.addAdapter({ id, baseModel: 'base', pages: 1 });
    return {
      route(a, now) {
        const id = ids[a]!;
        placement.observe(id, now);
        return workerIndex.get(placement.route(id, now))!;
      },
      complete: (a, w) => placement.complete(ids[a]!, workerIds[w]!),
      tick: (now) => placement.tick(now),
    };
  })();

  const expected = Math.ceil(rate * duration * 1.05) + 1024;
  const latencies = new Uint32Array(expected); // [requests] ns per decision
  const seen = new Uint8Array(N);
  const windowCounts = new Float64Array(W);
  const imbalances: number[] = [];
  let overCapacity = 0;

  // In-flight requests complete in arrival order (constant service time): a FIFO ring.
  let qCap = 1 << 16;
  let qAdapter = new Int32Array(qCap);
  let qWorker = new Int32Array(qCap);
  let qDone = new Float64Array(qCap);
  let qHead = 0;
  let qLen = 0;

  let requests = 0;
  let measured = 0;
  let hits = 0;
  let firstRequests = 0;
  let missFirst = 0;
  let missReload = 0;
  let missWarming = 0;
  let baselineLoads = 0;
  let maxReplicas = 0;
  let fingerprint = 0x811c9dc5;
  let hour = 0;
  let nextTick = 1;
  let windowEnd = windowSeconds;
  let t = 0;
  const shiftCount = Math.round(shiftFraction * N);
  const rankScratch = new Int32Array(N);

  for (;;) {
    t += -Math.log(1 - traffic.float()) / rate;
    if (t >= duration) break;
    clock = t;

    while (t >= (hour + 1) * hourSeconds) {
      hour += 1;
      if (engine !== null) maxReplicas = Math.max(maxReplicas, replicaHigh(engine, ids, rankToAdapter));
      shiftPopularity(rankToAdapter, rankScratch, shiftCount, traffic);
    }
    while (t >= windowEnd) {
      if (windowEnd - windowSeconds >= warmupEnd) {
        let max = 0;
        let sum = 0;
        for (let w = 0; w < W; w += 1) {
          const c = windowCounts[w]!;
          if (c > max) max = c;
          sum += c;
          if (c > capacityPerWindow) overCapacity += c - capacityPerWindow;
        }
        if (sum > 0) imbalances.push(max / (sum / W));
      }
      windowCounts.fill(0);
      windowEnd += windowSeconds;
    }
    if (policyImpl.complete !== undefined) {
      while (qLen > 0 && qDone[qHead]! <= t) {
        policyImpl.complete(qAdapter[qHead]!, qWorker[qHead]!);
        qHead = (qHead + 1) & (qCap - 1);
        qLen -= 1;
      }
    }
    if (policyImpl.tick !== undefined && t >= nextTick) {
      policyImpl.tick(t);
      nextTick = Math.floor(t) + 1;
    }

    const adapter = rankToAdapter[popularity.sample(traffic)]!;
    const started = process.hrtime.bigint();
    const worker = policyImpl.route(adapter, t);
    const elapsed = Number(process.hrtime.bigint() - started);
    if (requests < latencies.length) latencies[requests] = elapsed;
    requests += 1;

    const node = pools.find(worker, adapter);
    const hit = node >= 0 && pools.loadedAt[node]! + loadSeconds <= t;
    if (node < 0) {
      // A miss loads the adapter (under the baselines, the only way an adapter gets loaded).
      if (engine !== null) unplacedRoutes += 1;
      else if (t >= warmupEnd) baselineLoads += 1;
      pools.load(worker, adapter, t);
    } else {
      pools.touch(node);
    }
    const first = seen[adapter] === 0;
    seen[adapter] = 1;
    if (t >= warmupEnd) {
      measured += 1;
      if (hit) hits += 1;
      else if (first) missFirst += 1;
      else if (node < 0) missReload += 1;
      else missWarming += 1;
      if (first) firstRequests += 1;
      windowCounts[worker] = windowCounts[worker]! + 1;
    }
    fingerprint = Math.imul(fingerprint ^ (worker * 2 + (hit ? 1 : 0)), 0x01000193) >>> 0;

    if (policyImpl.complete !== undefined) {
      if (qLen === qCap) {
        const grow = (a: Int32Array) =>
          Int32Array.from({ length: qCap * 2 }, (_, i) => (i < qCap ? a[(qHead + i) & (qCap - 1)]! : 0));
        const growF = Float64Array.from({ length: qCap * 2 }, (_, i) =>
          i < qCap ? qDone[(qHead + i) & (qCap - 1)]! : 0,
        );
        qAdapter = grow(qAdapter);
        qWorker = grow(qWorker);
        qDone = growF;
        qHead = 0;
        qCap *= 2;
      }
      const tail = (qHead + qLen) & (qCap - 1);
      qAdapter[tail] = adapter;
      qWorker[tail] = worker;
      qDone[tail] = t + serviceSeconds;
      qLen += 1;
    }
  }

  const measuredMinutes = (duration - warmupEnd) / 60;
  const loads = engine !== null ? decisionLoads : baselineLoads;
  const sortedLatencies = latencies.subarray(0, Math.min(requests, latencies.length)).sort();
  const totalNs = sortedLatencies.reduce((s, v) => s + v, 0);
  const sortedImbalance = [...imbalances].sort((x, y) => x - y);
  const report: PolicyReport = {
    policy,
    requests,
    measuredRequests: measured,
    hitRate: measured > 0 ? hits / measured : 0,
    firstRequestShare: measured > 0 ? firstRequests / measured : 0,
    loads,
    loadsPerMinute: measuredMinutes > 0 ? loads / measuredMinutes : 0,
    loadsPer1000Requests: measured > 0 ? (loads * 1000) / measured : 0,
    imbalance: {
      mean: imbalances.length > 0 ? imbalances.reduce((s, v) => s + v, 0) / imbalances.length : 0,
      p50: quantile(sortedImbalance, 0.5),
      max: sortedImbalance.at(-1) ?? 0,
      windows: imbalances.length,
    },
    misses: { first: missFirst, reload: missReload, warming: missWarming },
    overCapacityShare: measured > 0 ? overCapacity / measured : 0,
    decisionsPerSecond: totalNs > 0 ? sortedLatencies.length / (totalNs / 1e9) : 0,
    decisionP50Us: quantile(sortedLatencies, 0.5) / 1000,
    decisionP99Us: quantile(sortedLatencies, 0.99) / 1000,
    decisionMaxUs: (sortedLatencies.at(-1) ?? 0) / 1000,
    fingerprint,
  };
  if (engine === null) return report;
  return {
    ...report,
    decisions: { ...decisions },
    reasons: sortKeys(reasons),
    maxReplicas,
    poolViolations,
    unplacedRoutes,
  };
}

/** Runs every policy on the same scenario. */
export function compare(scenario: Scenario): Record<PolicyName, PolicyReport> {
  return {
    'bounded-load': simulate(scenario, 'bounded-load'),
    random: simulate(scenario, 'random'),
    'consistent-hashing': simulate(scenario, 'consistent-hashing'),
  };
}

function sortKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function shuffle(values: Int32Array, count: number, random: Random): void {
  for (let i = count - 1; i > 0; i -= 1) {
    const j = random.below(i + 1);
    const v = values[i]!;
    values[i] = values[j]!;
    values[j] = v;
  }
}

/** `count` distinct random ranks swap their adapters among themselves. */
function shiftPopularity(
  rankToAdapter: Int32Array,
  scratch: Int32Array,
  count: number,
  random: Random,
): void {
  const n = rankToAdapter.length;
  for (let i = 0; i < n; i += 1) scratch[i] = i;
  // Partial Fisher–Yates: scratch[0..count) are distinct random ranks.
  for (let i = 0; i < count; i += 1) {
    const j = i + random.below(n - i);
    const v = scratch[i]!;
    scratch[i] = scratch[j]!;
    scratch[j] = v;
  }
  const moved = Int32Array.from({ length: count }, (_, i) => rankToAdapter[scratch[i]!]!);
  shuffle(moved, count, random);
  for (let i = 0; i < count; i += 1) rankToAdapter[scratch[i]!] = moved[i]!;
}

/** Replicas of the currently most popular adapters (a hot adapter is where replicas are). */
function replicaHigh(engine: Placement, ids: readonly string[], rankToAdapter: Int32Array): number {
  let high = 0;
  for (let r = 0; r < Math.min(16, rankToAdapter.length); r += 1) {
    high = Math.max(high, engine.replicasOf(ids[rankToAdapter[r]!]!).length);
  }
  return high;
}
