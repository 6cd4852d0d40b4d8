import { describe, expect, it } from 'vitest';

import { HashRing } from './hash-ring.js';
import { hash32 } from './random.js';

const keys = Array.from({ length: 10_000 }, (_, i) => hash32(`adapter-${i}`));

function ring(workers: number[], virtualNodes = 128): HashRing {
  const r = new HashRing(virtualNodes);
  for (const w of workers) r.add(w, `worker-${w}`);
  return r;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('HashRing', () => {
  it('given the same workers added in any order, then every key has the same owner', () => {
    const forward = ring(range(64));
    const backward = ring(range(64).reverse());
    expect(keys.map((k) => backward.owner(k))).toEqual(keys.map((k) => forward.owner(k)));
  });

  it('given 64 workers, when a 65th joins, then about 1/65 of the keys move, all of them to it', () => {
    const before = ring(range(64));
    const after = ring(range(65));
    const moved = keys.filter((k) => before.owner(k) !== after.owner(k));
    expect(moved.length / keys.length).toBeGreaterThan(0.5 / 65);
    expect(moved.length / keys.length).toBeLessThan(2 / 65);
    expect(new Set(moved.map((k) => after.owner(k)))).toEqual(new Set([64]));
  });

  it('given 64 workers, when one leaves, then only its keys move', () => {
    const full = ring(range(64));
    const less = ring(range(64));
    less.remove(17);
    const expected = keys.map((k) => (full.owner(k) === 17 ? 'moved' : full.owner(k)));
    expect(keys.map((k) => (full.owner(k) === 17 && less.owner(k) !== 17 ? 'moved' : less.owner(k)))).toEqual(
      expected,
    );
    expect(expected.filter((o) => o === 'moved').length).toBeGreaterThan(0);
  });

  it('given a key, when walking, then distinct workers come in ring order, starting with its owner', () => {
    const r = ring(range(8), 16);
    const visited: number[] = [];
    expect(r.walk(keys[0]!, (m) => (visited.push(m), false))).toBe(-1);
    expect(visited[0]).toBe(r.owner(keys[0]!));
    expect([...visited].sort((x, y) => x - y)).toEqual(range(8));
    expect(r.walk(keys[0]!, (m) => m === visited[3])).toBe(visited[3]);
    const limited: number[] = [];
    expect(r.walk(keys[0]!, (m) => (limited.push(m), false), 3)).toBe(-1);
    expect(limited).toEqual(visited.slice(0, 3));
  });

  it('given 128 virtual nodes, then no worker owns more than 1.5× its fair share of the keys', () => {
    const r = ring(range(64));
    const counts = new Array<number>(64).fill(0);
    for (const k of keys) counts[r.owner(k)]! += 1;
    expect(Math.max(...counts)).toBeLessThan(1.5 * (keys.length / 64));
  });
});
