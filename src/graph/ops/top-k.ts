import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/**
 * One output of TF's TopKV2 over the last axis: attrs k, sorted, and output
 * (0: the k largest values, 1: their indices, as floats like every value here).
 * A TF node with both outputs becomes two graph nodes.
 */
registerOp({
  op: "topK",
  run: (node, [x]) =>
    tf.tidy(() => {
      const { values, indices } = tf.topk(x, node.attrs.k as number, node.attrs.sorted as boolean);
      return node.attrs.output === 0 ? values : tf.cast(indices, "float32");
    }),
  onnx: (ctx, node, [x]) => {
    const [values, indices] = ctx.nodeOutputs("TopK", [ctx.as(x, "native"), ctx.ints([node.attrs.k as number])], { axis: -1, largest: 1, sorted: 1 }, { outputs: 2 });
    const y = node.attrs.output === 0 ? ctx.node("Identity", [values], {}, { name: node.name }) : ctx.node("Cast", [indices], { to: 1 }, { name: node.name });
    return { name: y, layout: "native", rank: x.rank };
  },
});
