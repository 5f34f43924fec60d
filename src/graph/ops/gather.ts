import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";
import { OnnxLoweringContext, OnnxValue } from "../types";

/**
 * Gathers by index (TF's GatherV2 and GatherNd). Indices are a computed input
 * (kept as whole floats, like every value of the graph) or the constant attr
 * `indices` with its `indicesShape`.
 */
function indicesOf(node: { attrs: Record<string, unknown> }, xs: tf.Tensor[]): tf.Tensor {
  if (xs.length > 1) return tf.cast(xs[1], "int32");
  return tf.tensor(node.attrs.indices as number[], node.attrs.indicesShape as number[], "int32");
}

/** The indices as ONNX's int64 (Cast to = 7). */
function onnxIndices(ctx: OnnxLoweringContext, node: { attrs: Record<string, unknown> }, xs: readonly OnnxValue[]): string {
  if (xs.length > 1) return ctx.node("Cast", [ctx.as(xs[1], "native")], { to: 7 });
  return ctx.constant(node.attrs.indices as number[], node.attrs.indicesShape as number[], "int64");
}

registerOp({
  op: "gather",
  run: (node, xs) => tf.gather(xs[0], indicesOf(node, xs), node.attrs.axis as number),
  onnx: (ctx, node, xs) => {
    const rank = xs[0].rank - 1 + (xs.length > 1 ? xs[1].rank : (node.attrs.indicesShape as number[]).length);
    return { name: ctx.node("Gather", [ctx.as(xs[0], "native"), onnxIndices(ctx, node, xs)], { axis: node.attrs.axis as number }, { name: node.name }), layout: "native", rank };
  },
});

registerOp({
  op: "gatherNd",
  run: (node, xs) => tf.gatherND(xs[0], indicesOf(node, xs)),
  onnx: (ctx, node, xs) => {
    const irank = xs.length > 1 ? xs[1].rank : (node.attrs.indicesShape as number[]).length;
    const depth = node.attrs.depth as number;
    return { name: ctx.node("GatherND", [ctx.as(xs[0], "native"), onnxIndices(ctx, node, xs)], {}, { name: node.name }), layout: "native", rank: irank - 1 + xs[0].rank - depth };
  },
});
