import { registerLayer } from "../registry";
import { LayerCall } from "../types";
import { positiveAxis } from "./config";

/**
 * Keras `Dot` on rank-3 inputs ([batch, n, k] · [batch, k, m], attention's
 * q·kᵀ and probs·v) is a batched matrix product: the `matMul` op graph models
 * use, with its tfjs kernel and ONNX lowering. tfjs-layers' own batchDot calls
 * `tf.matMul(x, y, axes[0] !== 2, axes[1] === 2)`; the attrs below are the same
 * flags, so the numbers are the ones `model.predict` computes. Both inputs and
 * the product are node outputs, so each has its own activation quantizer, as a
 * QDQ runtime places them around a MatMul.
 */
registerLayer({
  classNames: ["Dot"],
  lower: (call) => {
    const ranks = call.inputShapes.map((s) => s.length);
    if (ranks.length !== 2 || ranks.some((r) => r !== 3)) {
      throw new Error(`layer "${call.name}" (Dot): only two rank-3 inputs ([batch, rows, columns]) are supported, got ranks ${JSON.stringify(ranks)}`);
    }
    if (call.config.normalize === true) throw new Error(`layer "${call.name}" (Dot): normalize (cosine proximity) is not supported`);
    const [ax, ay] = dotAxes(call);
    if (ax === 0 || ay === 0) throw new Error(`layer "${call.name}" (Dot): axes ${JSON.stringify(call.config.axes)} include the batch axis`);
    return { op: "matMul", attrs: { transposeA: ax !== 2, transposeB: ay === 2 }, params: {} };
  },
});

function dotAxes(call: LayerCall): [number, number] {
  const v = call.config.axes;
  if (typeof v === "number") return [positiveAxis(v, 3), positiveAxis(v, 3)];
  if (Array.isArray(v) && v.length === 2 && v.every((a) => typeof a === "number")) return [positiveAxis(v[0], 3), positiveAxis(v[1], 3)];
  throw new Error(`layer "${call.name}" (Dot): axes must be an axis or a pair of axes, got ${JSON.stringify(v)}`);
}
