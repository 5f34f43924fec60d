import * as tf from "@tensorflow/tfjs";
import { forward } from "../graph/forward";
import { Graph } from "../graph/graph";

export interface VerifyOptions {
  batchSize?: number;
  seed?: number;
  /** Size for dimensions the model leaves open (e.g. image height and width); default 32. */
  openDimension?: number;
}

export interface OutputDifference {
  output: string;
  shape: number[];
  maxAbsDiff: number;
  /** max |graph - predict| / max |predict|: the error relative to the output's scale. */
  maxRelDiff: number;
}

export interface VerifyResult {
  batchSize: number;
  seed: number;
  inputShapes: number[][];
  outputs: OutputDifference[];
  /** The largest relative difference over all outputs. */
  maxRelDiff: number;
}

/**
 * Runs the graph and the original model's `predict` on the same seeded random
 * batch and measures how far apart their outputs are. The relative difference is
 * taken against each output's largest magnitude, so values near zero do not
 * inflate it.
 */
export function verifyAgainstModel(graph: Graph, model: tf.LayersModel, options: VerifyOptions = {}): VerifyResult {
  const batchSize = options.batchSize ?? 2;
  const seed = options.seed ?? 42;
  const open = options.openDimension ?? 32;
  return tf.tidy(() => {
    const inputs = graph.inputSpecs.map((spec, i) => {
      const shape = spec.shape.map((d, axis) => (axis === 0 ? batchSize : d ?? open));
      if (spec.dtype === "int32") {
        const vocab = graph.consumers(spec.name).map((n) => n.attrs.inputDim).find((d): d is number => typeof d === "number") ?? 10;
        return tf.randomUniform(shape, 0, vocab, "int32", seed + i);
      }
      return tf.randomUniform(shape, 0, 1, "float32", seed + i);
    });
    const ours = forward(graph, inputs);
    const predicted = model.predict(inputs.length === 1 ? inputs[0] : inputs);
    const theirs = Array.isArray(predicted) ? predicted : [predicted];
    const outputs = graph.outputs.map((name, i) => {
      const maxAbsDiff = tf.max(tf.abs(tf.sub(ours[i], theirs[i]))).dataSync()[0];
      const scale = tf.max(tf.abs(theirs[i])).dataSync()[0];
      return { output: name, shape: ours[i].shape, maxAbsDiff, maxRelDiff: scale > 0 ? maxAbsDiff / scale : maxAbsDiff };
    });
    return {
      batchSize,
      seed,
      inputShapes: inputs.map((t) => t.shape),
      outputs,
      maxRelDiff: Math.max(...outputs.map((o) => o.maxRelDiff)),
    };
  });
}
