import { checkedBatches } from "../data/validate";
import { Batch, Dataset, disposeBatch } from "../data/types";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";

export interface RunSummary {
  batches: number;
  examples: number;
  elapsedMs: number;
}

/**
 * The loop every pass over data shares: each batch is validated against the
 * graph's inputs (shape, dtype, NaN), handed to `body`, then freed, and
 * progress is reported. An empty dataset is an error.
 */
export async function forEachBatch(
  graph: Graph,
  data: Dataset,
  options: { task: string; onProgress?: ProgressFn },
  body: (batch: Batch, index: number) => void | Promise<void>,
): Promise<RunSummary> {
  const start = Date.now();
  let batches = 0;
  let examples = 0;
  for await (const batch of checkedBatches(data, graph.inputSpecs)) {
    try {
      await body(batch, batches);
    } finally {
      disposeBatch(batch);
    }
    batches += 1;
    examples += batch.inputs[0].shape[0];
    options.onProgress?.({ task: options.task, done: examples, total: data.size, unit: "examples", elapsedMs: Date.now() - start });
  }
  return { batches, examples, elapsedMs: Date.now() - start };
}
