import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation, fusedActivation } from "./activation";
import { conv2dAttrs, Conv2dAttrs, requireWeight } from "./config";
import { depthwiseKernel, spatialAttrs, withActivation } from "./onnx-common";

/**
 * DepthwiseConv2D: param depthwise_kernel [kh, kw, in, multiplier] (output channel
 * c*multiplier + m) and optional bias [in*multiplier].
 */
registerOp({
  op: "depthwiseConv2d",
  run: (node, [x], p) => {
    const a = node.attrs as unknown as Conv2dAttrs;
    // A graph model's FusedDepthwiseConv2dNative: TF.js runs it as one fused kernel, whose sums start from the bias.
    const fused = node.attrs.fusedKernel === true ? fusedActivation(a.activation) : undefined;
    if (fused) {
      const f = { x: x as tf.Tensor4D, filter: p.depthwise_kernel as tf.Tensor4D, strides: a.strides, pad: a.padding, dilations: a.dilations, bias: p.bias, activation: fused };
      return tf.fused.depthwiseConv2d(f);
    }
    let y: tf.Tensor = tf.depthwiseConv2d(x as tf.Tensor4D, p.depthwise_kernel as tf.Tensor4D, a.strides, a.padding, "NHWC", a.dilations);
    if (p.bias) y = tf.add(y, p.bias);
    return applyActivation(y, { fn: a.activation });
  },
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as Conv2dAttrs;
    const [kh, kw, cin] = node.params.depthwise_kernel.shape;
    const ins = [ctx.as(x, "channelsFirst"), ctx.param(node, "depthwise_kernel", depthwiseKernel)];
    if (node.params.bias) ins.push(ctx.param(node, "bias"));
    return withActivation(ctx, ctx.node("Conv", ins, { ...spatialAttrs(a, [kh, kw]), group: cin }, { name: node.name }), 4, a.activation);
  },
});

registerLayer({
  classNames: ["DepthwiseConv2D"],
  lower: (call) => {
    requireWeight(call, "depthwise_kernel");
    return {
      op: "depthwiseConv2d",
      attrs: { ...conv2dAttrs(call, activationName(call)) },
      params: call.weights,
    };
  },
});
