import * as tf from "@tensorflow/tfjs";
import { Graph } from "../../graph/graph";
import { engineMemory } from "../../memory-budget";

export { engineMemory };

/** Shapes are all the size estimates read of a batch: tf tensors, or ORT tensors' dims. */
type Sample = readonly { readonly shape: readonly number[] }[];

/** Bytes of one node's output for one example (open sizes taken from the batch's first input). */
export function valueBytesPerExample(graph: Graph, node: string, sample: Sample): number {
  const open = (axis: number) => sample[0]?.shape[axis] ?? 32;
  return 4 * graph.node(node).outputShape.slice(1).reduce<number>((a, d, i) => a * (d ?? open(i + 1)), 1);
}

/** Bytes of every node's output for one example: what a run may hold at once. */
export function bytesPerExample(graph: Graph, sample: Sample): number {
  return graph.nodes.reduce((sum, n) => sum + valueBytesPerExample(graph, n.name, sample), 0);
}

/**
 * Returned values at most this large can come from glibc's heap, whose pages
 * are reused (its mmap threshold rises to at most 32 MB as large blocks are
 * freed); larger ones are mapped, and page-faulted, afresh on every run: about
 * 250 MB/s on these virtual machines.
 */
export const HEAP_BLOCK_BYTES = 24 * 2 ** 20;

/**
 * Splits a batch into the sub-batches the engine runs at once, so that the
 * sessions' activations (a few copies of every node's output: ORT's arenas, the
 * values handed between segments) stay within the memory budget; with
 * `returnsValues`, also so that every node's value for a sub-batch fits in
 * HEAP_BLOCK_BYTES (runs that hand every activation back, as calibration's).
 * Results do not depend on the split: every example is computed alone.
 */
export function engineChunks(graph: Graph, inputs: readonly tf.Tensor[], copies = 6, options: { returnsValues?: boolean } = {}): tf.Tensor[][] {
  const n = inputs[0].shape[0];
  let size = Math.max(1, Math.floor(engineMemory() / (copies * bytesPerExample(graph, inputs))));
  if (options.returnsValues) {
    const largest = Math.max(...graph.nodes.map((node) => valueBytesPerExample(graph, node.name, inputs)));
    size = Math.min(size, Math.max(1, Math.floor(HEAP_BLOCK_BYTES / largest)));
  }
  if (size >= n) return [inputs as tf.Tensor[]];
  const chunks: tf.Tensor[][] = [];
  for (let start = 0; start < n; start += size) chunks.push(inputs.map((t) => tf.slice(t, start, Math.min(size, n - start))));
  return chunks;
}
