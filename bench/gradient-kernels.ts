import * as tf from "@tensorflow/tfjs";
import { loadGraph } from "../src/graph/load-model";
import { forward } from "../src/graph/forward";
import { asTensor, registerFastBatchNormGradient, registerWasmGradientKernels } from "../src/train/wasm-gradient-kernels";
import { EXAMPLE_MODEL } from "../test/fixtures/models";
import { compareMs } from "./timing";

/**
 * The convolution gradient kernels qdebug registers on the wasm backend
 * (src/train/wasm-gradient-kernels.ts) against their first version, kept here
 * only for comparison: one strided-slice term per kernel tap. Both run as the
 * registered kernel, swapped in turn (A, B, A, B, ...) in the same process, so
 * the ratios new/old are what matter; absolute times are for context.
 */

type Pad = "same" | "valid";
interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
}
const pairOf = (v: number | [number, number]): [number, number] => (typeof v === "number" ? [v, v] : v);

// ---- the first version (commit f64dcb1), unchanged apart from names ----

function padBefore(inSize: number, outSize: number, k: number, s: number, pad: Pad): number {
  if (pad === "valid") return 0;
  return Math.floor(Math.max((outSize - 1) * s + k - inSize, 0) / 2);
}

function padInput(x: tf.Tensor4D, oh: number, ow: number, kh: number, kw: number, s: [number, number], pad: Pad): tf.Tensor4D {
  const [, h, w] = x.shape;
  const top = padBefore(h, oh, kh, s[0], pad);
  const left = padBefore(w, ow, kw, s[1], pad);
  const bottom = Math.max((oh - 1) * s[0] + kh - h - top, 0);
  const right = Math.max((ow - 1) * s[1] + kw - w - left, 0);
  return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
}

function tap(xp: tf.Tensor4D, i: number, j: number, oh: number, ow: number, s: [number, number]): tf.Tensor4D {
  const [n, , , c] = xp.shape;
  return tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * s[0] + 1, j + (ow - 1) * s[1] + 1, c], [1, s[0], s[1], 1]) as tf.Tensor4D;
}

function oldConv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  const stride = pairOf(a.strides);
  const [kh, kw, cin, cout] = filterShape;
  const [, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const xp = padInput(x, oh, ow, kh, kw, stride, a.pad);
    const dy2 = tf.reshape(dy, [-1, cout]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(tf.matMul(tf.reshape(tap(xp, i, j, oh, ow, stride), [-1, cin]), dy2, true, false));
    return tf.reshape(tf.stack(taps), [kh, kw, cin, cout]);
  });
}

function oldDepthwiseFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs): tf.Tensor {
  const stride = pairOf(a.strides);
  const [kh, kw, cin, mult] = filterShape;
  const [n, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const xp = padInput(x, oh, ow, kh, kw, stride, a.pad);
    const dyc = tf.reshape(dy, [n, oh, ow, cin, mult]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) taps.push(tf.sum(tf.mul(tf.expandDims(tap(xp, i, j, oh, ow, stride), 4), dyc), [0, 1, 2]));
    }
    return tf.reshape(tf.stack(taps), [kh, kw, cin, mult]);
  });
}

function oldDepthwiseInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, inShape: number[], a: ConvAttrs): tf.Tensor {
  const stride = pairOf(a.strides);
  const [n, h, w, cin] = inShape;
  const [kh, kw, , mult] = filter.shape;
  const [, oh, ow] = dy.shape;
  return tf.tidy(() => {
    const top = padBefore(h, oh, kh, stride[0], a.pad);
    const left = padBefore(w, ow, kw, stride[1], a.pad);
    const hp = Math.max(h + top, (oh - 1) * stride[0] + kh);
    const wp = Math.max(w + left, (ow - 1) * stride[1] + kw);
    let spread: tf.Tensor = tf.reshape(dy, [n, oh, 1, ow, 1, cin * mult]);
    spread = tf.pad(spread, [[0, 0], [0, 0], [0, stride[0] - 1], [0, 0], [0, stride[1] - 1], [0, 0]]);
    spread = tf.reshape(spread, [n, oh * stride[0], ow * stride[1], cin, mult]);
    spread = tf.slice(spread, [0, 0, 0, 0, 0], [n, (oh - 1) * stride[0] + 1, (ow - 1) * stride[1] + 1, cin, mult]);
    const gh = (oh - 1) * stride[0] + 1;
    const gw = (ow - 1) * stride[1] + 1;
    let acc: tf.Tensor = tf.zeros([n, hp, wp, cin]);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const weight = tf.reshape(tf.slice(filter, [i, j, 0, 0], [1, 1, cin, mult]), [cin, mult]);
        const term = tf.sum(tf.mul(spread, weight), 4);
        acc = tf.add(acc, tf.pad(term, [[0, 0], [i, hp - i - gh], [j, wp - j - gw], [0, 0]]));
      }
    }
    return tf.slice(acc, [0, top, left, 0], [n, h, w, cin]);
  });
}

