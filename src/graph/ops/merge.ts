import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { inputRank, positiveAxis } from "./config";

/** Add, Multiply and Concatenate: n-ary merges, applied left to right like tfjs-layers. */
registerOp({ op: "add", run: (_node, xs) => xs.reduce((acc, x) => tf.add(acc, x)) });
registerOp({ op: "multiply", run: (_node, xs) => xs.reduce((acc, x) => tf.mul(acc, x)) });
registerOp({ op: "concat", run: (node, xs) => tf.concat(xs, node.attrs.axis as number) });

registerLayer({ classNames: ["Add"], lower: () => ({ op: "add", attrs: {}, params: {} }) });
registerLayer({ classNames: ["Multiply"], lower: () => ({ op: "multiply", attrs: {}, params: {} }) });
registerLayer({
  classNames: ["Concatenate"],
  lower: (call) => ({ op: "concat", attrs: { axis: positiveAxis(Number(call.config.axis ?? -1), inputRank(call)) }, params: {} }),
});
