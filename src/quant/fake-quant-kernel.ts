import * as tf from "@tensorflow/tfjs";
import { simdFakeQuant, WasmMemory } from "./fake-quant-simd";

/**
 * Our own tfjs kernel, "QdebugFakeQuant": quantize-dequantize in one pass over
 * the data in plain JS, registered for the wasm and cpu backends, with a
 * straight-through gradient. The only backend internals touched are the two
 * narrow interfaces below (checked against tfjs-backend-wasm / -cpu 4.22).
 */
export const KERNEL_NAME = "QdebugFakeQuant";

export interface FakeQuantAttrs {
  /** Per channel (length 1 for per tensor). */
  scales: number[];
  offsets: number[];
  numSteps: number;
  /** Elements in one channel's contiguous run: product of the dims after the channel axis. */
  inner: number;
  /** 0 = nearest (half to even), 1 = stochastic. */
  stochastic: number;
  seed: number;
}

/** mulberry32: a tiny seeded PRNG (uniform in [0, 1)), for stochastic rounding. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Adding then subtracting 1.5 * 2^52 rounds a double to an integer with the
 * FPU's default mode, ties to even (exact for |v| < 2^51): the same rule as
 * tf.round, in two additions instead of Math.round plus a tie fix-up.
 */
const ROUND_MAGIC = 6755399441055744;

/** Elements per block: 64 KB of float32 stays in cache while the loop runs over it. */
const BLOCK = 1 << 14;
const block = new Float32Array(BLOCK);

/**
 * The fused pass. x is multiplied by the float32 reciprocal of the scale and
 * the product rounded to float32 (Math.fround): exactly what the composed ops
 * compute in float32, so both give the same bits (up to the sign of zero: -0.3
 * rounds to -0 in tf.round and to +0 here). Clamping is done in grid units
 * [offset, offset + numSteps], which equals clamp(q - offset, 0, numSteps) +
 * offset for integers.
 *
 * Speed: the data streams through a small reused block (copy in, compute in
 * place, copy out). Computing in cache and moving memory with memcpy-speed
 * `set` is ~1.6x faster in V8 than one loop reading and writing the large
 * arrays directly. Each channel's run is contiguous, so its scale and bounds
 * are loop constants; nothing is allocated per element.
 */
export function fakeQuantInto(x: Float32Array, out: Float32Array, a: FakeQuantAttrs): void {
  const n = x.length;
  const channels = a.scales.length;
  const inner = channels === 1 ? n : a.inner;
  const scales = Float64Array.from(a.scales, (v) => Math.fround(v));
  const invs = scales.map((v) => Math.fround(1 / v));
  const random = a.stochastic ? mulberry32(a.seed) : undefined;
  for (let start = 0; start < n; start += BLOCK) {
    const len = Math.min(BLOCK, n - start);
    const buf = len === BLOCK ? block : block.subarray(0, len);
    buf.set(len === n ? x : x.subarray(start, start + len));
    // Runs of one channel inside this block: [from, to) in block indices.
    for (let from = 0; from < len; ) {
      const flat = start + from;
      const c = Math.floor(flat / inner) % channels;
      const to = Math.min(len, from + inner - (flat % inner));
      const lo = a.offsets[c];
      const hi = a.numSteps + lo;
      if (random) stochasticRun(buf, from, to, invs[c], scales[c], lo, hi, random);
      else nearestRun(buf, from, to, invs[c], scales[c], lo, hi);
      from = to;
    }
    out.set(buf, start);
  }
}

// One specialised loop per rounding mode keeps V8's code monomorphic.
function nearestRun(v: Float32Array, from: number, to: number, inv: number, scale: number, lo: number, hi: number): void {
  for (let i = from; i < to; i++) {
    const r = Math.fround(v[i] * inv) + ROUND_MAGIC - ROUND_MAGIC;
    v[i] = (r < lo ? lo : r > hi ? hi : r) * scale;
  }
}

