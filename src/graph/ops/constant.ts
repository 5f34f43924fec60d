import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/** A constant value that a computed op reads beside computed ones (e.g. a concat of features and fixed anchors): param value. */
registerOp({
  op: "constant",
  run: (_node, _xs, p) => tf.clone(p.value),
  onnx: (ctx, node) => ({ name: ctx.node("Identity", [ctx.param(node, "value")], {}, { name: node.name }), layout: "native", rank: node.params.value.rank }),
});
