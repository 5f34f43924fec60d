import * as tf from "@tensorflow/tfjs";

/** Axis of input channels in each layer's kernel; the output channels are the axes after it. */
export const INPUT_AXIS: Record<string, { param: string; inAxis: number }> = {
  dense: { param: "kernel", inAxis: 0 },
  conv1d: { param: "kernel", inAxis: 1 },
  conv2d: { param: "kernel", inAxis: 2 },
  // [kh, kw, in, multiplier]: output channel c*multiplier + m reads input channel c only.
  depthwiseConv2d: { param: "depthwise_kernel", inAxis: 2 },
};

/**
 * What a layer adds to each output channel when every input channel i holds the
 * constant v_i: Σ over input channels and kernel positions of W · v (for
 * depthwise, channel by channel). Ignores zero padding, which carries no v.
 */
export function kernelTimesInputConstant(op: string, kernel: tf.Tensor, v: ArrayLike<number>): tf.Tensor1D {
  const rule = INPUT_AXIS[op];
  if (!rule) throw new Error(`kernelTimesInputConstant: op "${op}" is not a conv/dense layer`);
  const inChannels = kernel.shape[rule.inAxis];
  if (v.length !== inChannels) throw new Error(`kernelTimesInputConstant: ${v.length} values for ${inChannels} input channels`);
  return tf.tidy(() => {
    const shape = kernel.shape.map((d, i) => (i === rule.inAxis ? d : 1));
    const weighted = tf.mul(kernel, tf.tensor(Array.from(v), shape));
    // Depthwise keeps its input axis (it is the output channel); the others sum it away.
    const lastSummed = op === "depthwiseConv2d" ? rule.inAxis - 1 : rule.inAxis;
    const summed = tf.sum(weighted, Array.from({ length: lastSummed + 1 }, (_, i) => i));
    return tf.reshape(summed, [-1]) as tf.Tensor1D;
  });
}
