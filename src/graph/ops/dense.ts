import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { activationName, applyActivation, fusedActivation } from "./activation";
import { requireWeight } from "./config";
import { lowerActivation } from "./onnx-common";

/**
 * Dense: params kernel [in, out] and optional bias [out]. Inputs of rank > 2
 * ([batch, tokens, in]) are folded to 2-D for the matmul and unfolded after.
 */
registerOp({
  op: "dense",
  run: (node, [x], p) => {
    const a = node.attrs as { activation: string };
    const units = p.kernel.shape[1] as number;
    const x2 = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, x.shape[x.rank - 1]]) as tf.Tensor2D;
    // A graph model's MatMul followed by its own bias Add: added after the sums, as TF.js runs it.
    const biasAfter = node.attrs.biasAfter === true && p.bias !== undefined;
    const fused = biasAfter ? undefined : fusedActivation(a.activation);
    let y: tf.Tensor = biasAfter
      ? tf.add(tf.matMul(x2, p.kernel as tf.Tensor2D), p.bias)
      : tf.fused.matMul({ a: x2, b: p.kernel as tf.Tensor2D, bias: p.bias, activation: fused ?? "linear" });
    if (x.rank !== 2) y = tf.reshape(y, [...x.shape.slice(0, -1), units]);
    return fused ? y : applyActivation(y, { fn: a.activation });
  },
  onnx: (ctx, node, [x]) => {
    // MatMul broadcasts over leading axes, so rank-3 inputs need no folding; ORT fuses MatMul + Add.
    let y = ctx.node("MatMul", [ctx.as(x, "native"), ctx.param(node, "kernel")], {}, { name: node.name });
    if (node.params.bias) y = ctx.node("Add", [y, ctx.param(node, "bias")]);
    const v = { name: y, layout: "native" as const, rank: x.rank };
    return { ...v, name: lowerActivation(ctx, v, { fn: node.attrs.activation as string }) };
  },
});

registerLayer({
  classNames: ["Dense"],
  lower: (call) => {
    requireWeight(call, "kernel");
    return { op: "dense", attrs: { activation: activationName(call) }, params: call.weights };
  },
});
