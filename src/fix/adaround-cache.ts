import * as tf from "@tensorflow/tfjs";
import { count } from "./fix-result";
import { takeExamples } from "../data/take";
import { Dataset } from "../data/types";
import { GraphNode, Params } from "../graph/types";
import { forward } from "../graph/forward";
import { forEachBatch } from "../runner/for-each-batch";
import { mulberry32 } from "../quant/fake-quant-kernel";
import { QuantSim } from "../quant/quantsim";
import { ResolvedAdaroundOptions } from "./adaround-options";
import { layerOutput } from "./adaround-layer-output";

/** The inputs and FP32 targets cached per layer, the minibatch sampler and the reconstruction error. */

/** One layer's cached inputs and targets, as host arrays (examples along the first axis). */
interface LayerData {
  x: Float32Array;
  y: Float32Array;
  /** Shapes of one example. */
  xShape: number[];
  yShape: number[];
  examples: number;
}

/**
 * Caches the layer's inputs (from `inputSim`) and FP32 targets for up to
 * `examples` examples, within the memory bound. Host arrays rather than tensors:
 * drawing a batch is then a plain copy, and the backend's memory stays free.
 */
export async function cacheLayerData(inputSim: QuantSim, node: GraphNode, targetName: string, data: Dataset, o: ResolvedAdaroundOptions): Promise<LayerData> {
  const xs: Float32Array[] = [];
  const ys: Float32Array[] = [];
  let xShape: number[] = [];
  let yShape: number[] = [];
  let limit = o.examples;
  let cached = 0;
  await forEachBatch(inputSim.graph, takeExamples(data, o.examples), { task: "adaround: caching" }, (batch) => {
    if (cached >= limit) return;
    const [x] = inputSim.forward(batch.inputs, { outputs: [node.inputs[0]] });
    const [y] = forward(inputSim.graph, batch.inputs, { outputs: [targetName] });
    try {
      const n = x.shape[0];
      if (cached === 0) {
        [xShape, yShape] = [x.shape.slice(1), y.shape.slice(1)];
        const bytesPerExample = (4 * (x.size + y.size)) / n;
        limit = Math.min(limit, Math.floor((o.maxCacheMB * 2 ** 20) / bytesPerExample));
        if (limit < 1) throw new Error(`one example's layer input and output take ${(bytesPerExample / 2 ** 20).toFixed(1)} MB, more than maxCacheMB (${o.maxCacheMB})`);
      }
      const keep = Math.min(n, limit - cached);
      xs.push((x.dataSync() as Float32Array).subarray(0, (keep * x.size) / n));
      ys.push((y.dataSync() as Float32Array).subarray(0, (keep * y.size) / n));
      cached += keep;
    } finally {
      tf.dispose([x, y]);
    }
  });
  return { x: concatArrays(xs), y: concatArrays(ys), xShape, yShape, examples: cached };
}

function concatArrays(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Examples `rows` of a cached array as one tensor [rows.length, ...shape]. */
export function rowsTensor(all: Float32Array, shape: number[], rows: ArrayLike<number>): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows.length * size);
  for (let k = 0; k < rows.length; k++) out.set(all.subarray(rows[k] * size, (rows[k] + 1) * size), k * size);
  return tf.tensor(out, [rows.length, ...shape]);
}

/** MSE per output value over all cached examples, in chunks. */
export function reconstructionError(node: GraphNode, after: GraphNode | undefined, params: Params, d: LayerData): number {
  const chunk = 128;
  let sum = 0;
  let count = 0;
  for (let s = 0; s < d.examples; s += chunk) {
    const rows = Array.from({ length: Math.min(chunk, d.examples - s) }, (_, i) => s + i);
    sum += tf.tidy(() => {
      const out = layerOutput(node, after, params, rowsTensor(d.x, d.xShape, rows));
      count += out.size;
      return tf.sum(tf.squaredDifference(out, rowsTensor(d.y, d.yShape, rows))).dataSync()[0];
    });
  }
  return sum / count;
}

/** A seeded draw of `k` distinct indices out of `n` per call (partial Fisher–Yates over a persistent permutation). */
export function batchSampler(n: number, k: number, seed: number): () => Int32Array {
  const random = mulberry32(seed);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const size = Math.min(k, n);
  return () => {
    for (let i = 0; i < size; i++) {
      const j = i + Math.floor(random() * (n - i));
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    return perm.slice(0, size);
  };
}
