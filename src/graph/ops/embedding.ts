import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { requireWeight } from "./config";

/** Embedding: gathers rows of `embeddings` [vocabulary, dim] by integer token id. */
registerOp({
  op: "embedding",
  run: (_node, [ids], p) => tf.gather(p.embeddings, ids.dtype === "int32" ? ids : tf.cast(ids, "int32")),
  onnx: (ctx, node, [ids]) => ({ name: ctx.node("Gather", [ctx.param(node, "embeddings"), ctx.as(ids, "native")], { axis: 0 }, { name: node.name }), layout: "native", rank: ids.rank + 1 }),
});

registerLayer({
  classNames: ["Embedding"],
  lower: (call) => {
    requireWeight(call, "embeddings");
    return { op: "embedding", attrs: { inputDim: call.config.inputDim, outputDim: call.config.outputDim }, params: call.weights };
  },
});
