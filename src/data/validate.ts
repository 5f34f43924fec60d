import * as tf from "@tensorflow/tfjs";
import { shapeText } from "../shape-text";
import { Batch, Dataset, disposeBatch, InputSpec } from "./types";

/**
 * Checks batches against a model's input specs before they reach the model, so
 * a bad batch fails with a message naming the dataset, batch, input and the
 * mismatch instead of a shape error deep inside an op.
 *
 * Casts (the only changes made): bool and int32 inputs are cast to a float32
 * input's dtype; bool inputs and float inputs whose values are all integers are
 * cast to an int32 input's dtype. The replaced tensors are disposed.
 */

export interface BatchLocation {
  dataset: string;
  batchIndex: number;
}

const NUMERIC = ["float32", "int32", "bool"];

/** The multi-index of a flat C-order index, e.g. 17 in [2, 3, 4] → [1, 1, 1]. */
function multiIndex(flat: number, shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    out[axis] = flat % shape[axis];
    flat = Math.floor(flat / shape[axis]);
  }
  return out;
}

/** Throws if `batch` does not fit `specs`; returns the batch, with inputs cast where documented above. */
export function checkBatch(batch: Batch, specs: readonly InputSpec[], where: BatchLocation): Batch {
  const at = `dataset "${where.dataset}", batch ${where.batchIndex}`;
  if (batch.inputs.length !== specs.length) {
    const names = specs.map((s) => s.name).join(", ");
    throw new Error(`${at}: expected ${specs.length} input(s) (${names}), got ${batch.inputs.length}`);
  }
  const casts: ("float32" | "int32" | undefined)[] = [];
  batch.inputs.forEach((input, i) => {
    const spec = specs[i];
    const fail = (why: string) => new Error(`${at}, input "${spec.name}": ${why}`);
    const expected = `expected shape ${shapeText(spec.shape)}, got ${shapeText(input.shape)}`;
    if (input.rank !== spec.shape.length) throw fail(`rank ${input.rank} instead of ${spec.shape.length}: ${expected}`);
    // Axis 0 is the batch: any size goes, unless the model fixed it (a graph model that reshapes to a batch of 1).
    if (spec.shape[0] !== null && input.shape[0] !== spec.shape[0]) {
      throw fail(`the model takes batches of exactly ${spec.shape[0]} (its input has shape ${shapeText(spec.shape)}), got ${input.shape[0]}: use a batch size of ${spec.shape[0]} (CLI: --batch-size ${spec.shape[0]})`);
    }
    spec.shape.forEach((d, axis) => {
      if (axis > 0 && d !== null && input.shape[axis] !== d) throw fail(`axis ${axis} is ${input.shape[axis]} instead of ${d}: ${expected}`);
    });
    if (!NUMERIC.includes(input.dtype)) throw fail(`dtype ${input.dtype} is not numeric (expected ${spec.dtype})`);
    if (input.shape[0] !== batch.inputs[0].shape[0]) {
      throw fail(`batch size ${input.shape[0]} differs from input "${specs[0].name}"'s ${batch.inputs[0].shape[0]}`);
    }
    if (input.dtype === "float32") {
      const values = input.dataSync() as Float32Array;
      let bad = 0;
      let first = -1;
      for (let k = 0; k < values.length; k++) {
        if (!Number.isFinite(values[k])) {
          if (first < 0) first = k;
          bad++;
        }
      }
      if (bad > 0) {
        throw fail(`${bad} non-finite value(s) (NaN or ±Inf); the first, ${values[first]}, is at flat index ${first} ([${multiIndex(first, input.shape).join(", ")}])`);
      }
      if (spec.dtype === "int32") {
        const k = values.findIndex((v) => !Number.isInteger(v));
        if (k >= 0) throw fail(`expected int32 values, got float32 with a fractional value ${values[k]} at flat index ${k}`);
      }
    }
    casts.push(input.dtype === spec.dtype ? undefined : spec.dtype);
  });
  if (batch.labels) {
    const n = batch.inputs[0].shape[0];
    const m = batch.labels.rank === 0 ? undefined : batch.labels.shape[0];
    if (m !== n) throw new Error(`${at}: labels have shape ${shapeText(batch.labels.shape)} but the inputs hold ${n} example(s) (labels' first dimension must match)`);
  }
  if (casts.every((c) => c === undefined)) return batch;
  const inputs = batch.inputs.map((input, i) => {
    const dtype = casts[i];
    if (dtype === undefined) return input;
    const cast = tf.cast(input, dtype);
    input.dispose();
    return cast;
  });
  return batch.labels ? { inputs, labels: batch.labels } : { inputs };
}

/**
 * The batches of `dataset`, each checked (and cast) by `checkBatch`. A rejected
 * batch is disposed before the error is thrown; a dataset that yields nothing is an error.
 */
export async function* checkedBatches(dataset: Dataset, specs: InputSpec[]): AsyncGenerator<Batch> {
  let batchIndex = 0;
  for await (const batch of dataset.batches()) {
    let checked: Batch;
    try {
      checked = checkBatch(batch, specs, { dataset: dataset.name, batchIndex });
    } catch (err) {
      disposeBatch(batch);
      throw err;
    }
    batchIndex++;
    yield checked;
  }
  if (batchIndex === 0) throw new Error(`dataset "${dataset.name}" is empty: it yielded no batches`);
}
