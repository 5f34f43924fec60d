import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { axisList, inputRank, positiveAxis } from "./config";

/**
 * LayerNormalization over `axes` (usually the last): (x - mean) / sqrt(var + eps),
 * then optional gamma and beta shaped like the normalized axes.
 */
registerOp({
  op: "layerNorm",
  run: (node, [x], p) => {
    const axes = node.attrs.axes as number[];
    const { mean, variance } = tf.moments(x, axes, true);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, node.attrs.epsilon as number)));
    const shape = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
    if (p.gamma) y = tf.mul(y, tf.reshape(p.gamma, shape));
    if (p.beta) y = tf.add(y, tf.reshape(p.beta, shape));
    return y;
  },
  // tfjs's formula as elementwise ops (ONNX's LayerNormalization only takes trailing axes).
  onnx: (ctx, node, [x]) => {
    const axes = node.attrs.axes as number[];
    const xs = ctx.as(x, "native");
    const axesName = ctx.ints(axes);
    const mean = ctx.node("ReduceMean", [xs, axesName], { keepdims: 1 });
    const centered = ctx.node("Sub", [xs, mean]);
    const variance = ctx.node("ReduceMean", [ctx.node("Mul", [centered, centered]), axesName], { keepdims: 1 });
    let y = ctx.node("Mul", [centered, ctx.node("Reciprocal", [ctx.node("Sqrt", [ctx.node("Add", [variance, ctx.constant([node.attrs.epsilon as number], [])])])])]);
    const shaped = (key: string) => ctx.param(node, key, (data) => ({ data, dims: Array.from({ length: x.rank }, (_, i) => (axes.includes(i) ? (node.outputShape[i] as number) : 1)) }));
    if (node.params.gamma) y = ctx.node("Mul", [y, shaped("gamma")]);
    if (node.params.beta) y = ctx.node("Add", [y, shaped("beta")]);
    return { name: ctx.node("Identity", [y], {}, { name: node.name }), layout: "native", rank: x.rank };
  },
});

registerLayer({
  classNames: ["LayerNormalization"],
  lower: (call) => {
    const rank = inputRank(call);
    const axes = axisList(call, "axis", -1).map((a) => positiveAxis(a, rank));
    return { op: "layerNorm", attrs: { axes, epsilon: Number(call.config.epsilon ?? 1e-3) }, params: call.weights };
  },
});
