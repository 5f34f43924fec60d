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
  onnx: (ctx, node, [x]) => {
    // ONNX normalizes axis 1: the channels of a channels-first tensor, or of a 2-D one. ORT folds it into a conv before it.
    const layout = x.rank >= 3 ? "channelsFirst" : "native";
    const channels = node.params.moving_mean.size;
    const gamma = node.params.gamma ? ctx.param(node, "gamma") : ctx.constant(new Float32Array(channels).fill(1), [channels]);
    const beta = node.params.beta ? ctx.param(node, "beta") : ctx.constant(new Float32Array(channels), [channels]);
    const ins = [ctx.as(x, layout), gamma, beta, ctx.param(node, "moving_mean"), ctx.param(node, "moving_variance")];
    return { name: ctx.node("BatchNormalization", ins, { epsilon: { f: node.attrs.epsilon as number } }, { name: node.name }), layout, rank: x.rank };
  },
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