/** Stochastic rounding: floor(x / delta + u), u uniform in [0, 1), so E[result] = x inside the range. */
function stochasticRun(v: Float32Array, from: number, to: number, inv: number, scale: number, lo: number, hi: number, random: () => number): void {
  for (let i = from; i < to; i++) {
    const r = Math.floor(Math.fround(v[i] * inv) + random());
    v[i] = (r < lo ? lo : r > hi ? hi : r) * scale;
  }
}

// --- Backend internals, narrowed to what the kernel uses. ---

interface WasmBackend {
  /** The Emscripten module; `asm.memory` is its WebAssembly.Memory. */
  wasm?: { asm?: { memory?: WasmMemory } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}
interface CpuBackend {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}

function wasmKernel({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const wasm = backend as WasmBackend;
  const x = inputs.x as tf.TensorInfo;
  // Make the output first: allocating may grow wasm memory, which detaches older heap views.
  const out = wasm.makeOutput(x.shape, "float32");
  const input = wasm.typedArrayFromHeap(x);
  const output = wasm.typedArrayFromHeap(out);
  const a = attrs as unknown as FakeQuantAttrs;
  // Per tensor, nearest rounding, integer codes exact in float32 (up to 24 bits):
  // a WebAssembly SIMD loop, in place on the backend's own memory, computes the
  // same float32 operations four values at a time; JS finishes the last few.
  const memory = wasm.wasm?.asm?.memory;
  const simd = memory && a.scales.length === 1 && !a.stochastic && a.numSteps < 2 ** 24 ? simdFakeQuant(memory) : null;
  if (!simd) {
    fakeQuantInto(input, output, a);
    return out;
  }
  const scale = Math.fround(a.scales[0]);
  simd(input.byteOffset, output.byteOffset, input.length, Math.fround(1 / scale), scale, a.offsets[0], a.offsets[0] + a.numSteps);
  const done = input.length - (input.length % 4);
  if (done < input.length) fakeQuantInto(input.subarray(done), output.subarray(done), a);
  return out;
}

function cpuKernel({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const cpu = backend as CpuBackend;
  const x = inputs.x as tf.TensorInfo;
  const values = cpu.data.get(x.dataId).values;
  const out = new Float32Array(values.length);
  fakeQuantInto(values, out, attrs as unknown as FakeQuantAttrs);
  return cpu.makeTensorInfo(x.shape, "float32", out);
}

/** Backends our kernel is registered for (others use the composed ops). */
export const KERNEL_BACKENDS: readonly string[] = ["wasm", "cpu"];

let registered = false;

/** Registers the kernel and its straight-through gradient, once. */
export function registerFakeQuantKernel(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: KERNEL_NAME, backendName: "cpu", kernelFunc: cpuKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: KERNEL_NAME, backendName: "wasm", kernelFunc: wasmKernel as unknown as tf.KernelFunc });
  tf.registerGradient({
    kernelName: KERNEL_NAME,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const a = attrs as unknown as FakeQuantAttrs;
      return { x: () => tf.mul(dy as tf.Tensor, steMask(x, a)) };
    },
  });
}

/**
 * Straight-through estimator: the gradient passes where x lies inside the
 * grid's range, widened by half a step on each side (those values still round
 * onto the grid), and is zero where the quantizer clips.
 */
export function steMask(x: tf.Tensor, a: FakeQuantAttrs): tf.Tensor {
  return tf.tidy(() => {
    const shape = channelShape(x.shape, a.scales.length, a.inner);
    const lo = tf.tensor(a.scales.map((s, c) => (a.offsets[c] - 0.5) * s), shape);
    const hi = tf.tensor(a.scales.map((s, c) => (a.offsets[c] + a.numSteps + 0.5) * s), shape);
    return tf.cast(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, hi)), "float32");
  });
}

/** A shape that broadcasts per-channel values against `shape` (channels at the axis whose inner size is `inner`). */
export function channelShape(shape: number[], channels: number, inner: number): number[] {
  if (channels === 1) return [];
  let size = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    if (size === inner && shape[axis] === channels) return shape.map((d, i) => (i === axis ? channels : 1));
    size *= shape[axis];
  }
  throw new Error(`no axis of [${shape.join(", ")}] has ${channels} channels with ${inner} elements after it`);
}
