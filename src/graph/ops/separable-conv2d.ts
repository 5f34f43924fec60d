import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation } from "./activation";
import { conv2dAttrs, Conv2dAttrs, requireWeight } from "./config";

/**
 * SeparableConv2D: a depthwise pass (depthwise_kernel [kh, kw, in, mult]) then a
 * 1x1 pointwise pass (pointwise_kernel [1, 1, in*mult, out]), optional bias [out].
 */
registerOp({
  op: "separableConv2d",
  run: (node, [x], p) => {
    const a = node.attrs as unknown as Conv2dAttrs;
    let y: tf.Tensor = tf.separableConv2d(
      x as tf.Tensor4D,
      p.depthwise_kernel as tf.Tensor4D,
      p.pointwise_kernel as tf.Tensor4D,
      a.strides,
      a.padding,
      a.dilations,
      "NHWC",
    );
    if (p.bias) y = tf.add(y, p.bias);
    return applyActivation(y, { fn: a.activation });
  },
});

registerLayer({
  classNames: ["SeparableConv2D"],
  lower: (call) => {
    requireWeight(call, "depthwise_kernel");
    requireWeight(call, "pointwise_kernel");
    return {
      op: "separableConv2d",
      attrs: { ...conv2dAttrs(call, activationName(call)) },
      params: call.weights,
    };
  },
});
