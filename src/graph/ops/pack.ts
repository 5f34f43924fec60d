import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/** Stacks its inputs on a new axis (TF's Pack), in the graph's own axis order. */
registerOp({
  op: "pack",
  run: (node, xs) => tf.stack(xs, node.attrs.axis as number),
  onnx: (ctx, node, xs) => {
    const axis = node.attrs.axis as number;
    const parts = xs.map((x) => ctx.node("Unsqueeze", [ctx.as(x, "native"), ctx.ints([axis])]));
    return { name: ctx.node("Concat", parts, { axis }, { name: node.name }), layout: "native", rank: xs[0].rank + 1 };
  },
});
