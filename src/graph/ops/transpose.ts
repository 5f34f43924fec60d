import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/** Transpose by `perm` (TF's Transpose with a constant permutation), in the graph's own axis order. */
registerOp({
  op: "transpose",
  run: (node, [x]) => tf.transpose(x, node.attrs.perm as number[]),
  onnx: (ctx, node, [x]) => ({ name: ctx.node("Transpose", [ctx.as(x, "native")], { perm: node.attrs.perm as number[] }, { name: node.name }), layout: "native", rank: x.rank }),
});
