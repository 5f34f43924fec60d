import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { OnnxLayout, OnnxLowering, OnnxValue } from "../types";
import { inputRank, positiveAxis } from "./config";
import { axisIn } from "./onnx-common";

/** Add, Multiply and Concatenate: n-ary merges, applied left to right like tfjs-layers. */
registerOp({ op: "add", run: (_node, xs) => xs.reduce((acc, x) => tf.add(acc, x)), onnx: elementwise("Add") });
registerOp({ op: "multiply", run: (_node, xs) => xs.reduce((acc, x) => tf.mul(acc, x)), onnx: elementwise("Mul") });
registerOp({
  op: "concat",
  run: (node, xs) => tf.concat(xs, node.attrs.axis as number),
  onnx: (ctx, node, xs) => {
    const layout = commonLayout(xs);
    const ins = xs.map((x) => ctx.as(x, layout));
    return { name: ctx.node("Concat", ins, { axis: axisIn(layout, node.attrs.axis as number, xs[0].rank) }, { name: node.name }), layout, rank: xs[0].rank };
  },
});

/** Inputs of one rank meet in the layout most of them already have. */
function commonLayout(xs: readonly OnnxValue[]): OnnxLayout {
  const first = xs.filter((x) => x.layout === "channelsFirst").length;
  return first * 2 >= xs.length && xs.every((x) => x.rank === xs[0].rank && x.rank >= 3) ? "channelsFirst" : "native";
}

function elementwise(opType: string): OnnxLowering {
  return (ctx, node, xs) => {
    const layout = commonLayout(xs);
    const ins = xs.map((x) => ctx.as(x, layout));
    let y = ins[0];
    for (let i = 1; i < ins.length; i++) y = ctx.node(opType, [y, ins[i]], {}, i === ins.length - 1 ? { name: node.name } : {});
    return { name: y, layout, rank: Math.max(...xs.map((x) => x.rank)) };
  };
}

registerLayer({ classNames: ["Add"], lower: () => ({ op: "add", attrs: {}, params: {} }) });
registerLayer({ classNames: ["Multiply"], lower: () => ({ op: "multiply", attrs: {}, params: {} }) });
registerLayer({
  classNames: ["Concatenate"],
  lower: (call) => ({ op: "concat", attrs: { axis: positiveAxis(Number(call.config.axis ?? -1), inputRank(call)) }, params: {} }),
});
