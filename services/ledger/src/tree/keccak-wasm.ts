/**
 * keccak-f[1600] as a tiny WebAssembly module, assembled here at load time (no binary blob to
 * trust): one exported function `permute(ptr)` that loads the 25 lanes at `ptr` in the module's
 * memory, runs the 24 rounds fully unrolled on 64-bit locals (native i64 rotates, which is what
 * makes it several times faster than 32-bit-halves JavaScript), and stores them back. Lanes are
 * little-endian, as Keccak and WebAssembly both define them. `keccak.unit.spec.ts` checks the
 * hashes built on it against viem's keccak256.
 */

/** Rotation offsets r[x][y] and round constants, derived as in FIPS 202 rather than typed in. */
function keccakConstants(): { rotation: number[][]; roundConstants: bigint[] } {
  const rotation = Array.from({ length: 5 }, () => new Array<number>(5).fill(0));
  let x = 1;
  let y = 0;
  for (let t = 0; t < 24; t++) {
    rotation[x]![y] = (((t + 1) * (t + 2)) / 2) % 64;
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
  const roundConstants: bigint[] = [];
  let r = 1;
  const bit = (): number => {
    const out = r & 1;
    r = r & 0x80 ? ((r << 1) ^ 0x71) & 0xff : (r << 1) & 0xff;
    return out;
  };
  for (let i = 0; i < 24; i++) {
    let c = 0n;
    for (let j = 0; j < 7; j++) if (bit()) c |= 1n << BigInt((1 << j) - 1);
    roundConstants.push(c);
  }
  return { rotation, roundConstants };
}

const OP = {
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i64Load: 0x29,
  i64Store: 0x37,
  i64Const: 0x42,
  i64And: 0x83,
  i64Xor: 0x85,
  i64Rotl: 0x89,
} as const;

function unsigned(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function signed64(value: bigint): number[] {
  let v = BigInt.asIntN(64, value);
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...unsigned(body.length), ...body];
}

function name(text: string): number[] {
  return [...unsigned(text.length), ...[...text].map((c) => c.charCodeAt(0))];
}

/** The module's bytes. Locals: 0 = ptr (i32); 1..25 = A lanes, 26..50 = B lanes, 51..55 = C, 56 = D. */
export function keccakWasmModule(): Uint8Array {
  const { rotation, roundConstants } = keccakConstants();
  const A = (i: number) => 1 + i;
  const B = (i: number) => 26 + i;
  const C = (x: number) => 51 + x;
  const D = 56;
  const code: number[] = [];
  const get = (local: number) => code.push(OP.localGet, ...unsigned(local));
  const set = (local: number) => code.push(OP.localSet, ...unsigned(local));
  const constant = (value: bigint) => code.push(OP.i64Const, ...signed64(value));

  for (let i = 0; i < 25; i++) {
    get(0);
    code.push(OP.i64Load, 3, ...unsigned(8 * i));
    set(A(i));
  }
  for (const rc of roundConstants) {
    // θ: C[x] = ⊕ A[x, ·]; D = C[x-1] ⊕ rotl(C[x+1], 1); A[x, ·] ^= D
    for (let x = 0; x < 5; x++) {
      get(A(x));
      for (let y = 1; y < 5; y++) {
        get(A(x + 5 * y));
        code.push(OP.i64Xor);
      }
      set(C(x));
    }
    for (let x = 0; x < 5; x++) {
      get(C((x + 4) % 5));
      get(C((x + 1) % 5));
      constant(1n);
      code.push(OP.i64Rotl, OP.i64Xor);
      set(D);
      for (let y = 0; y < 5; y++) {
        get(A(x + 5 * y));
        get(D);
        code.push(OP.i64Xor);
        set(A(x + 5 * y));
      }
    }
    // ρ and π: B[y, 2x+3y] = rotl(A[x, y], r[x][y])
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) {
        get(A(x + 5 * y));
        const r = rotation[x]![y]!;
        if (r !== 0) {
          constant(BigInt(r));
          code.push(OP.i64Rotl);
        }
        set(B(y + 5 * ((2 * x + 3 * y) % 5)));
      }
    }
    // χ: A[x, y] = B[x, y] ⊕ (¬B[x+1, y] ∧ B[x+2, y])
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 5; x++) {
        get(B(x + 5 * y));
        get(B(((x + 1) % 5) + 5 * y));
        constant(-1n);
        code.push(OP.i64Xor);
        get(B(((x + 2) % 5) + 5 * y));
        code.push(OP.i64And, OP.i64Xor);
        set(A(x + 5 * y));
      }
    }
    // ι
    get(A(0));
    constant(rc);
    code.push(OP.i64Xor);
    set(A(0));
  }
  for (let i = 0; i < 25; i++) {
    get(0);
    get(A(i));
    code.push(OP.i64Store, 3, ...unsigned(8 * i));
  }
  code.push(OP.end);

  const I32 = 0x7f;
  const I64 = 0x7e;
  const body = [1, ...unsigned(56), I64, ...code]; // one local group: 56 × i64
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
    ...section(1, [1, 0x60, 1, I32, 0]), // type 0: (i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0x00, 1]), // one memory, min 1 page (64 KiB), no max
    ...section(7, [2, ...name('permute'), 0x00, 0, ...name('memory'), 0x02, 0]),
    ...section(10, [1, ...unsigned(body.length), ...body]),
  ]);
}

/** The slice of the WebAssembly JS API used here (the project compiles without the DOM lib). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}

export interface KeccakWasm {
  /** Permutes the 25 lanes (200 bytes) at byte offset `ptr` of `memory`. */
  permute(ptr: number): void;
  /** The module's memory (one 64 KiB page; never grows, so views on it stay valid). */
  readonly memory: { readonly buffer: ArrayBuffer };
}

export function instantiateKeccakWasm(): KeccakWasm {
  const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
  const instance = new api.Instance(new api.Module(keccakWasmModule()));
  const exports = instance.exports as unknown as KeccakWasm;
  return { permute: exports.permute, memory: exports.memory };
}
