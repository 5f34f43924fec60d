import * as tf from "@tensorflow/tfjs";

/**
 * Our own tfjs kernel, "QdebugFakeQuant": quantize-dequantize in one pass over
 * the data in plain JS (the same computation composed of tfjs ops reads and
 * writes the tensor five times). Registered for the wasm and cpu backends; the
 * only backend internals touched are here, behind `readInput`/`writeOutput`.
 */
export const KERNEL_NAME = "QdebugFakeQuant";

export interface FakeQuantAttrs {
  /** Per channel (length 1 for per tensor). */
  scales: number[];
  offsets: number[];
  numSteps: number;
  /** Elements between two consecutive channels' runs: product of the dims after the channel axis. */
  inner: number;
  /** 0 = nearest (half to even), 1 = stochastic. */
  stochastic: number;
  seed: number;
}

/** mulberry32: a tiny seeded PRNG, for stochastic rounding. */
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

/** Adding then subtracting 1.5 * 2^52 rounds a double to an integer, ties to even (exact for |v| < 2^51). */
const ROUND_MAGIC = 6755399441055744;

/**
 * The fused loop. x is multiplied by the float32 reciprocal of the scale and
 * the product rounded to float32 (Math.fround), exactly what the composed tfjs
 * ops compute, so both give the same bits; rounding is half to even, like
 * tf.round. One specialised loop per rounding mode keeps V8's code monomorphic.
 */
export function fakeQuantInto(x: Float32Array, out: Float32Array, a: FakeQuantAttrs): void {
  const channels = a.scales.length;
  const n = x.length;
  const random = a.stochastic ? mulberry32(a.seed) : undefined;
  const inner = a.inner;
  for (let start = 0, c = 0; start < n; start += inner, c = c + 1 === channels ? 0 : c + 1) {
    // One contiguous run of `inner` elements shares a channel's scale and offset.
    const scale = Math.fround(a.scales[c]);
    const inv = Math.fround(1 / scale);
    const lo = a.offsets[c]; // code 0, in grid units
    const hi = a.numSteps + lo; // code numSteps, in grid units
    const end = Math.min(n, start + inner);
    if (random) stochasticRun(x, out, start, end, inv, scale, lo, hi, random);
    else nearestRun(x, out, start, end, inv, scale, lo, hi);
  }
}

function nearestRun(x: Float32Array, out: Float32Array, start: number, end: number, inv: number, scale: number, lo: number, hi: number): void {
  for (let i = start; i < end; i++) {
    let r = Math.fround(x[i] * inv) + ROUND_MAGIC - ROUND_MAGIC;
    r = r < lo ? lo : r > hi ? hi : r;
    out[i] = r * scale;
  }
}

function stochasticRun(x: Float32Array, out: Float32Array, start: number, end: number, inv: number, scale: number, lo: number, hi: number, random: () => number): void {
  for (let i = start; i < end; i++) {
    let r = Math.floor(Math.fround(x[i] * inv) + random());
    r = r < lo ? lo : r > hi ? hi : r;
    out[i] = r * scale;
  }
}

const CHUNK = 1 << 16;
const scratch = new Float32Array(CHUNK);

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}
interface CpuBackend {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function wasmKernel({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const wasm = backend as WasmBackend;
  // Make the output first: allocating may grow wasm memory and detach older heap views.
  const out = wasm.makeOutput(x.shape, "float32");
  const input = wasm.typedArrayFromHeap(x);
  const output = wasm.typedArrayFromHeap(out);
  const a = attrs as unknown as FakeQuantAttrs;
  if (a.stochastic || a.scales.length > 1) {
    fakeQuantInto(input, output, a);
    return out;
  }
  // Per tensor: V8 runs this loop about twice as fast over ordinary typed arrays
  // as over views of wasm memory, so stream through a small reused buffer.
  for (let start = 0; start < input.length; start += CHUNK) {
    const end = Math.min(input.length, start + CHUNK);
    const chunk = scratch.subarray(0, end - start);
    chunk.set(input.subarray(start, end));
    fakeQuantInto(chunk, chunk, a);
    output.set(chunk, start);
  }
  return out;
}

function cpuKernel({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const cpu = backend as CpuBackend;
  const values = cpu.data.get(x.dataId).values;
  const out = new Float32Array(values.length);
  fakeQuantInto(values, out, attrs as unknown as FakeQuantAttrs);
  return cpu.makeTensorInfo(x.shape, "float32", out);
}

let registered = false;

/** Registers the kernel (where the backend is loaded) and its straight-through gradient, once. */
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
 * grid's range (within half a step: those values round onto the grid), and is
 * zero where the quantizer clips.
 */
export function steMask(x: tf.Tensor, a: FakeQuantAttrs): tf.Tensor {
  return tf.tidy(() => {
    const channels = a.scales.length;
    const shape = channelShape(x.shape, channels, a.inner);
    const scale = tf.tensor(a.scales, shape);
    const lo = tf.mul(tf.tensor(a.offsets.map((o) => o - 0.5), shape), scale);
    const hi = tf.mul(tf.tensor(a.offsets.map((o) => o + a.numSteps + 0.5), shape), scale);
    return tf.cast(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, hi)), "float32");
  });
}

/** A shape that broadcasts per-channel values against `shape` (channels at the axis whose inner size is `inner`). */
export function channelShape(shape: number[], channels: number, inner: number): number[] {
  if (channels === 1) return [];
  let size = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    if (size === inner) return shape.map((d, i) => (i === axis ? channels : 1));
    size *= shape[axis];
  }
  throw new Error(`no axis of [${shape.join(", ")}] has ${channels} channels with ${inner} elements after it`);
}
