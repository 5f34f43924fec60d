import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";

/** Shape-only ops: Flatten, Reshape, and Dropout (the identity at inference). */
// Reshapes read values in the graph's own (channels-last) order.
registerOp({
  op: "flatten",
  run: (_node, [x]) => tf.reshape(x, [x.shape[0], -1]),
  onnx: (ctx, node, [x]) => ({ name: ctx.node("Flatten", [ctx.as(x, "native")], { axis: 1 }, { name: node.name }), layout: "native", rank: 2 }),
});
registerOp({
  op: "reshape",
  run: (node, [x]) => tf.reshape(x, [x.shape[0], ...(node.attrs.targetShape as number[])]),
  onnx: (ctx, node, [x]) => {
    const target = node.attrs.targetShape as number[];
    return { name: ctx.node("Reshape", [ctx.as(x, "native"), ctx.ints([0, ...target])], {}, { name: node.name }), layout: "native", rank: target.length + 1 };
  },
});
// A fresh tensor, not the input itself: the runner disposes each node's output on its own.
registerOp({
  op: "identity",
  run: (_node, [x]) => tf.clone(x),
  onnx: (ctx, node, [x]) => ({ ...x, name: ctx.node("Identity", [x.name], {}, { name: node.name }) }),
});

registerLayer({ classNames: ["Flatten"], lower: () => ({ op: "flatten", attrs: {}, params: {} }) });
registerLayer({
  classNames: ["Reshape"],
  lower: (call) => {
    const target = call.config.targetShape;
    if (!Array.isArray(target) || !target.every((d) => typeof d === "number" || d === null)) {
      throw new Error(`layer "${call.name}" (Reshape): targetShape ${JSON.stringify(target)} is not a list of sizes`);
    }
    return { op: "reshape", attrs: { targetShape: target.map((d) => (d === null ? -1 : d)) }, params: {} };
  },
});
registerLayer({
  classNames: ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout"],
  lower: () => ({ op: "identity", attrs: {}, params: {} }),
});
