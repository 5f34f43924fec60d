import * as tf from "@tensorflow/tfjs";
import { registerOp } from "../registry";
import { channelsFirstPerm, transposeData } from "./onnx-common";

/** PReLU with a learned slope per channel: param alpha (shape [C], or broadcastable like [1, 1, C]). */
registerOp({
  op: "prelu",
  run: (_node, [x], p) => tf.prelu(x, p.alpha),
  onnx: (ctx, node, [x]) => {
    const shape = node.params.alpha.shape;
    const alpha = x.layout === "channelsFirst" && x.rank >= 3
      ? ctx.param(node, "alpha", (data) => transposeData(data, [...new Array(x.rank - shape.length).fill(1), ...shape], channelsFirstPerm(x.rank)))
      : ctx.param(node, "alpha");
    return { ...x, name: ctx.node("PRelu", [x.name, alpha], {}, { name: node.name }) };
  },
});
