import { Dataset } from "../../data/types";
import { Graph } from "../../graph/graph";
import { ProgressFn } from "../../progress";
import { forEachBatch, RunSummary } from "../../runner/for-each-batch";
import { lowerGraph } from "./lower-graph";
import { createSession, toOrtTensor } from "./runtime";
import { engineChunks } from "./memory";
import * as tf from "@tensorflow/tfjs";

/**
 * One FP32 pass over `data` with ONNX Runtime that hands the values of the
 * listed nodes to `onValues` (flat, in the engine's layout, which statistics
 * like min, max and histograms do not depend on): calibration's pass.
 */
export async function runTaps(
  graph: Graph,
  data: Dataset,
  nodes: readonly string[],
  onValues: (node: string, values: Float32Array) => void,
  options: { task?: string; onProgress?: ProgressFn } = {},
): Promise<RunSummary> {
  const lowered = lowerGraph(graph, { outputs: [], taps: nodes.map((node) => ({ node })) });
  const session = await createSession(lowered.bytes);
  try {
    return await forEachBatch(graph, data, { task: options.task ?? "forward", onProgress: options.onProgress }, async (batch) => {
      // Every tapped value is returned at once: sub-batches keep that within the memory budget, and each value
      // small enough to reuse freed heap blocks.
      const chunks = engineChunks(graph, batch.inputs, 3, { returnsValues: true });
      try {
        for (const inputs of chunks) {
          const feeds: Record<string, ReturnType<typeof toOrtTensor>> = {};
          for (const input of lowered.inputs) {
            if (input.kind !== "model") continue;
            feeds[input.onnx] = toOrtTensor(inputs[graph.inputs.indexOf(input.node)]);
          }
          const results = await session.run(feeds);
          for (const o of lowered.outputs) onValues(o.node, results[o.onnx].data as Float32Array);
        }
      } finally {
        if (chunks.length > 1) chunks.forEach((c) => tf.dispose(c));
      }
    });
  } finally {
    await session.release();
  }
}
