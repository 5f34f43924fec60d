import * as os from "os";
import * as tf from "@tensorflow/tfjs";
import { Graph } from "../../graph/graph";

/**
 * The memory the ONNX engine may use for activations: QDEBUG_MEMORY (bytes, or
 * with a unit: "1.5GB", "800MB"), else a quarter of free memory between 512 MB and 2 GB.
 */
export function memoryBudget(): number {
  const v = process.env.QDEBUG_MEMORY;
  if (v !== undefined && v !== "") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(v);
    if (!m) throw new Error(`QDEBUG_MEMORY must be a size such as 1.5GB or 800MB, got ${JSON.stringify(v)}`);
    const unit = { b: 1, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 }[(m[2] ?? "b").toLowerCase() as "b"];
    return Number(m[1]) * unit;
  }
  return Math.min(2 * 2 ** 30, Math.max(512 * 2 ** 20, os.freemem() / 4));
}

/** Bytes of every node's output for one example (open sizes taken from the batch): what a run may hold at once. */
export function bytesPerExample(graph: Graph, sample: readonly tf.Tensor[]): number {
  const open = (axis: number) => sample[0]?.shape[axis] ?? 32;
  return 4 * graph.nodes.reduce((sum, n) => sum + n.outputShape.slice(1).reduce<number>((a, d, i) => a * (d ?? open(i + 1)), 1), 0);
}

/**
 * Splits a batch into the sub-batches the engine runs at once, so that the
 * sessions' activations (a few copies of every node's output: ORT's arenas, the
 * values handed between segments, two lanes) stay within the memory budget.
 * Results do not depend on the split: every example is computed alone.
 */
export function engineChunks(graph: Graph, inputs: readonly tf.Tensor[], copies = 6): tf.Tensor[][] {
  const n = inputs[0].shape[0];
  const size = Math.max(1, Math.floor(memoryBudget() / (copies * bytesPerExample(graph, inputs))));
  if (size >= n) return [inputs as tf.Tensor[]];
  const chunks: tf.Tensor[][] = [];
  for (let start = 0; start < n; start += size) chunks.push(inputs.map((t) => tf.slice(t, start, Math.min(size, n - start))));
  return chunks;
}
