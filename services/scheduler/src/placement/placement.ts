/**
 * Adapter placement: which gpu-workers hold which adapters, and which worker serves each request.
 * Pure and deterministic (no I/O, no clock; replica sampling is seeded): the service feeds it worker and adapter
 * registrations, demand (`observe`) and requests (`route`), and publishes the decision records it
 * emits (place, replicate, evict, unreplicate) as the placement table, later under a fencing token.
 *
 * - Affinity: an adapter's home is found by walking a consistent-hash ring (one per base model)
 *   clockwise from hash(adapter); its replicas stay put until evicted, dropped or their worker leaves.
 * - Bounded load (Mirrokni et al., "Consistent Hashing with Bounded Loads"): a request goes to the
 *   least loaded replica (of two sampled ones when there are many: power of two choices) whose
 *   worker's load stays within ceil(c · capacity share · (total load + 1)), c = 1.25 by default,
 *   never below `loadFloor` (so a quiet fleet does not spread every adapter). When every replica
 *   is at the cap, the walk goes on to the next worker under the cap, which gets a replica. Load
 *   is the exponentially decayed count of requests routed to a worker.
 * - Replicas: an adapter whose demand exceeds `replicaShare` of one worker's fair share per replica
 *   gets one more replica before its replicas reach the cap (a prefetch: the new replica warms up
 *   for `replicaWarmupS` while the others keep serving); it loses one when its demand falls below
 *   `unreplicateHysteresis` of the threshold for one replica fewer.
 * - Eviction: a worker holds at most `poolPages` of adapters; placing on a full pool evicts its
 *   least recently used adapters, never one with requests in flight.
 * - Worker join/leave: a join moves nothing (new placements and replicas find the worker on the
 *   ring); a leave re-places only the adapters that had no other replica.
 *
 * Times are seconds on the caller's clock (monotonic; an earlier time is read as the latest seen).
 */
import { HashRing } from './hash-ring.js';
import { hash32, xoshiro128, type Random } from './random.js';

export interface WorkerSpec {
  readonly id: string;
  readonly baseModel: string;
  /** Adapter pool capacity in pages (an adapter of one page each: the pool size in adapters). */
  readonly poolPages: number;
  /** Relative service capacity (requests/s, or any unit shared by the group); default 1. */
  readonly capacity?: number;
}

export interface AdapterSpec {
  readonly id: string;
  readonly baseModel: string;
  /** Pool pages the adapter occupies when resident; default 1. */
  readonly pages?: number;
}

export type DecisionKind = 'place' | 'replicate' | 'evict' | 'unreplicate';

export type DecisionReason =
  /** place: a request for an adapter with no replica. */
  | 'first-request'
  /** replicate: every replica of the adapter is at the load cap. */
  | 'load-cap'
  /** replicate: demand above the per-replica threshold, ahead of the cap. */
  | 'demand'
  /** place / replicate: asked for by `prefetch`. */
  | 'prefetch'
  /** place: the adapter's only worker left. */
  | 'failover'
  /** evict: least recently used on a pool that needed the pages. */
  | 'pool-full'
  /** unreplicate: demand fell below the hysteresis threshold. */
  | 'demand-fell'
  /** unreplicate: the worker left; nothing to tell it. */
  | 'worker-left'
  /** place / replicate: taken over from the table a previous scheduler (a lower term) wrote. */
  | 'restore';

/** One placement decision, in the order taken (`seq` from 1, gap-free). */
export interface Decision {
  readonly seq: number;
  readonly at: number;
  readonly kind: DecisionKind;
  readonly adapter: string;
  readonly worker: string;
  readonly reason: DecisionReason;
}