function oldAsWasmOutput(backend: unknown, compute: () => tf.Tensor): tf.TensorInfo {
  const result = tf.tidy(compute);
  const wasm = backend as unknown as { makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
  const out = wasm.makeOutput(result.shape, "float32");
  wasm.typedArrayFromHeap(out).set(result.dataSync() as Float32Array);
  result.dispose();
  return out;
}


const KERNELS = ["Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput"] as const;
type KernelName = (typeof KERNELS)[number];

const OLD: Record<KernelName, tf.KernelFunc> = {
  Conv2DBackpropFilter: ({ inputs, attrs, backend }) =>
    oldAsWasmOutput(backend, () => oldConv2dFilterGrad(asTensor<tf.Rank.R4>(inputs.x as tf.TensorInfo), asTensor<tf.Rank.R4>(inputs.dy as tf.TensorInfo), attrs!.filterShape as number[], attrs as unknown as ConvAttrs)),
  DepthwiseConv2dNativeBackpropFilter: ({ inputs, attrs, backend }) =>
    oldAsWasmOutput(backend, () => oldDepthwiseFilterGrad(asTensor<tf.Rank.R4>(inputs.x as tf.TensorInfo), asTensor<tf.Rank.R4>(inputs.dy as tf.TensorInfo), attrs!.filterShape as number[], attrs as unknown as ConvAttrs)),
  DepthwiseConv2dNativeBackpropInput: ({ inputs, attrs, backend }) =>
    oldAsWasmOutput(backend, () => oldDepthwiseInputGrad(asTensor<tf.Rank.R4>(inputs.dy as tf.TensorInfo), asTensor<tf.Rank.R4>(inputs.filter as tf.TensorInfo), attrs!.inputShape as number[], attrs as unknown as ConvAttrs)),
};

// ---- swapping the registered kernels ----

let current: "old" | "new" = "new";
let NEW: Record<KernelName, tf.KernelFunc> | undefined;

function useKernels(which: "old" | "new"): void {
  if (which === current) return;
  for (const name of KERNELS) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: (which === "old" ? OLD : NEW!)[name] });
  }
  current = which;
}

export interface KernelTiming {
  what: string;
  oldMs: number;
  newMs: number;
  /** new / old (below 1: faster). */
  ratio: number;
  /** Largest |new - old| relative to the largest |old|. */
  relDiff: number;
}

export interface GradientKernelsBench {
  kernels: KernelTiming[];
  /** One forward + backward (all weights) of the example model, batch 32, under each set of kernels. */
  step: KernelTiming;
}

/** Times `run` under the old and the new kernels alternately; `run` returns the result, read back and disposed here. */
async function compare(what: string, run: () => tf.Tensor | tf.Tensor[], runs: number): Promise<KernelTiming> {
  const under = (which: "old" | "new") => {
    useKernels(which);
    return tf.tidy(() => {
      const out = run();
      const list = Array.isArray(out) ? out : [out];
      return tf.concat(list.map((t) => tf.reshape(t, [-1])));
    });
  };
  const oldOut = under("old");
  const newOut = under("new");
  const relDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(newOut, oldOut))).dataSync()[0] / tf.max(tf.abs(oldOut)).dataSync()[0]);
  tf.dispose([oldOut, newOut]);
  const timed = (which: "old" | "new") => async () => {
    useKernels(which);
    const out = run();
    const list = Array.isArray(out) ? out : [out];
    list.forEach((t) => t.dataSync());
    tf.dispose(list);
  };
  const [oldMs, newMs] = await compareMs(timed("old"), timed("new"), runs, 1);
  return { what, oldMs, newMs, ratio: newMs / oldMs, relDiff };
}

