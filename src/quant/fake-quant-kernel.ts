import * as tf from "@tensorflow/tfjs";
import { simdFakeQuant, WasmMemory } from "./fake-quant-simd";

/**
 * Our own tfjs kernel, "QdebugFakeQuant": quantize-dequantize in one pass over
 * the data, registered for the wasm and cpu backends, with a straight-through
 * gradient. The only backend internals touched are the narrow interfaces
 * below (checked against tfjs-backend-wasm / -cpu 4.22).
 *
 * Every path computes, in float32, what the composed tfjs ops compute and what
 * AIMET's torch quantizer computes in float32:
 *   r = round_half_even(fl32(x / scale)); out = fl32(clamp(r, lo, hi) * scale)
 * with scale = fl32(delta), lo = fl32(offset), hi = fl32(offset + numSteps).
 * Clamping in grid units [offset, offset + numSteps] equals AIMET's
 * clamp(r - offset, 0, numSteps) + offset for integers; the bounds are exact in
 * float32 up to 24 bits (wider quantizers clamp at float32-rounded bounds, as
 * tf.clipByValue and torch.clamp on float32 do).
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
 * FPU's default mode, ties to even: the rule of tf.round, in two additions
 * (Math.round rounds ties up and would need a fix-up). Exact for |v| < 2^51;
 * larger quotients are far outside any grid and get clipped anyway.
 */
const ROUND_MAGIC = 6755399441055744;

/** The per-channel values every path uses, rounded to float32 once. */
interface Params {
  channels: number;
  inner: number;
  scales: Float64Array;
  los: Float64Array;
  his: Float64Array;
}

function paramsOf(a: FakeQuantAttrs): Params {
  const f32 = (vs: number[]) => Float64Array.from(Float32Array.from(vs));
  return {
    channels: a.scales.length,
    inner: a.scales.length === 1 ? 1 : a.inner,
    scales: f32(a.scales),
    los: f32(a.offsets),
    his: f32(a.offsets.map((o) => o + a.numSteps)),
  };
}

/** Elements per block: 64 KB of float32 stays in cache while the loop runs over it. */
const BLOCK = 1 << 14;
const block = new Float32Array(BLOCK);

/**
 * The fused pass in plain JS (cpu backend, stochastic rounding, and the few
 * per-channel layouts the SIMD loops do not cover). `first` is the flat index
 * of x[0] in the whole tensor, so a caller can hand over a tail.
 *
 * x / scale in float64 rounded to float32 is exactly float32 division (53 bits
 * >= 2 * 24 + 2, so the double rounding is harmless): the same bits as tf.div.
 * The data streams through a small reused block (copy in, compute in place,
 * copy out): on views of wasm memory V8's loop is ~1.6x faster on a plain
 * cached array, and moving memory with `set` runs at memcpy speed. Per-channel
 * scales and bounds are hoisted: each channel's run is a loop of constants, and
 * with the channel axis last (runs of one element) the channel index cycles.
 */
export function fakeQuantInto(x: Float32Array, out: Float32Array, a: FakeQuantAttrs, first = 0): void {
  const p = paramsOf(a);
  const n = x.length;
  const random = a.stochastic ? mulberry32(a.seed) : undefined;
  for (let start = 0; start < n; start += BLOCK) {
    const len = Math.min(BLOCK, n - start);
    const buf = len === BLOCK ? block : block.subarray(0, len);
    buf.set(len === n ? x : x.subarray(start, start + len));
    const flat = first + start;
    if (random) stochasticBlock(buf, flat, p, random);
    else if (p.channels === 1) nearestRun(buf, 0, len, p.scales[0], p.los[0], p.his[0]);
    else if (p.inner === 1) nearestCyclic(buf, flat % p.channels, p);
    else {
      for (let from = 0; from < len; ) {
        const at = flat + from;
        const c = Math.floor(at / p.inner) % p.channels;
        const to = Math.min(len, from + p.inner - (at % p.inner));
        nearestRun(buf, from, to, p.scales[c], p.los[c], p.his[c]);
        from = to;
      }
    }
    out.set(buf, start);
  }
}

function nearestRun(v: Float32Array, from: number, to: number, scale: number, lo: number, hi: number): void {
  for (let i = from; i < to; i++) {
    const r = Math.fround(v[i] / scale) + ROUND_MAGIC - ROUND_MAGIC;
    v[i] = (r < lo ? lo : r > hi ? hi : r) * scale;
  }
}

/** Channel axis last: element i of the block belongs to channel (c0 + i) mod C. */
function nearestCyclic(v: Float32Array, c0: number, p: Params): void {
  const { channels, scales, los, his } = p;
  let c = c0;
  for (let i = 0; i < v.length; i++) {
    const scale = scales[c];
    const r = Math.fround(v[i] / scale) + ROUND_MAGIC - ROUND_MAGIC;
    const lo = los[c];
    const hi = his[c];
    v[i] = (r < lo ? lo : r > hi ? hi : r) * scale;
    if (++c === channels) c = 0;
  }
}

/**
 * Stochastic rounding: floor(x / delta + u), u uniform in [0, 1) from
 * mulberry32, drawn in element order, so the result depends on the seed only and
 * E[result] = x inside the range.
 */