export interface PlacementOptions {
  /** c in the load cap ceil(c · average); > 1. Default 1.25. */
  readonly loadFactor?: number;
  /**
   * Floor of the load cap, in decayed requests: below it a worker is never "full", so a quiet
   * fleet keeps each adapter on one worker instead of spreading it (with 2 requests over 16
   * workers, ceil(c · average) is 1). Default 16.
   */
  readonly loadFloor?: number;
  /** Ring points per worker. Default 128. */
  readonly virtualNodes?: number;
  /** Half-life of a worker's load counter, seconds: short, so the cap tracks the current rate. Default 10. */
  readonly loadHalfLifeS?: number;
  /** Half-life of an adapter's demand counter, seconds: longer, so replicas follow trends, not noise. Default 15. */
  readonly demandHalfLifeS?: number;
  /** A replica is added when demand > replicas × replicaShare × one worker's share. Default 0.0625. */
  readonly replicaShare?: number;
  /** A replica is dropped when demand < (replicas − 1) × replicaShare × share × this. Default 0.5. */
  readonly unreplicateHysteresis?: number;
  /** Demand (decayed requests, demand half-life) below which no demand replica is added. Default 8. */
  readonly replicaMinRequests?: number;
  /** Expected seconds for a worker to load an adapter; a younger replica is used only if needed. */
  readonly replicaWarmupS?: number;
  /** Workers probed for free pool pages before evicting near the adapter's home. Default 16. */
  readonly probeLimit?: number;
  /**
   * When every ready replica is at the cap, serve the request from the least loaded one anyway
   * (up to `loadFactor` × the cap) while a new replica warms (true), or send it to the new
   * replica at once (false: a strict cap, but that request waits for a load). Default true; no
   * effect when `replicaWarmupS` is 0.
   */
  readonly holdWhileWarming?: boolean;
  /** Seed of the replica sampling for adapters with many replicas. Default 0. */
  readonly seed?: number;
  /** Receives every decision synchronously, in order. Default: kept for `takeDecisions`. */
  readonly onDecision?: (decision: Decision) => void;
}

export type PlacementErrorCode = 'UNKNOWN_ADAPTER' | 'UNKNOWN_WORKER' | 'DUPLICATE' | 'NO_WORKER' | 'INVALID';