/** The three kernels on the example model's shapes (batch 32), then one training step of it. */
export async function benchGradientKernels(runs = 5): Promise<GradientKernelsBench | undefined> {
  if (tf.getBackend() !== "wasm") return undefined;
  registerWasmGradientKernels();
  registerFastBatchNormGradient();
  NEW = Object.fromEntries(KERNELS.map((k) => [k, tf.getKernel(k, "wasm")!.kernelFunc])) as Record<KernelName, tf.KernelFunc>;
  current = "new";
  const kernels: KernelTiming[] = [];
  const held: tf.Tensor[] = [];
  const rand = (shape: number[], seed: number) => {
    const t = tf.randomNormal(shape, 0, 1, "float32", seed);
    held.push(t);
    return t;
  };
  try {
    const depthwise: [number[], number, Pad][] = [
      [[32, 14, 14, 64], 2, "same"],
      [[32, 14, 14, 48], 1, "same"],
      [[32, 7, 7, 96], 1, "same"],
    ];
    for (const [xs, s, pad] of depthwise) {
      const x = rand(xs, 1) as tf.Tensor4D;
      const k = rand([3, 3, xs[3], 1], 2) as tf.Tensor4D;
      const oh = Math.ceil(xs[1] / s);
      const dy = rand([xs[0], oh, oh, xs[3]], 3) as tf.Tensor4D;
      const attrs = { strides: [s, s], pad, dilations: [1, 1] };
      const tag = `[${xs.join(",")}] 3x3 stride ${s} ${pad}`;
      kernels.push(await compare(`depthwise input grad ${tag}`, () => tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy, filter: k }, { ...attrs, inputShape: xs }) as tf.Tensor, runs));
      kernels.push(await compare(`depthwise filter grad ${tag}`, () => tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, { ...attrs, filterShape: k.shape }) as tf.Tensor, runs));
    }
    const convs: [number[], number, number, number][] = [
      [[32, 28, 28, 1], 3, 16, 2],
      [[32, 14, 14, 16], 1, 48, 1],
      [[32, 7, 7, 96], 1, 24, 1],
    ];
    for (const [xs, kk, cout, s] of convs) {
      const x = rand(xs, 4) as tf.Tensor4D;
      const oh = Math.ceil(xs[1] / s);
      const dy = rand([xs[0], oh, oh, cout], 5) as tf.Tensor4D;
      const attrs = { strides: [s, s], pad: "same", dataFormat: "NHWC", dilations: [1, 1], filterShape: [kk, kk, xs[3], cout] };
      kernels.push(await compare(`conv filter grad [${xs.join(",")}] ${kk}x${kk} -> ${cout} stride ${s} same`, () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs) as tf.Tensor, runs));
    }

    // A training step of the example model: forward with every float weight a variable, backward to all of them.
    const graph = await loadGraph(EXAMPLE_MODEL);
    const vars = new Map<string, Record<string, tf.Variable>>();
    for (const node of graph.nodes) {
      const p: Record<string, tf.Variable> = {};
      for (const [k, t] of Object.entries(node.params)) if (!k.startsWith("moving_")) p[k] = tf.variable(t, true, `${node.name}/${k}`);
      if (Object.keys(p).length) vars.set(node.name, p);
    }
    const params = new Map(graph.nodes.map((n) => [n.name, { ...n.params, ...(vars.get(n.name) ?? {}) }]));
    const images = rand([32, 28, 28, 1], 6);
    const target = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 10), "int32"), 10).toFloat());
    held.push(target);
    const variables = [...vars.values()].flatMap((p) => Object.values(p));
    try {
      const step = await compare("training step, example model (mnist-mbv2), batch 32", () => {
        const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(forward(graph, images, { params })[0], target))) as tf.Scalar, variables);
        return [value, ...Object.values(grads)];
      }, runs);
      return { kernels, step };
    } finally {
      tf.dispose(variables);
      graph.dispose();
    }
  } finally {
    useKernels("new");
    tf.dispose(held);
  }
}

/** The report lines `npm run bench` prints. */
export function gradientKernelsReport(b: GradientKernelsBench | undefined): string {
  if (!b) return "wasm gradient kernels: skipped (the backend is not wasm)";
  const line = (t: KernelTiming) => `  ${t.what}: new/old kernel time ${t.newMs.toFixed(2)} ms / ${t.oldMs.toFixed(2)} ms = ${t.ratio.toFixed(3)} (max rel. diff ${t.relDiff.toExponential(1)})`;
  return ["wasm gradient kernels (new/old in the same run):", ...b.kernels.map(line), line(b.step)].join("\n");
}

/** Benchmark and report in one call (what bench/run.ts prints). */
export async function gradientKernelsSummary(runs = 5): Promise<string> {
  return gradientKernelsReport(await benchGradientKernels(runs));
}

if (require.main === module) {
  (async () => {
    const { useBackend } = await import("../src/backend");
    await useBackend("wasm");
    console.log(await gradientKernelsSummary());
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