function stochasticBlock(v: Float32Array, flat: number, p: Params, random: () => number): void {
  const { channels, inner, scales, los, his } = p;
  let k = flat % inner;
  let c = Math.floor(flat / inner) % channels;
  for (let i = 0; i < v.length; i++) {
    const scale = scales[c];
    const r = Math.floor(Math.fround(v[i] / scale) + random());
    v[i] = (r < los[c] ? los[c] : r > his[c] ? his[c] : r) * scale;
    if (++k === inner) {
      k = 0;
      if (++c === channels) c = 0;
    }
  }
}

// --- Backend internals, narrowed to what the kernel uses. ---

interface WasmBackend {
  /** The Emscripten module; `asm.memory` is its WebAssembly.Memory. */
  wasm?: { asm?: { memory?: WasmMemory } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  disposeData(dataId: object): boolean;
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

/** Per-channel periods up to this many elements use the table-driven SIMD loop (3 float32 tables of this size). */
const MAX_PERIOD = 1 << 16;
/** Otherwise channel runs at least this long use the per-tensor SIMD loop run by run. */
const MIN_SIMD_RUN = 32;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function wasmKernel({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const wasm = backend as WasmBackend;
  const x = inputs.x as tf.TensorInfo;
  const a = attrs as unknown as FakeQuantAttrs;
  // Make every allocation before taking heap views: growing wasm memory detaches older views.
  const out = wasm.makeOutput(x.shape, "float32");
  const memory = wasm.wasm?.asm?.memory;
  const simd = memory && !a.stochastic ? simdFakeQuant(memory) : null;
  if (!simd) {
    fakeQuantInto(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(out), a);
    return out;
  }
  const p = paramsOf(a);
  const channelPeriod = p.channels * p.inner;
  // The smallest whole number of channel periods that is also whole vectors.
  const period = (channelPeriod * 4) / gcd(channelPeriod, 4);
  const n = tf.util.sizeFromShape(x.shape);
  const table = p.channels > 1 && period <= MAX_PERIOD && n >= period ? wasm.makeOutput([3 * period], "float32") : undefined;
  const input = wasm.typedArrayFromHeap(x);
  const output = wasm.typedArrayFromHeap(out);
  /** JS finishes [from, to) of one stretch. */
  const tail = (from: number, to: number) => {
    if (from < to) fakeQuantInto(input.subarray(from, to), output.subarray(from, to), a, from);
  };
  if (p.channels === 1) {
    simd.fq(input.byteOffset, output.byteOffset, n, p.scales[0], p.los[0], p.his[0]);
    tail(n - (n % 4), n);
  } else if (table) {
    try {
      const t = wasm.typedArrayFromHeap(table);
      for (let j = 0; j < period; j++) {
        const c = Math.floor(j / p.inner) % p.channels;
        t[j] = p.scales[c];
        t[period + j] = p.los[c];
        t[2 * period + j] = p.his[c];
      }
      const whole = n - (n % period);
      simd.fqt(input.byteOffset, output.byteOffset, whole, t.byteOffset, period);
      tail(whole, n);
    } finally {
      wasm.disposeData(table.dataId);
    }
  } else if (p.inner >= MIN_SIMD_RUN) {
    for (let start = 0, c = 0; start < n; start += p.inner, c = (c + 1) % p.channels) {
      const vectors = p.inner - (p.inner % 4);
      simd.fq(input.byteOffset + 4 * start, output.byteOffset + 4 * start, vectors, p.scales[c], p.los[c], p.his[c]);
      tail(start + vectors, start + p.inner);
    }
  } else {
    fakeQuantInto(input, output, a);
  }
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
 * Straight-through estimator: the gradient passes where the pre-clamp integer
 * round(x / delta) lies on the grid, [offset, offset + numSteps] (x inside
 * [min, max] give or take half a step), and is zero where the quantizer clips.
 * Stochastic rounding uses the same mask (the nearest integer decides).
 */
export function steMask(x: tf.Tensor, a: FakeQuantAttrs): tf.Tensor {
  return tf.tidy(() => {
    const { scales, los, his } = channelTensors(x.shape, a);
    const r = tf.round(tf.div(x.toFloat(), scales));
    return tf.cast(tf.logicalAnd(tf.greaterEqual(r, los), tf.lessEqual(r, his)), "float32");
  });
}

/** Scales and grid bounds as scalars (per tensor) or tensors broadcasting along the channel axis. */
export function channelTensors(shape: number[], a: FakeQuantAttrs): { scales: tf.Tensor; los: tf.Tensor; his: tf.Tensor } {
  const channelShape = shapeForChannels(shape, a.scales.length, a.inner);
  const values = (vs: number[]) => (a.scales.length === 1 ? tf.scalar(vs[0]) : tf.tensor(vs, channelShape));
  return { scales: values(a.scales), los: values(a.offsets), his: values(a.offsets.map((o) => o + a.numSteps)) };
}

/** A shape that broadcasts per-channel values against `shape` (channels at the axis whose inner size is `inner`). */
function shapeForChannels(shape: number[], channels: number, inner: number): number[] {
  if (channels === 1) return [];
  let size = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    if (size === inner && shape[axis] === channels) return shape.map((d, i) => (i === axis ? channels : 1));
    size *= shape[axis];
  }
  throw new Error(`no axis of [${shape.join(", ")}] has ${channels} channels with ${inner} elements after it`);
}
