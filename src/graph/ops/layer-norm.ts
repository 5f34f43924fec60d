import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { axisList, inputRank, positiveAxis } from "./config";

/**
 * LayerNormalization over `axes` (usually the last): (x - mean) / sqrt(var + eps),
 * then optional gamma and beta shaped like the normalized axes.
 */
registerOp({
  op: "layerNorm",
  run: (node, [x], p) => {
    const axes = node.attrs.axes as number[];
    const { mean, variance } = tf.moments(x, axes, true);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, node.attrs.epsilon as number)));
    const shape = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
    if (p.gamma) y = tf.mul(y, tf.reshape(p.gamma, shape));
    if (p.beta) y = tf.add(y, tf.reshape(p.beta, shape));
    return y;
  },
});

registerLayer({
  classNames: ["LayerNormalization"],
  lower: (call) => {
    const rank = inputRank(call);
    const axes = axisList(call, "axis", -1).map((a) => positiveAxis(a, rank));
    return { op: "layerNorm", attrs: { axes, epsilon: Number(call.config.epsilon ?? 1e-3) }, params: call.weights };
  },
});
