import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { axisList, inputRank, positiveAxis, requireWeight } from "./config";

/**
 * BatchNormalization at inference: params moving_mean, moving_variance and the
 * optional gamma (scale) and beta (center), all [channels] on the last axis.
 * Kept as its own node so folding it into the conv before is an explicit graph edit.
 */
registerOp({
  op: "batchNorm",
  run: (node, [x], p) => tf.batchNorm(x, p.moving_mean, p.moving_variance, p.beta, p.gamma, node.attrs.epsilon as number),
});

registerLayer({
  classNames: ["BatchNormalization"],
  lower: (call) => {
    const rank = inputRank(call);
    const axes = axisList(call, "axis", -1).map((a) => positiveAxis(a, rank));
    if (axes.length !== 1 || axes[0] !== rank - 1) {
      throw new Error(`layer "${call.name}" (BatchNormalization): axis ${JSON.stringify(call.config.axis)} is not supported (only the last axis)`);
    }
    requireWeight(call, "moving_mean");
    requireWeight(call, "moving_variance");
    return { op: "batchNorm", attrs: { epsilon: Number(call.config.epsilon ?? 1e-3) }, params: call.weights };
  },
});
