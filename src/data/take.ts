import { Batch, Dataset, disposeBatch } from "./types";

/**
 * The first `count` examples of a dataset (the last batch sliced to fit), e.g.
 * a calibration subset taken from the evaluation data.
 */
export function takeExamples(data: Dataset, count: number): Dataset {
  if (!Number.isInteger(count) || count < 1) throw new Error(`invalid example count: ${count} (expected a positive integer)`);
  return {
    name: `${data.name} (first ${count})`,
    size: data.size === undefined ? undefined : Math.min(data.size, count),
    async *batches(): AsyncGenerator<Batch> {
      let left = count;
      for await (const batch of data.batches()) {
        if (left <= 0) {
          disposeBatch(batch);
          break;
        }
        const n = batch.inputs[0].shape[0];
        if (n <= left) {
          left -= n;
          yield batch;
          continue;
        }
        const keep = left;
        left = 0;
        const sliced: Batch = {
          inputs: batch.inputs.map((t) => t.slice(0, keep)),
          labels: batch.labels?.slice(0, keep),
        };
        disposeBatch(batch);
        yield sliced;
      }
    },
  };
}
