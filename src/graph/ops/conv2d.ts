import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation, fusedActivation } from "./activation";
import { conv2dAttrs, Conv2dAttrs, requireWeight } from "./config";
import { convKernel, spatialAttrs, withActivation } from "./onnx-common";

/** Conv2D: params kernel [kh, kw, in, out] and optional bias [out]; activation fused. */
registerOp({
  op: "conv2d",
  run: (node, [x], p) => {
    const a = node.attrs as unknown as Conv2dAttrs;
    // A graph model's Conv2D followed by its own bias Add: added after the sums, as TF.js runs it.
    if (node.attrs.biasAfter === true && p.bias) {
      const sums = tf.conv2d(x as tf.Tensor4D, p.kernel as tf.Tensor4D, a.strides, a.padding, "NHWC", a.dilations);
      return applyActivation(tf.add(sums, p.bias), { fn: a.activation });
    }
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
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as Conv2dAttrs;
    const [kh, kw] = node.params.kernel.shape as number[];
    const ins = [ctx.as(x, "channelsFirst"), ctx.param(node, "kernel", convKernel)];
    if (node.params.bias) ins.push(ctx.param(node, "bias"));
    return withActivation(ctx, ctx.node("Conv", ins, spatialAttrs(a, [kh, kw]), { name: node.name }), 4, a.activation);
  },
});

registerLayer({
  classNames: ["Conv2D"],
  lower: (call) => {
    requireWeight(call, "kernel");
    return {
      op: "conv2d",
      attrs: { ...conv2dAttrs(call, activationName(call)) },
      params: call.weights,
    };
  },
});
