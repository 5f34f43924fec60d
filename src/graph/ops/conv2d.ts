import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation, fusedActivation } from "./activation";
import { channelsLast, pair, padding, requireWeight } from "./config";

/** Conv2D: params kernel [kh, kw, in, out] and optional bias [out]; activation fused. */
registerOp({
  op: "conv2d",
  run: (node, [x], p) => {
    const a = node.attrs as { strides: [number, number]; padding: "same" | "valid"; dilations: [number, number]; activation: string };
    const fused = fusedActivation(a.activation);
    const y = tf.fused.conv2d({
      x: x as tf.Tensor4D,
      filter: p.kernel as tf.Tensor4D,
      strides: a.strides,
      pad: a.padding,
      dilations: a.dilations,
      bias: p.bias,
      activation: fused ?? "linear",
    });
    return fused ? y : applyActivation(y, { fn: a.activation });
  },
});

registerLayer({
  classNames: ["Conv2D"],
  lower: (call) => {
    channelsLast(call);
    requireWeight(call, "kernel");
    return {
      op: "conv2d",
      attrs: { strides: pair(call, "strides", 1), padding: padding(call), dilations: pair(call, "dilationRate", 1), activation: activationName(call) },
      params: call.weights,
    };
  },
});
