import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation } from "./activation";
import { channelsLast, pair, padding, requireWeight } from "./config";

/**
 * DepthwiseConv2D: param depthwise_kernel [kh, kw, in, multiplier] (output channel
 * c*multiplier + m) and optional bias [in*multiplier].
 */
registerOp({
  op: "depthwiseConv2d",
  run: (node, [x], p) => {
    const a = node.attrs as { strides: [number, number]; padding: "same" | "valid"; dilations: [number, number]; activation: string };
    let y: tf.Tensor = tf.depthwiseConv2d(x as tf.Tensor4D, p.depthwise_kernel as tf.Tensor4D, a.strides, a.padding, "NHWC", a.dilations);
    if (p.bias) y = tf.add(y, p.bias);
    return applyActivation(y, { fn: a.activation });
  },
});

registerLayer({
  classNames: ["DepthwiseConv2D"],
  lower: (call) => {
    channelsLast(call);
    requireWeight(call, "depthwise_kernel");
    return {
      op: "depthwiseConv2d",
      attrs: { strides: pair(call, "strides", 1), padding: padding(call), dilations: pair(call, "dilationRate", 1), activation: activationName(call) },
      params: call.weights,
    };
  },
});
