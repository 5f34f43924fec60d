import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/**
 * TF's Select / SelectV2: inputs [condition, a, b], a where the condition is
 * non-zero, b elsewhere, broadcast. attrs conditionShape: the shape a rank-1
 * condition of Select (v1) takes to pick whole rows ([n, 1, ...]).
 */
registerOp({
  op: "select",
  run: (node, [c, a, b]) =>
    tf.tidy(() => {
      const shape = node.attrs.conditionShape as number[] | undefined;
      const cond = tf.notEqual(shape ? tf.reshape(c, shape) : c, 0);
      const out = tf.broadcastTo(a, tf.broadcast_util.assertAndGetBroadcastShape(tf.broadcast_util.assertAndGetBroadcastShape(cond.shape, a.shape), b.shape));
      return tf.where(tf.broadcastTo(cond, out.shape), out, tf.broadcastTo(b, out.shape));
    }),
  onnx: (ctx, node, [c, a, b]) => {
    const shape = node.attrs.conditionShape as number[] | undefined;
    let cond = ctx.as(c, "native");
    if (shape) cond = ctx.node("Reshape", [cond, ctx.ints(shape)]);
    const flag = ctx.node("Not", [ctx.node("Equal", [cond, ctx.constant([0], [])])]);
    const y = ctx.node("Where", [flag, ctx.as(a, "native"), ctx.as(b, "native")], {}, { name: node.name });
    return { name: y, layout: "native", rank: Math.max(c.rank, a.rank, b.rank) };
  },
});
