import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";
import { axisIn } from "./onnx-common";

/** Reductions over constant axes (TF's Mean, Sum, Max, Min, Prod), and ArgMax (the index kept as a float). */
const REDUCE: Record<string, { tf: (x: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor; onnx: string }> = {
  mean: { tf: tf.mean, onnx: "ReduceMean" },
  sum: { tf: tf.sum, onnx: "ReduceSum" },
  max: { tf: tf.max, onnx: "ReduceMax" },
  min: { tf: tf.min, onnx: "ReduceMin" },
  prod: { tf: tf.prod, onnx: "ReduceProd" },
};
export const REDUCE_FNS = Object.keys(REDUCE);

registerOp({
  op: "reduce",
  run: (node, [x]) => REDUCE[node.attrs.fn as string].tf(x, node.attrs.axes as number[], node.attrs.keepDims as boolean),
  onnx: (ctx, node, [x]) => {
    const axes = node.attrs.axes as number[];
    const keep = node.attrs.keepDims as boolean;
    // Kept axes keep the layout; dropped ones are taken in the graph's order, except the
    // spatial axes of a channels-first tensor, whose reduction is [N, C] in both layouts.
    const spatial = x.layout === "channelsFirst" && axes.length === x.rank - 2 && axes.every((a, i) => a === i + 1);
    const layout = keep || spatial ? x.layout : "native";
    const onnxAxes = axes.map((a) => axisIn(layout, a, x.rank));
    const y = ctx.node(REDUCE[node.attrs.fn as string].onnx, [ctx.as(x, layout), ctx.ints(onnxAxes)], { keepdims: keep ? 1 : 0 }, { name: node.name });
    return { name: y, layout: keep ? layout : "native", rank: keep ? x.rank : x.rank - axes.length };
  },
});

registerOp({
  op: "argMax",
  run: (node, [x]) => tf.cast(tf.argMax(x, node.attrs.axis as number), "float32"),
  onnx: (ctx, node, [x]) => {
    const index = ctx.node("ArgMax", [ctx.as(x, "native")], { axis: node.attrs.axis as number, keepdims: 0, select_last_index: 0 });
    return { name: ctx.node("Cast", [index], { to: 1 }, { name: node.name }), layout: "native", rank: x.rank - 1 };
  },
});
