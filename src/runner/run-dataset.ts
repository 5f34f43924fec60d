import * as tf from "@tensorflow/tfjs";
import { checkedBatches } from "../data/validate";
import { Batch, Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forward, ForwardOptions } from "./forward";

export interface RunDatasetOptions extends ForwardOptions {
  /**
   * Receives each batch's outputs (in `outputs` order) with the batch itself.
   * Both are disposed after it returns: copy out what you need.
   */
  onBatch?: (outputs: tf.Tensor[], batch: Batch, index: number) => void | Promise<void>;
  onProgress?: ProgressFn;
  /** Progress label. */
  task?: string;
}

export interface RunSummary {
  batches: number;
  examples: number;
  elapsedMs: number;
}

/**
 * Runs the graph over a dataset, batch by batch: each batch is validated
 * against the graph's inputs (shape, dtype, NaN), run, handed to `onBatch`,
 * then freed. An empty dataset is an error.
 */
export async function runDataset(graph: Graph, data: Dataset, options: RunDatasetOptions = {}): Promise<RunSummary> {
  const start = Date.now();
  let batches = 0;
  let examples = 0;
  for await (const batch of checkedBatches(data, graph.inputSpecs)) {
    let outputs: tf.Tensor[] = [];
    try {
      outputs = forward(graph, batch.inputs, options);
      await options.onBatch?.(outputs, batch, batches);
    } finally {
      tf.dispose(outputs);
      tf.dispose(batch.inputs);
      batch.labels?.dispose();
    }
    batches += 1;
    examples += batch.inputs[0].shape[0];
    options.onProgress?.({
      task: options.task ?? "forward",
      done: examples,
      total: data.size,
      unit: "examples",
      elapsedMs: Date.now() - start,
    });
  }
  return { batches, examples, elapsedMs: Date.now() - start };
}
