import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";

/** Shape-only ops: Flatten, Reshape, and Dropout (the identity at inference). */
registerOp({ op: "flatten", run: (_node, [x]) => tf.reshape(x, [x.shape[0], -1]) });
registerOp({ op: "reshape", run: (node, [x]) => tf.reshape(x, [x.shape[0], ...(node.attrs.targetShape as number[])]) });
// A fresh tensor, not the input itself: the runner disposes each node's output on its own.
registerOp({ op: "identity", run: (_node, [x]) => tf.clone(x) });

registerLayer({ classNames: ["Flatten"], lower: () => ({ op: "flatten", attrs: {}, params: {} }) });
registerLayer({
  classNames: ["Reshape"],
  lower: (call) => {
    const target = call.config.targetShape;
    if (!Array.isArray(target) || !target.every((d) => typeof d === "number" || d === null)) {
      throw new Error(`layer "${call.name}" (Reshape): targetShape ${JSON.stringify(target)} is not a list of sizes`);
    }
    return { op: "reshape", attrs: { targetShape: target.map((d) => (d === null ? -1 : d)) }, params: {} };
  },
});
registerLayer({
  classNames: ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout"],
  lower: () => ({ op: "identity", attrs: {}, params: {} }),
});
