import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";

/**
 * A reshape to a full target shape, batch axis included (a graph model's
 * Reshape, Squeeze or ExpandDims that moves the batch axis). Reshapes that keep
 * the batch axis first are the "reshape" op, which works at any batch size.
 */
registerOp({
  op: "reshapeAll",
  run: (node, [x]) => tf.reshape(x, node.attrs.shape as number[]),
  onnx: (ctx, node, [x]) => {
    const shape = node.attrs.shape as number[];
    return { name: ctx.node("Reshape", [ctx.as(x, "native"), ctx.ints(shape)], {}, { name: node.name }), layout: "native", rank: shape.length };
  },
});
