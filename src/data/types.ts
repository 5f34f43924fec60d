import * as tf from "@tensorflow/tfjs";

/**
 * One batch of a dataset. The consumer owns every tensor in it and must dispose
 * them (use `disposeBatch`) once done: datasets never keep references to batches
 * they have handed out.
 */
export interface Batch {
  /** One tensor per model input, in the model's input order; first axis is the batch. */
  inputs: tf.Tensor[];
  /** Optional labels: int32 class indices of shape [batch], or any float target tensor. */
  labels?: tf.Tensor;
}

/** A re-iterable source of batches: each call to `batches()` starts from the beginning. */
export interface Dataset {
  /** A short description used in progress messages and errors ("mnist (2000 images)"). */
  readonly name: string;
  /** Number of examples, when known before iterating. */
  readonly size?: number;
  batches(): AsyncIterable<Batch>;
}

export function disposeBatch(batch: Batch): void {
  tf.dispose(batch.inputs);
  if (batch.labels) batch.labels.dispose();
}

/** What a model expects at one input: batch axis first, `null` where any size goes. */
export interface InputSpec {
  name: string;
  shape: (number | null)[];
  dtype: "float32" | "int32";
}

/**
 * The `data` of a call's options, checked at the edge: every analysis and fix
 * takes `fn(subject, { data, ... })`. A dataset given in place of the options
 * (the old positional form) is named as such.
 */
export function requireData(call: string, options: { data?: Dataset } | undefined): Dataset {
  const given = options as Partial<Dataset> & { data?: Partial<Dataset> } | undefined;
  if (given && typeof given.batches === "function") throw new Error(`${call}: give the data in the options, as ${call}(subject, { data })`);
  if (!given || given.data === undefined) throw new Error(`${call}: options.data is required (a dataset: qd.toDataset(...))`);
  if (typeof given.data.batches !== "function") throw new Error(`${call}: options.data is not a dataset (use qd.toDataset(...) on tensors, arrays, files or "mnist")`);
  return given.data as Dataset;
}
