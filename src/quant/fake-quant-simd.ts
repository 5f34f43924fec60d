/**
 * The per-tensor fake-quant loop as a tiny WebAssembly SIMD function that works
 * in place on the tfjs wasm backend's own memory: four floats per instruction,
 * no copies. It computes exactly what the composed tfjs ops compute, in float32:
 *   out = min(max(nearest(x * inv), lo), hi) * scale
 * where f32x4.nearest rounds half to even, like tf.round. Hand-assembled (the
 * whole module is below, ~150 bytes) so no toolchain is needed to build it.
 */

// Opcodes used below (WebAssembly core and SIMD proposals).
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const SIMD = 0xfd;
const V128_LOAD = [SIMD, 0x00, 0x00, 0x00]; // align 0, offset 0
const V128_STORE = [SIMD, 0x0b, 0x00, 0x00];
const F32X4_SPLAT = [SIMD, 0x13];
const F32X4_NEAREST = [SIMD, 0x6a];
const F32X4_MUL = [SIMD, 0xe6, 0x01];
const F32X4_MIN = [SIMD, 0xe8, 0x01];
const F32X4_MAX = [SIMD, 0xe9, 0x01];

// fq(in: i32, out: i32, n: i32, inv: f32, scale: f32, lo: f32, hi: f32): byte offsets, n floats (multiple of 4 done).
const IN = 0, OUT = 1, N = 2, INV = 3, SCALE = 4, LO = 5, HI = 6;
const I = 7, VINV = 8, VSCALE = 9, VLO = 10, VHI = 11;

const body = [
  0x02, 0x01, 0x7f, 0x04, 0x7b, // locals: 1 x i32, 4 x v128
  LOCAL_GET, INV, ...F32X4_SPLAT, LOCAL_SET, VINV,
  LOCAL_GET, SCALE, ...F32X4_SPLAT, LOCAL_SET, VSCALE,
  LOCAL_GET, LO, ...F32X4_SPLAT, LOCAL_SET, VLO,
  LOCAL_GET, HI, ...F32X4_SPLAT, LOCAL_SET, VHI,
  // n := (n & ~3) * 4, the byte length of the whole vectors
  LOCAL_GET, N, 0x41, 0x7c, 0x71, 0x41, 0x02, 0x74, LOCAL_SET, N,
  0x02, 0x40, // block
  0x03, 0x40, // loop
  LOCAL_GET, I, LOCAL_GET, N, 0x4f, 0x0d, 0x01, // if i >= n: break
  LOCAL_GET, OUT, LOCAL_GET, I, 0x6a, // address out + i
  LOCAL_GET, IN, LOCAL_GET, I, 0x6a, ...V128_LOAD,
  LOCAL_GET, VINV, ...F32X4_MUL,
  ...F32X4_NEAREST,
  LOCAL_GET, VLO, ...F32X4_MAX,
  LOCAL_GET, VHI, ...F32X4_MIN,
  LOCAL_GET, VSCALE, ...F32X4_MUL,
  ...V128_STORE,
  LOCAL_GET, I, 0x41, 0x10, 0x6a, LOCAL_SET, I, // i += 16
  0x0c, 0x00, // continue
  0x0b, // end loop
  0x0b, // end block
  0x0b, // end function
];

function section(id: number, bytes: number[]): number[] {
  return [id, ...uleb(bytes.length), ...bytes];
}

function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [0x01, 0x60, 0x07, 0x7f, 0x7f, 0x7f, 0x7d, 0x7d, 0x7d, 0x7d, 0x00]),
  ...section(2, [0x01, ...name("env"), ...name("memory"), 0x02, 0x00, 0x01]),
  ...section(3, [0x01, 0x00]),
  ...section(7, [0x01, ...name("fq"), 0x00, 0x00]),
  ...section(10, [0x01, ...uleb(body.length), ...body]),
]);

/** The few WebAssembly JS API members used (its types live in TypeScript's DOM lib, which Node projects leave out). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export type SimdFakeQuant = (inPtr: number, outPtr: number, n: number, inv: number, scale: number, lo: number, hi: number) => void;

const cache = new WeakMap<WasmMemory, SimdFakeQuant | null>();

/** The SIMD function bound to `memory`, or null where WebAssembly SIMD is unavailable. */
export function simdFakeQuant(memory: WasmMemory): SimdFakeQuant | null {
  if (!cache.has(memory)) {
    let fn: SimdFakeQuant | null = null;
    try {
      const instance = new WASM.Instance(new WASM.Module(MODULE), { env: { memory } });
      fn = instance.exports.fq as SimdFakeQuant;
    } catch {
      fn = null;
    }
    cache.set(memory, fn);
  }
  return cache.get(memory)!;
}
