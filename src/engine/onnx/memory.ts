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
  return split(inputs, Array.from({ length: Math.ceil(n / size) }, (_, k) => Math.min(size, n - k * size)));
}

/**
 * Bytes of the values alive at once for one example, at the worst point of
 * the execution order: about what a whole-model session's arena holds per
 * example (MobileNetV2: 9.3 MB by this count, 10 MB measured at batch 32).
 */
export function peakBytesPerExample(graph: Graph, sample: Sample): number {
  const lastRead = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((src) => lastRead.set(src, i)));
  const alive = new Map<string, number>();
  let live = 0;
  let peak = 0;
  graph.nodes.forEach((n, i) => {
    const bytes = valueBytesPerExample(graph, n.name, sample);
    live += bytes;
    peak = Math.max(peak, live);
    for (const src of new Set(n.inputs)) {
      if (lastRead.get(src) !== i || !alive.has(src)) continue;
      live -= alive.get(src)!;
      alive.delete(src);
    }
    if ((lastRead.get(n.name) ?? -1) > i) alive.set(n.name, bytes);
    else live -= bytes;
  });
  return peak;
}

/** Most examples a sweep's worker thread runs at once (VariantWorker.run cuts larger batches). */
export const WORKER_CHUNK = 8;

/**
 * Bytes a sweep's worker thread holds: four times the model's weights, and
 * arenas for the runs it gets. A worker opens its own sessions of every
 * segment; each holds its weights and ORT's repacked copy of them, and the
 * model bytes it was sent stay until the worker's next garbage collection
 * (InceptionV3: 85 MB of weights, +103 MB for the bytes, +233 MB for the
 * session, measured). Its runs are the pass's batches (of `sample`'s size)
 * cut to at most WORKER_CHUNK examples, and ORT keeps their arenas at about a
 * quarter of every value the graph computes per example.
 */
export function workerBytes(graph: Graph, sample: Sample): number {
  const examples = Math.min(WORKER_CHUNK, sample[0]?.shape[0] ?? WORKER_CHUNK);
  return 4 * (4 * graph.paramCount()) + (examples * bytesPerExample(graph, sample)) / 4;
}

/** Most examples sessionChunks runs at once: two threads gain little beyond, and arenas keep their largest size. */
export const SESSION_CHUNK = 8;

/**
 * Sub-batches for runs of `sessions` whole-model sessions that return only the
 * model's outputs (a few simulations scored side by side): each session's
 * arena holds about peakBytesPerExample per example, and ORT keeps it at its
 * largest run. Sizes are even and at most SESSION_CHUNK: at batch 2, a second
 * thread gains 1.4x; at batch 8, 1.8x (MobileNetV2).
 */
export function sessionChunks(graph: Graph, inputs: readonly tf.Tensor[], sessions: number): tf.Tensor[][] {
  const n = inputs[0].shape[0];
  const size = Math.max(1, Math.min(SESSION_CHUNK, Math.floor(engineMemory() / (sessions * peakBytesPerExample(graph, inputs)))));
  const count = Math.ceil(n / size);
  return split(inputs, Array.from({ length: count }, (_, k) => Math.floor(n / count) + (k < n % count ? 1 : 0)));
}

/** `inputs` cut along the batch axis into parts of `sizes` examples; one part is the inputs themselves. */
function split(inputs: readonly tf.Tensor[], sizes: readonly number[]): tf.Tensor[][] {
  if (sizes.length <= 1) return [inputs as tf.Tensor[]];
  const chunks: tf.Tensor[][] = [];
  let start = 0;
  for (const m of sizes) {
    chunks.push(inputs.map((t) => tf.slice(t, start, m)));
    start += m;
  }
  return chunks;
}
