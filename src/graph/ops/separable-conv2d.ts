import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation } from "./activation";
import { conv2dAttrs, Conv2dAttrs, requireWeight } from "./config";
import { convKernel, depthwiseKernel, spatialAttrs, withActivation } from "./onnx-common";

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
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as Conv2dAttrs;
    const [kh, kw, cin] = node.params.depthwise_kernel.shape;
    const depthwise = ctx.node("Conv", [ctx.as(x, "channelsFirst"), ctx.param(node, "depthwise_kernel", depthwiseKernel)], { ...spatialAttrs(a, [kh, kw]), group: cin });
    const ins = [depthwise, ctx.param(node, "pointwise_kernel", convKernel)];
    if (node.params.bias) ins.push(ctx.param(node, "bias"));
    return withActivation(ctx, ctx.node("Conv", ins, { kernel_shape: [1, 1] }, { name: node.name }), 4, a.activation);
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