export class PlacementError extends Error {
  override readonly name = 'PlacementError';
  constructor(
    readonly code: PlacementErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface Group {
  readonly baseModel: string;
  readonly ring: HashRing;
  /** Σ load scores of its live workers (on the load `DecayClock`). */
  loadScore: number;
  capacitySum: number;
  workers: number;
}

interface WorkerState {
  readonly slot: number;
  readonly id: string;
  readonly group: Group;
  readonly poolPages: number;
  readonly capacity: number;
  usedPages: number;
  /** Pages of replicas with requests in flight: never evicted. */
  pinnedPages: number;
  loadScore: number;
  alive: boolean;
  /** LRU list sentinel: `lru.next` is the least recently used replica, `lru.prev` the most. */
  readonly lru: Replica;
  /** The same replicas by adapter. */
  readonly held: Map<AdapterState, Replica>;
}

interface AdapterState {
  readonly id: string;
  readonly baseModel: string;
  readonly pages: number;
  readonly hash: number;
  demandScore: number;
  /** In placement order: the first is the oldest. */
  readonly replicas: Replica[];
}

interface Replica {
  readonly adapter: AdapterState | null;
  readonly worker: WorkerState | null;
  readyAt: number;
  inFlight: number;
  prev: Replica;
  next: Replica;
}

/** Up to this many replicas, `route` compares them all; beyond, it samples two. */
const SCAN_ALL_REPLICAS = 64;

/** Rescale counters before exp() leaves the comfortable range of a double. */
const RESCALE_AT = 1e12;

/**
 * Time base of exponentially decayed counters. A counter is kept as Σ exp((t_i − t0)/τ), so that
 * counters on one clock compare without decaying each one; its value at `now` is score / scale.
 */
class DecayClock {
  readonly tau: number;
  #t0 = 0;
  /** exp((now − t0)/τ) at the last `advance`. */
  scale = 1;

  constructor(halfLifeS: number) {
    if (!(halfLifeS > 0)) throw new PlacementError('INVALID', `half-life must be > 0, got ${halfLifeS}`);
    this.tau = halfLifeS / Math.LN2;
  }

  /** Moves to `now`; returns the factor every counter on this clock must be multiplied by (1: none). */
  advance(now: number): number {
    const scale = Math.exp((now - this.#t0) / this.tau);
    if (scale <= RESCALE_AT) {
      this.scale = scale;
      return 1;
    }
    this.#t0 = now;
    this.scale = 1;
    return 1 / scale;
  }

  /** exp((now − t0)/τ) without moving. */
  at(now: number): number {
    return Math.exp((now - this.#t0) / this.tau);
  }
}

export class Placement {
  readonly #loadFactor: number;
  readonly #loadFloor: number;
  readonly #virtualNodes: number;
  readonly #load: DecayClock;
  readonly #demand: DecayClock;
  readonly #replicaShare: number;
  readonly #hysteresis: number;
  readonly #replicaMin: number;
  readonly #warmup: number;
  readonly #probeLimit: number;
  readonly #holdWhileWarming: boolean;
  readonly #emit: (decision: Decision) => void;
  readonly #pending: Decision[] = [];

  readonly #groups = new Map<string, Group>();
  readonly #workers = new Map<string, WorkerState>();
  readonly #slots: WorkerState[] = [];
  readonly #adapters = new Map<string, AdapterState>();
  /** Adapters with two replicas or more: the only ones `tick` needs to look at. */
  readonly #replicated = new Set<AdapterState>();

  #seq = 0;
  #now = -Infinity;

  // Per-decision scratch read by the walk predicates (no closure per call).
  #candidate: AdapterState | null = null;
  /** `#holding[slot] === #holdingStamp`: the worker holds the candidate adapter. */
  #holding = new Uint32Array(64);
  #holdingStamp = 0;
  /** Replica sampling for hot adapters; seeded, so decisions stay a function of the inputs. */
  readonly #random: Random;
  #capBase = 0;
  readonly #acceptFree = (slot: number): boolean => this.#eligible(slot, false);
  readonly #acceptEvicting = (slot: number): boolean => this.#eligible(slot, true);

  constructor(options: PlacementOptions = {}) {
    this.#loadFactor = options.loadFactor ?? 1.25;
    this.#loadFloor = options.loadFloor ?? 16;
    this.#virtualNodes = options.virtualNodes ?? 128;
    this.#load = new DecayClock(options.loadHalfLifeS ?? 10);
    this.#demand = new DecayClock(options.demandHalfLifeS ?? 15);
    this.#replicaShare = options.replicaShare ?? 0.0625;
    this.#hysteresis = options.unreplicateHysteresis ?? 0.5;
    this.#replicaMin = options.replicaMinRequests ?? 8;
    this.#warmup = options.replicaWarmupS ?? 0;
    this.#probeLimit = options.probeLimit ?? 16;
    this.#holdWhileWarming = options.holdWhileWarming ?? true;
    this.#random = xoshiro128(options.seed ?? 0);
    if (!(this.#loadFactor > 1))
      throw new PlacementError('INVALID', `loadFactor must be > 1, got ${this.#loadFactor}`);
    if (!(this.#replicaShare > 0)) throw new PlacementError('INVALID', 'replicaShare must be > 0');
    if (!(this.#hysteresis > 0 && this.#hysteresis < 1)) {
      throw new PlacementError('INVALID', 'unreplicateHysteresis must be in (0, 1)');
    }
    const pending = this.#pending;
    this.#emit = options.onDecision ?? ((d) => void pending.push(d));
  }

  // ---------------------------------------------------------------- registry

  addWorker(spec: WorkerSpec): void {
    if (this.#workers.get(spec.id)?.alive)
      throw new PlacementError('DUPLICATE', `worker ${spec.id} is already registered`);
    if (!(spec.poolPages >= 0))
      throw new PlacementError('INVALID', `worker ${spec.id}: poolPages must be ≥ 0`);
    const capacity = spec.capacity ?? 1;
    if (!(capacity > 0)) throw new PlacementError('INVALID', `worker ${spec.id}: capacity must be > 0`);
    const group = this.#group(spec.baseModel);
    const lru = { adapter: null, worker: null, readyAt: 0, inFlight: 0 } as unknown as Replica;
    lru.prev = lru;
    lru.next = lru;
    const worker: WorkerState = {
      slot: this.#slots.length,
      id: spec.id,
      group,
      poolPages: spec.poolPages,
      capacity,
      usedPages: 0,
      pinnedPages: 0,
      loadScore: 0,
      alive: true,
      lru,
      held: new Map(),
    };
    this.#slots.push(worker);
    if (this.#holding.length < this.#slots.length) {
      const holding = new Uint32Array(this.#holding.length * 2);
      holding.set(this.#holding);
      this.#holding = holding;
    }
    this.#workers.set(spec.id, worker);
    group.capacitySum += capacity;
    group.workers += 1;
    group.ring.add(worker.slot, spec.id);
  }

  /**
   * The worker is gone (deregistered or its heartbeat expired): its replicas are dropped
   * (`unreplicate`, reason `worker-left`) and each adapter left without a replica is placed
   * again by walking the ring (`place`, reason `failover`), most recently used first. No other
   * placement moves.
   */
  removeWorker(workerId: string, now: number): void {
    const worker = this.#workers.get(workerId);
    if (!worker?.alive) throw new PlacementError('UNKNOWN_WORKER', `worker ${workerId} is not registered`);
    this.#advance(now);
    worker.alive = false;
    const group = worker.group;
    group.ring.remove(worker.slot);
    group.loadScore -= worker.loadScore;
    group.capacitySum -= worker.capacity;
    group.workers -= 1;
    worker.loadScore = 0;
    const orphans: AdapterState[] = [];
    for (let r = worker.lru.prev; r !== worker.lru; r = r.prev) {
      const adapter = r.adapter!;
      this.#detach(r);
      this.#record('unreplicate', adapter, worker, 'worker-left');
      if (adapter.replicas.length === 0) orphans.push(adapter);
    }
    if (group.workers === 0) return;
    for (const adapter of orphans) this.#addReplica(adapter, 'failover');
  }

  addAdapter(spec: AdapterSpec): void {
    if (this.#adapters.has(spec.id))
      throw new PlacementError('DUPLICATE', `adapter ${spec.id} is already registered`);
    const pages = spec.pages ?? 1;
    if (!(Number.isInteger(pages) && pages > 0))
      throw new PlacementError('INVALID', `adapter ${spec.id}: pages must be a positive integer`);
    this.#adapters.set(spec.id, {
      id: spec.id,
      baseModel: spec.baseModel,
      pages,
      hash: hash32(spec.id),
      demandScore: 0,
      replicas: [],
    });
  }

  // ---------------------------------------------------------------- demand and requests

  /** `count` requests for the adapter at `now` (the demand signal; `route` does not count). */
  observe(adapterId: string, now: number, count = 1): void {
    const adapter = this.#adapter(adapterId);
    this.#advance(now);
    adapter.demandScore += count * this.#demand.scale;
  }

  /**
   * A request for the adapter arrives: the least loaded replica under the load cap serves it.
   * With none under the cap (or none at all), the ring walk from the adapter's hash picks the
   * first worker under the cap, preferring one with free pool pages within `probeLimit` workers,
   * and the adapter is placed there. Counts the request in the worker's load and marks it in
   * flight until `complete`. Returns the worker id.
   */
  route(adapterId: string, now: number): string {
    const adapter = this.#adapter(adapterId);
    this.#advance(now);
    const group = this.#groups.get(adapter.baseModel);
    if (group === undefined || group.workers === 0) {
      throw new PlacementError(
        'NO_WORKER',
        `no worker serves base model ${adapter.baseModel} (adapter ${adapterId})`,
      );
    }
    const scale = this.#load.scale;
    this.#capBase = (this.#loadFactor * (group.loadScore / scale + 1)) / group.capacitySum;

    // The least loaded replica, ready ones first; a warming one only when no ready one is under the cap.
    let ready: Replica | null = null;
    let readyLoad = Infinity;
    let warming: Replica | null = null;
    let warmingLoad = Infinity;
    const replicas = adapter.replicas;
    const n = replicas.length;
    let chosen: Replica | null = null;
    if (n > SCAN_ALL_REPLICAS) {
      // Many replicas (a hot adapter): the less loaded of two random ready ones ("power of two
      // choices"), which balances nearly as well as a scan at O(1); a full scan if it is at the cap.
      for (let k = 0; k < 2; k += 1) {
        const r = replicas[this.#random.below(n)]!;
        const load = r.worker!.loadScore / r.worker!.capacity;
        if (r.readyAt <= this.#now && load < readyLoad) {
          ready = r;
          readyLoad = load;
        }
      }
      if (ready !== null && this.#underCap(ready.worker!)) chosen = ready;
      ready = null;
      readyLoad = Infinity;
    }
    if (chosen === null) {
      for (let i = 0; i < n; i += 1) {
        const r = replicas[i]!;
        const w = r.worker!;
        const load = w.loadScore / w.capacity;
        if (r.readyAt <= this.#now) {
          if (load < readyLoad) {
            ready = r;
            readyLoad = load;
          }
        } else if (load < warmingLoad) {
          warming = r;
          warmingLoad = load;
        }
      }
      if (ready !== null && this.#underCap(ready.worker!)) chosen = ready;
      else if (
        ready !== null &&
        this.#holdWhileWarming &&
        this.#warmup > 0 &&
        this.#underCap(ready.worker!, this.#loadFactor)
      ) {
        // Every ready replica is at the cap: a new replica takes the overflow once it has
        // loaded, and this request stays on the least loaded holder (a hit; the holder may go up
        // to c × the cap during the warm-up) instead of waiting for a load.
        if (warming === null || !this.#underCap(warming.worker!)) this.#addReplica(adapter, 'load-cap');
        chosen = ready;
      } else if (warming !== null && this.#underCap(warming.worker!)) chosen = warming;
      else chosen = this.#addReplica(adapter, n === 0 ? 'first-request' : 'load-cap');
    }
    // Every worker at the cap or unable to take the adapter (pools pinned): serve from the least
    // loaded replica anyway rather than fail the request.
    chosen ??= ready ?? warming ?? this.#forcePlace(adapter);

    const worker = chosen.worker!;
    worker.loadScore += scale;
    group.loadScore += scale;
    if (chosen.inFlight === 0) worker.pinnedPages += adapter.pages;
    chosen.inFlight += 1;
    this.#touch(chosen);

    // After the request is pinned, so that a demand replica's eviction cannot take its replica.
    this.#maybeResize(adapter, chosen);
    return worker.id;
  }

  /**
   * A request for the adapter was served by `workerId`: the gateway routed it from the published
   * table, and the scheduler learns of it afterwards (from its inference event). Counts it in the
   * adapter's demand and the worker's load where it really ran, marks the replica recently used,
   * then adjusts the replica set as `route` would: a replica more when every replica is at the
   * load cap (or a first one when it has none), else the demand rule with its hysteresis.
   */
  served(adapterId: string, workerId: string, now: number): void {
    const adapter = this.#adapter(adapterId);
    this.#advance(now);
    adapter.demandScore += this.#demand.scale;
    const group = this.#groups.get(adapter.baseModel);
    if (group === undefined || group.workers === 0) return;
    const worker = this.#workers.get(workerId);
    if (worker?.alive === true && worker.group === group) {
      worker.loadScore += this.#load.scale;
      group.loadScore += this.#load.scale;
      const replica = worker.held.get(adapter);
      if (replica !== undefined) this.#touch(replica);
    }
    this.#capBase = (this.#loadFactor * (group.loadScore / this.#load.scale + 1)) / group.capacitySum;
    if (adapter.replicas.length === 0) {
      this.#addReplica(adapter, 'first-request');
      return;
    }
    if (!adapter.replicas.some((r) => this.#underCap(r.worker!))) {
      this.#addReplica(adapter, 'load-cap');
      return;
    }
    this.#maybeResize(adapter, null);
  }

  /**
   * Takes over a placement a previous scheduler published: the adapter gets a replica on each
   * listed live worker of its base model that does not hold it yet (decisions `place` /
   * `replicate`, reason `restore`, so the new term re-stamps the entry). Unknown or dead
   * workers are skipped; an adapter left with none is placed on first demand as usual.
   */
  adopt(spec: AdapterSpec, workerIds: readonly string[], now: number): void {
    if (!this.#adapters.has(spec.id)) this.addAdapter(spec);
    const adapter = this.#adapter(spec.id);
    this.#advance(now);
    for (const id of workerIds) {
      const worker = this.#workers.get(id);
      if (worker?.alive !== true || worker.group.baseModel !== adapter.baseModel) continue;
      if (worker.held.has(adapter) || worker.poolPages - worker.pinnedPages < adapter.pages) continue;
      this.#attach(adapter, worker, 'restore');
    }
  }

  /** Whether the adapter is registered. */
  hasAdapter(adapterId: string): boolean {
    return this.#adapters.has(adapterId);
  }

  /** A request routed to `workerId` finished (or failed): its adapter may be evicted again. */
  complete(adapterId: string, workerId: string): void {
    const adapter = this.#adapters.get(adapterId);
    const r = adapter && this.#workers.get(workerId)?.held.get(adapter);
    if (r === undefined || r.inFlight === 0) return;
    r.inFlight -= 1;
    if (r.inFlight === 0) r.worker!.pinnedPages -= r.adapter!.pages;
  }

  /**
   * Demand is expected (a scheduled job, a tenant's warm-up): make sure the adapter has at least
   * `replicas` replicas now, before its traffic arrives.
   */
  prefetch(adapterId: string, now: number, replicas = 1): void {
    const adapter = this.#adapter(adapterId);
    this.#advance(now);
    const group = this.#groups.get(adapter.baseModel);
    if (group === undefined || group.workers === 0) return;
    this.#capBase = (this.#loadFactor * (group.loadScore / this.#load.scale + 1)) / group.capacitySum;
    while (adapter.replicas.length < Math.min(replicas, group.workers)) {
      if (this.#addReplica(adapter, 'prefetch') === null) return;
    }
  }

  /** Periodic upkeep (about once a second): drops replicas of adapters whose demand fell. */
  tick(now: number): void {
    this.#advance(now);
    for (const adapter of this.#replicated) this.#maybeResize(adapter, null, false);
  }

  // ---------------------------------------------------------------- reading the table

  /** Decisions kept since the last call (only without an `onDecision` sink). */
  takeDecisions(): Decision[] {
    return this.#pending.splice(0, this.#pending.length);
  }

  /** Worker ids holding the adapter, oldest placement first. */
  replicasOf(adapterId: string): string[] {
    return this.#adapter(adapterId).replicas.map((r) => r.worker!.id);
  }

  /** Adapter ids resident on the worker, least recently used first. */
  residents(workerId: string): string[] {
    const worker = this.#workers.get(workerId);
    if (worker === undefined || !worker.alive) return [];
    const ids: string[] = [];
    for (let r = worker.lru.next; r !== worker.lru; r = r.next) ids.push(r.adapter!.id);
    return ids;
  }

  /** The worker's load at `now`: decayed requests routed to it (≈ rate × half-life / ln 2). */
  load(workerId: string, now: number): number {
    const worker = this.#workers.get(workerId);
    if (worker === undefined || !worker.alive) return 0;
    return worker.loadScore / this.#load.at(Math.max(now, this.#now));
  }

  /** The worker's load cap at `now`: max(ceil(c · capacity share · total load), floor), as `route` applies it. */
  loadCap(workerId: string, now: number): number {
    const worker = this.#workers.get(workerId);
    if (worker === undefined || !worker.alive) return 0;
    const total = worker.group.loadScore / this.#load.at(Math.max(now, this.#now));
    return Math.max(
      Math.ceil((this.#loadFactor * total * worker.capacity) / worker.group.capacitySum),
      this.#loadFloor,
    );
  }

  /** The adapter's demand at `now`: decayed requests observed. */
  demand(adapterId: string, now: number): number {
    const adapter = this.#adapter(adapterId);
    return adapter.demandScore / this.#demand.at(Math.max(now, this.#now));
  }

  workerIds(): string[] {
    return [...this.#workers.values()].filter((w) => w.alive).map((w) => w.id);
  }

  // ---------------------------------------------------------------- internals

  #adapter(adapterId: string): AdapterState {
    const adapter = this.#adapters.get(adapterId);
    if (adapter === undefined)
      throw new PlacementError('UNKNOWN_ADAPTER', `adapter ${adapterId} is not registered`);
    return adapter;
  }

  #group(baseModel: string): Group {
    let group = this.#groups.get(baseModel);
    if (group === undefined) {
      group = { baseModel, ring: new HashRing(this.#virtualNodes), loadScore: 0, capacitySum: 0, workers: 0 };
      this.#groups.set(baseModel, group);
    }
    return group;
  }

  /** Moves the clock, rescaling every counter of a clock whose scale grew too large. */
  #advance(now: number): void {
    if (now <= this.#now) return; // same instant (observe then route) or earlier: scales are current
    this.#now = now;
    const loadFactor = this.#load.advance(this.#now);
    if (loadFactor !== 1) {
      for (const w of this.#slots) w.loadScore *= loadFactor;
      for (const g of this.#groups.values()) g.loadScore *= loadFactor;
    }
    const demandFactor = this.#demand.advance(this.#now);
    if (demandFactor !== 1) for (const a of this.#adapters.values()) a.demandScore *= demandFactor;
  }

  /** Load after one more request within max(ceil(c · capacity share · (total + 1)), floor). */
  #underCap(worker: WorkerState, slack = 1): boolean {
    const cap = Math.max(Math.ceil(this.#capBase * worker.capacity), this.#loadFloor);
    return worker.loadScore / this.#load.scale + 1 <= cap * slack;
  }

  #eligible(slot: number, evicting: boolean): boolean {
    const worker = this.#slots[slot]!;
    const adapter = this.#candidate!;
    if (!worker.alive || !this.#underCap(worker)) return false;
    const room = evicting ? worker.poolPages - worker.pinnedPages : worker.poolPages - worker.usedPages;
    return room >= adapter.pages && this.#holding[slot] !== this.#holdingStamp;
  }

  /** Walks the ring for a new replica of `adapter`; null when every worker refuses. */
  #addReplica(adapter: AdapterState, reason: DecisionReason): Replica | null {
    const group = this.#groups.get(adapter.baseModel)!;
    this.#candidate = adapter;
    this.#markHolders(adapter);
    let slot = group.ring.walk(adapter.hash, this.#acceptFree, this.#probeLimit);
    if (slot < 0) slot = group.ring.walk(adapter.hash, this.#acceptEvicting);
    this.#candidate = null;
    if (slot < 0) return null;
    return this.#attach(adapter, this.#slots[slot]!, reason);
  }

  #markHolders(adapter: AdapterState): void {
    this.#holdingStamp = (this.#holdingStamp + 1) >>> 0;
    if (this.#holdingStamp === 0) {
      this.#holding.fill(0);
      this.#holdingStamp = 1;
    }
    for (const r of adapter.replicas) this.#holding[r.worker!.slot] = this.#holdingStamp;
  }

  /** Last resort when no worker is under the cap: the adapter's ring owner, evicting what it must. */
  #forcePlace(adapter: AdapterState): Replica {
    const group = this.#groups.get(adapter.baseModel)!;
    this.#candidate = adapter;
    const slot = group.ring.walk(adapter.hash, (s) => {
      const w = this.#slots[s]!;
      return w.alive && w.poolPages - w.pinnedPages >= adapter.pages && !w.held.has(adapter);
    });
    this.#candidate = null;
    if (slot < 0) {
      throw new PlacementError(
        'NO_WORKER',
        `no ${adapter.baseModel} worker has ${adapter.pages} unpinned pages for ${adapter.id}`,
      );
    }
    return this.#attach(
      adapter,
      this.#slots[slot]!,
      adapter.replicas.length === 0 ? 'first-request' : 'load-cap',
    );
  }

  #attach(adapter: AdapterState, worker: WorkerState, reason: DecisionReason): Replica {
    // Evict least recently used, unpinned adapters until the new one fits.
    let r = worker.lru.next;
    while (worker.poolPages - worker.usedPages < adapter.pages && r !== worker.lru) {
      const next = r.next;
      if (r.inFlight === 0) {
        const evicted = r.adapter!;
        this.#detach(r);
        this.#record('evict', evicted, worker, 'pool-full');
      }
      r = next;
    }
    const first = adapter.replicas.length === 0;
    const replica: Replica = {
      adapter,
      worker,
      readyAt: first ? this.#now : this.#now + this.#warmup,
      inFlight: 0,
      prev: worker.lru.prev,
      next: worker.lru,
    };
    worker.lru.prev.next = replica;
    worker.lru.prev = replica;
    worker.usedPages += adapter.pages;
    worker.held.set(adapter, replica);
    adapter.replicas.push(replica);
    if (adapter.replicas.length === 2) this.#replicated.add(adapter);
    const kind: DecisionKind = first ? 'place' : 'replicate';
    this.#record(kind, adapter, worker, reason);
    return replica;
  }

  #detach(replica: Replica): void {
    const adapter = replica.adapter!;
    const worker = replica.worker!;
    replica.prev.next = replica.next;
    replica.next.prev = replica.prev;
    worker.usedPages -= adapter.pages;
    worker.held.delete(adapter);
    if (replica.inFlight > 0) worker.pinnedPages -= adapter.pages;
    replica.inFlight = 0;
    const replicas = adapter.replicas;
    replicas.splice(replicas.indexOf(replica), 1);
    if (replicas.length === 1) this.#replicated.delete(adapter);
  }

  #touch(replica: Replica): void {
    const lru = replica.worker!.lru;
    if (lru.prev === replica) return;
    replica.prev.next = replica.next;
    replica.next.prev = replica.prev;
    replica.prev = lru.prev;
    replica.next = lru;
    lru.prev.next = replica;
    lru.prev = replica;
  }

  /**
   * Demand-driven replica count with hysteresis: one more replica when the adapter's demand rate
   * exceeds n × replicaShare × (one worker's share of the group's load rate), one fewer when it
   * falls below (n − 1) × replicaShare × hysteresis × that and another replica's worker is at
   * most averagely loaded. At most one change per call; `keep`
   * (the replica serving the current request) is never the one dropped.
   */
  #maybeResize(adapter: AdapterState, keep: Replica | null, mayGrow = true): void {
    const group = this.#groups.get(adapter.baseModel)!;
    if (group.workers === 0) return;
    const n = adapter.replicas.length;
    const demandRate = adapter.demandScore / this.#demand.scale / this.#demand.tau;
    const perReplica =
      (this.#replicaShare * group.loadScore) / this.#load.scale / this.#load.tau / group.workers;
    if (
      mayGrow &&
      n < group.workers &&
      demandRate > n * perReplica &&
      adapter.demandScore > this.#replicaMin * this.#demand.scale
    ) {
      this.#capBase = (this.#loadFactor * (group.loadScore / this.#load.scale + 1)) / group.capacitySum;
      this.#addReplica(adapter, 'demand');
      return;
    }
    if (n >= 2 && demandRate < (n - 1) * perReplica * this.#hysteresis) {
      // Drop the replica on the most loaded worker: the remaining ones absorb its traffic.
      let drop: Replica | null = null;
      for (const r of adapter.replicas) {
        if (r === keep) continue;
        if (
          drop === null ||
          r.worker!.loadScore / r.worker!.capacity > drop.worker!.loadScore / drop.worker!.capacity
        )
          drop = r;
      }
      // Only when another replica sits on a worker at or below the average load: a replica added
      // because the others were at the cap stays while they still are (no load-cap churn).
      const average = group.loadScore / group.capacitySum;
      if (!adapter.replicas.some((r) => r !== drop && r.worker!.loadScore / r.worker!.capacity <= average))
        return;
      const worker = drop!.worker!;
      this.#detach(drop!);
      this.#record('unreplicate', adapter, worker, 'demand-fell');
    }
  }

  #record(kind: DecisionKind, adapter: AdapterState, worker: WorkerState, reason: DecisionReason): void {
    this.#seq += 1;
    this.#emit({ seq: this.#seq, at: this.#now, kind, adapter: adapter.id, worker: worker.id, reason });
  }
}
