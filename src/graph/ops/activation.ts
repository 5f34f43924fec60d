import * as tf from "@tensorflow/tfjs";
import { registerLayer, registerOp } from "../registry";
import { LayerCall } from "../types";
import { lowerActivation } from "./onnx-common";

/**
 * Elementwise activations, with the exact formulas of tfjs-layers so the graph
 * reproduces model.predict. Used standalone (Activation, ReLU, LeakyReLU,
 * Softmax layers) and fused into conv/dense nodes as their `activation` attr.
 */
export interface ActivationAttrs {
  fn: string;
  /**
   * ReLU layer: upper clip (relu6 is maxValue 6). One value per channel (last
   * axis) after CLE rescaled the channels of a ReLU6 and kept it exact.
   */
  maxValue?: number | number[] | null;
  /** LeakyReLU slope. */
  alpha?: number;
  /** Softmax axis. */
  axis?: number;
}

const FORMULAS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  linear: (x) => x,
  relu: (x) => tf.relu(x),
  relu6: (x) => tf.clipByValue(x, 0, 6),
  sigmoid: (x) => tf.sigmoid(x),
  tanh: (x) => tf.tanh(x),
  softmax: (x) => tf.softmax(x, -1),
  logSoftmax: (x) => tf.logSoftmax(x, -1),
  swish: (x) => tf.mul(tf.sigmoid(x), x),
  gelu: (x) => tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2))))),
  gelu_new: (x) =>
    tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))),
  elu: (x) => tf.elu(x),
  selu: (x) => tf.selu(x),
  softplus: (x) => tf.softplus(x),
  softsign: (x) => tf.div(x, tf.add(1, tf.abs(x))),
  hardSigmoid: (x) => tf.clipByValue(tf.add(tf.mul(0.2, x), 0.5), 0, 1),
  mish: (x) => tf.mul(x, tf.tanh(tf.softplus(x))),
};

export const ACTIVATIONS = Object.keys(FORMULAS);

/** Checks an activation name from a layer config, naming the layer when unknown. */
export function activationName(call: LayerCall, field = "activation"): string {
  const v = call.config[field] ?? "linear";
  if (typeof v === "string" && v in FORMULAS) return v;
  throw new Error(
    `layer "${call.name}" (${call.className}): activation ${JSON.stringify(v)} is not supported (supported: ${ACTIVATIONS.join(", ")})`,
  );
}

export function applyActivation(x: tf.Tensor, a: ActivationAttrs): tf.Tensor {
  switch (a.fn) {
    case "relu":
      if (Array.isArray(a.maxValue)) return tf.minimum(tf.relu(x), tf.tensor1d(a.maxValue));
      return a.maxValue != null ? tf.clipByValue(tf.relu(x), 0, a.maxValue) : tf.relu(x);
    case "leakyRelu":
      return tf.leakyRelu(x, a.alpha ?? 0.3);
    case "softmax":
      return tf.softmax(x, a.axis ?? -1);
    default:
      return FORMULAS[a.fn](x);
  }
}

/** tf.fused.* can apply these in the same kernel as the conv/matmul, as tfjs-layers does. */
const FUSABLE = new Set(["linear", "relu", "relu6", "elu", "sigmoid"]);
export function fusedActivation(fn: string): tf.fused.Activation | undefined {
  return FUSABLE.has(fn) ? (fn as tf.fused.Activation) : undefined;
}

registerOp({
  op: "activation",
  run: (node, [x]) => applyActivation(x, node.attrs as unknown as ActivationAttrs),
  // Elementwise, so any layout will do, except a per-channel clip, which wants a known one.
  onnx: (ctx, node, [x]) => {
    const a = node.attrs as unknown as ActivationAttrs;
    const v = Array.isArray(a.maxValue) && x.rank >= 3 ? { ...x, name: ctx.as(x, "channelsFirst"), layout: "channelsFirst" as const } : x;
    return { ...v, name: lowerActivation(ctx, v, a) };
  },
});

registerLayer({
  classNames: ["Activation"],
  lower: (call) => ({ op: "activation", attrs: { fn: activationName(call) }, params: {} }),
});

registerLayer({
  classNames: ["ReLU"],
  lower: (call) => {
    const maxValue = call.config.maxValue;
    if (maxValue != null && typeof maxValue !== "number") {
      throw new Error(`layer "${call.name}" (ReLU): maxValue must be a number, got ${JSON.stringify(maxValue)}`);
    }
    return { op: "activation", attrs: { fn: "relu", maxValue: maxValue ?? null }, params: {} };
  },
});

registerLayer({
  classNames: ["LeakyReLU"],
  lower: (call) => ({ op: "activation", attrs: { fn: "leakyRelu", alpha: Number(call.config.alpha ?? 0.3) }, params: {} }),
});

registerLayer({
  classNames: ["Softmax"],
  lower: (call) => ({ op: "activation", attrs: { fn: "softmax", axis: Number(call.config.axis ?? -1) }, params: {} }),
});
