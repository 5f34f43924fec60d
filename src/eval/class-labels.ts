import * as tf from "@tensorflow/tfjs";

/**
 * Class-index labels [batch] as int32. Float labels must hold whole numbers ≥ 0:
 * 7.5 is an error naming the example, never silently truncated to class 7.
 * The caller disposes the result when it is not `labels` itself.
 */
export function classIndices(labels: tf.Tensor): tf.Tensor {
  if (labels.dtype === "int32") return labels;
  const values = labels.dataSync();
  const bad = values.findIndex((v) => !Number.isInteger(v) || v < 0);
  if (bad >= 0) throw new Error(`labels must be class indices (whole numbers ≥ 0); example ${bad} of the batch has ${values[bad]}`);
  return labels.toInt();
}
