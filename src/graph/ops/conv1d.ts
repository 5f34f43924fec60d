import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation } from "./activation";
import { channelsLast, padding, requireWeight, single } from "./config";
import { convKernel, spatialAttrs, withActivation } from "./onnx-common";

/** Conv1D on [batch, steps, channels]: params kernel [k, in, out] and optional bias. */
registerOp({
  op: "conv1d",
  run: (node, [x], p) => {
    const a = node.attrs as { stride: number; padding: "same" | "valid"; dilation: number; activation: string };
    let y: tf.Tensor = tf.conv1d(x as tf.Tensor3D, p.kernel as tf.Tensor3D, a.stride, a.padding, "NWC", a.dilation);
    if (p.bias) y = tf.add(y, p.bias);
    return applyActivation(y, { fn: a.activation });
  },
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as { stride: number; padding: "same" | "valid"; dilation: number; activation: string };
    const ins = [ctx.as(x, "channelsFirst"), ctx.param(node, "kernel", convKernel)];
    if (node.params.bias) ins.push(ctx.param(node, "bias"));
    const attrs = spatialAttrs({ strides: [a.stride], padding: a.padding, dilations: [a.dilation] }, [node.params.kernel.shape[0]]);
    return withActivation(ctx, ctx.node("Conv", ins, attrs, { name: node.name }), 3, a.activation);
  },
});

registerLayer({
  classNames: ["Conv1D"],
  lower: (call) => {
    channelsLast(call);
    requireWeight(call, "kernel");
    return {
      op: "conv1d",
      attrs: { stride: single(call, "strides", 1), padding: padding(call), dilation: single(call, "dilationRate", 1), activation: activationName(call) },
      params: call.weights,
    };
  },
});
