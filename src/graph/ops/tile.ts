import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/** Repeats the input `reps` times along each axis (TF's Tile with constant multiples). */
registerOp({
  op: "tile",
  run: (node, [x]) => tf.tile(x, node.attrs.reps as number[]),
  onnx: (ctx, node, [x]) => ({ name: ctx.node("Tile", [ctx.as(x, "native"), ctx.ints(node.attrs.reps as number[])], {}, { name: node.name }), layout: "native", rank: x.rank }),
});
