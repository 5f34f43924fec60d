import * as tf from "@tensorflow/tfjs";
import { Batch, Dataset } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch, RunSummary } from "./for-each-batch";
import { forward, ForwardOptions } from "../graph/forward";

export type { RunSummary };

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

/**
 * Runs the graph over a dataset, batch by batch: each batch is validated
 * against the graph's inputs (shape, dtype, NaN), run, handed to `onBatch`,
 * then freed. An empty dataset is an error.
 */
export async function runDataset(graph: Graph, data: Dataset, options: RunDatasetOptions = {}): Promise<RunSummary> {
  return forEachBatch(graph, data, { task: options.task ?? "forward", onProgress: options.onProgress }, async (batch, index) => {
    const outputs = forward(graph, batch.inputs, options);
    try {
      await options.onBatch?.(outputs, batch, index);
    } finally {
      tf.dispose(outputs);
    }
  });
}
