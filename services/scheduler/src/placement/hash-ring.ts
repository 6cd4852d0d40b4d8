/**
 * A consistent-hash ring over workers: each worker owns `virtualNodes` points at
 * hash32(`${workerId}#${i}`), a key belongs to the first point clockwise from hash32(key). Adding
 * or removing a worker moves only the keys whose first point changes (≈ 1/W of them). `walk`
 * visits distinct workers in ring order from a key's position, which is what bounded-load
 * placement (Mirrokni, Thorup, Zadimoghaddam 2018) needs: the first worker that accepts wins.
 *
 * Members are small integers (the caller's worker slots) so that a walk allocates nothing.
 */
import { hash32 } from './random.js';

export class HashRing {
  readonly virtualNodes: number;
  #points = new Uint32Array(0); // [P] ring positions, ascending
  #owners = new Int32Array(0); // [P] member of each point
  readonly #members = new Map<number, string>(); // member → worker id hashed for its points
  #seen = new Uint32Array(0); // [max member + 1] walk stamp per member
  #stamp = 0;

  constructor(virtualNodes = 128) {
    if (!Number.isInteger(virtualNodes) || virtualNodes < 1) {
      throw new RangeError(`HashRing: virtualNodes must be a positive integer, got ${virtualNodes}`);
    }
    this.virtualNodes = virtualNodes;
  }

  get size(): number {
    return this.#members.size;
  }

  has(member: number): boolean {
    return this.#members.has(member);
  }

  add(member: number, workerId: string): void {
    if (this.#members.has(member)) return;
    this.#members.set(member, workerId);
    // The new member's points, sorted, merged into the ring: O(P + V log V), no full re-sort.
    const fresh = Array.from({ length: this.virtualNodes }, (_, i) => hash32(`${workerId}#${i}`)).sort(
      (x, y) => x - y,
    );
    const n = this.#points.length;
    const points = new Uint32Array(n + fresh.length);
    const owners = new Int32Array(n + fresh.length);
    let i = 0;
    let k = 0;
    for (let out = 0; out < points.length; out += 1) {
      // Ties (two points on one position) break by member so the ring is a function of its members.
      const takeOld =
        k >= fresh.length ||
        (i < n &&
          (this.#points[i]! < fresh[k]! || (this.#points[i]! === fresh[k]! && this.#owners[i]! < member)));
      if (takeOld) {
        points[out] = this.#points[i]!;
        owners[out] = this.#owners[i]!;
        i += 1;
      } else {
        points[out] = fresh[k]!;
        owners[out] = member;
        k += 1;
      }
    }
    this.#points = points;
    this.#owners = owners;
    if (this.#seen.length <= member) {
      const seen = new Uint32Array(Math.max(member + 1, this.#seen.length * 2));
      seen.set(this.#seen);
      this.#seen = seen;
    }
  }

  remove(member: number): void {
    if (!this.#members.delete(member)) return;
    let kept = 0;
    for (let p = 0; p < this.#owners.length; p += 1) if (this.#owners[p] !== member) kept += 1;
    const points = new Uint32Array(kept);
    const owners = new Int32Array(kept);
    for (let p = 0, out = 0; p < this.#owners.length; p += 1) {
      if (this.#owners[p] === member) continue;
      points[out] = this.#points[p]!;
      owners[out] = this.#owners[p]!;
      out += 1;
    }
    this.#points = points;
    this.#owners = owners;
  }

  /** The member owning `keyHash` (first point clockwise), or -1 on an empty ring. */
  owner(keyHash: number): number {
    const n = this.#points.length;
    if (n === 0) return -1;
    return this.#owners[this.#start(keyHash >>> 0)]!;
  }

  /**
   * Visits distinct members clockwise from `keyHash` and returns the first one `accept` takes,
   * or -1 when none does (or `limit` distinct members were refused).
   */
  walk(keyHash: number, accept: (member: number) => boolean, limit = Infinity): number {
    const n = this.#points.length;
    if (n === 0) return -1;
    const stamp = this.#nextStamp();
    const seen = this.#seen;
    let visited = 0;
    for (let step = 0, p = this.#start(keyHash >>> 0); step < n; step += 1, p = p + 1 === n ? 0 : p + 1) {
      const member = this.#owners[p]!;
      if (seen[member] === stamp) continue;
      seen[member] = stamp;
      if (accept(member)) return member;
      visited += 1;
      if (visited >= limit || visited >= this.#members.size) return -1;
    }
    return -1;
  }

  #start(keyHash: number): number {
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < keyHash) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }

  #nextStamp(): number {
    this.#stamp = (this.#stamp + 1) >>> 0;
    if (this.#stamp === 0) {
      this.#seen.fill(0);
      this.#stamp = 1;
    }
    return this.#stamp;
  }
}
