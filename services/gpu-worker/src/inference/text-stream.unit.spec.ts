import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer, StopStringFilter, type Decoder } from './text-stream.js';

/** A byte-level vocabulary: each id is some bytes; decoding concatenates them as UTF-8. */
const bytes = (s: string) => [...Buffer.from(s, 'utf8')];
const vocab: number[][] = [
  bytes('Hel'),
  bytes('lo'),
  bytes(' '),
  ...bytes('é€😀').map((b) => [b]),
  bytes('!'),
];
const decoder: Decoder = {
  decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => vocab[id]!))),
};

const stream = (ids: number[]): string[] => {
  const d = new IncrementalDetokenizer(decoder);
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
};

describe('IncrementalDetokenizer', () => {
  it('emits text equal to a one-shot decode, never a broken character', () => {
    const ids = vocab.map((_, i) => i);
    const pieces = stream(ids);
    expect(pieces.join('')).toBe(decoder.decode(ids));
    expect(pieces.join('')).toBe('Hello é€😀!');
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    // The 4 bytes of 😀 come out as one piece, on the 4th byte.
    expect(pieces).toContain('😀');
  });

  it('flushes an incomplete character at the end as U+FFFD', () => {
    const emoji = vocab.findIndex((v) => v[0] === 0xf0);
    expect(stream([0, emoji]).join('')).toBe('Hel\uFFFD');
  });
});

describe('StopStringFilter', () => {
  const run = (stops: string[], pieces: string[]) => {
    const f = new StopStringFilter(stops);
    const out: string[] = [];
    for (const p of pieces) {
      const r = f.push(p);
      out.push(r.text);
      if (r.stopped) return { out, stopped: true };
    }
    out.push(f.flush());
    return { out, stopped: false };
  };

  it('cuts before a stop string that spans pieces, never sending part of it', () => {
    const { out, stopped } = run(['END'], ['abc E', 'N', 'D more']);
    expect(stopped).toBe(true);
    expect(out).toEqual(['abc ', '', '']);
  });

  it('releases held-back text once it cannot be a stop string, and at the end', () => {
    expect(run(['END'], ['a E', 'x', ' E'])).toEqual({ out: ['a ', 'Ex', ' ', 'E'], stopped: false });
  });

  it('picks the earliest of several stop strings', () => {
    expect(run(['yz', 'b'], ['abcxyz'])).toEqual({ out: ['a'], stopped: true });
  });

  it('passes everything through without stop strings', () => {
    expect(run([], ['a', 'b'])).toEqual({ out: ['a', 'b', ''], stopped: false });
  });
});
