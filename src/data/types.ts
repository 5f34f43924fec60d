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
