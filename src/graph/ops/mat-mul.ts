import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/** A product of two computed tensors (TF's MatMul / BatchMatMulV2 without a constant side), optionally transposed. */
registerOp({
  op: "matMul",
  run: (node, [a, b]) => {
    const ta = node.attrs.transposeA as boolean;
    const tb = node.attrs.transposeB as boolean;
    return a.rank === 2 && b.rank === 2 ? tf.matMul(a, b, ta, tb) : tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb);
  },
  onnx: (ctx, node, [a, b]) => {
    const last2 = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
    let x = ctx.as(a, "native");
    let y = ctx.as(b, "native");
    if (node.attrs.transposeA) x = ctx.node("Transpose", [x], { perm: last2(a.rank) });
    if (node.attrs.transposeB) y = ctx.node("Transpose", [y], { perm: last2(b.rank) });
    return { name: ctx.node("MatMul", [x, y], {}, { name: node.name }), layout: "native", rank: Math.max(a.rank, b.rank) };
  },
});
