import * as tf from "@tensorflow/tfjs";
import { Graph } from "../graph/graph";
import { GraphNode } from "../graph/types";
import { QuantSim } from "../quant/quantsim";
import { batchNormStatsOf } from "./fold-batch-norm";
import { kernelTimesInputConstant } from "./kernel-math";
import { MEAN_PRESERVING, quantizedParams } from "./bias-correction-means";

/** Analytical bias correction: input means from BatchNorm statistics through the activation (a clipped normal), times the weight error. */
/**
 * (W_q − W)·E[x]: the shift of each output channel's mean when the layer's
 * weights are quantized, for inputs whose channel means are `inputMean`.
 */
export function analyticalShift(sim: QuantSim, layer: GraphNode, inputMean: number[]): Float32Array {
  const param = layer.op === "depthwiseConv2d" ? "depthwise_kernel" : "kernel";
  const q = quantizedParams(sim, layer.name, ["weight"]);
  try {
    return tf.tidy(() => kernelTimesInputConstant(layer.op, tf.sub(q[param], layer.params[param]), inputMean).dataSync() as Float32Array);
  } finally {
    tf.dispose(Object.values(q));
  }
}


/**
 * E[x] per channel of a layer's input, from the BatchNorm statistics N(β, γ²)
 * of the layer that produced it, through its ReLU / ReLU6 / linear activation
 * and any ops that keep channel means (dropout, average pooling); or why not.
 */
export function inputMeanFromBatchNorm(graph: Graph, layer: GraphNode): { mean: number[] } | { reason: string } {
  let node = graph.node(layer.inputs[0]);
  while (MEAN_PRESERVING.has(node.op)) node = graph.node(node.inputs[0]);
  let activation = { fn: "linear", maxValue: null as unknown };
  let through = "";
  if (node.op === "activation") {
    activation = { fn: node.attrs.fn as string, maxValue: node.attrs.maxValue };
    through = ` through "${node.name}"`;
    node = graph.node(node.inputs[0]);
  }
  const stats = batchNormStatsOf(node);
  if (!stats) {
    return {
      reason: node.op === "input"
        ? `its input is the model input "${node.name}", which has no BatchNorm statistics`
        : `its input comes${through} from "${node.name}" (${node.op}), which carries no BatchNorm statistics`,
    };
  }
  const fused = (node.attrs.activation as string | undefined) ?? "linear";
  if (fused !== "linear") {
    if (activation.fn !== "linear") return { reason: `"${node.name}" has a fused ${fused} activation followed by another${through}` };
    activation = { fn: fused, maxValue: null };
  }
  let clip: (i: number) => [number, number];
  if (activation.fn === "linear") clip = () => [-Infinity, Infinity];
  else if (activation.fn === "relu6") clip = () => [0, 6];
  else if (activation.fn === "relu") {
    const max = activation.maxValue;
    clip = Array.isArray(max) ? (i) => [0, max[i] as number] : typeof max === "number" ? () => [0, max] : () => [0, Infinity];
  } else {
    return { reason: `its input passes through a ${activation.fn} activation${through}, whose mean over a normal distribution has no closed form here` };
  }
  const channels = inputChannels(layer);
  if (stats.mean.length !== channels) return { reason: `"${node.name}" has BatchNorm statistics for ${stats.mean.length} channels, the layer reads ${channels}` };
  return { mean: stats.mean.map((m, i) => clippedNormalMean(m, stats.std[i], ...clip(i))) };
}

/** Axis of input channels in each correctable layer's kernel. */
const INPUT_CHANNEL_AXIS: Record<string, number> = { dense: 0, conv1d: 1, conv2d: 2, depthwiseConv2d: 2 };

function inputChannels(layer: GraphNode): number {
  const kernel = layer.params[layer.op === "depthwiseConv2d" ? "depthwise_kernel" : "kernel"];
  return kernel.shape[INPUT_CHANNEL_AXIS[layer.op]];
}

/**
 * E[clip(X, lo, hi)] for X ~ N(mean, std²), derived by splitting the integral at
 * the clip points, with a = (lo − μ)/σ and b = (hi − μ)/σ:
 *   lo·Φ(a) + hi·(1 − Φ(b)) + μ·(Φ(b) − Φ(a)) + σ·(φ(a) − φ(b)).
 * ReLU is [0, ∞): μ·Φ(μ/σ) + σ·φ(μ/σ); ReLU6 is [0, 6]; linear gives μ.
 */
export function clippedNormalMean(mean: number, std: number, lo = -Infinity, hi = Infinity): number {
  if (!(lo <= hi)) throw new Error(`clippedNormalMean: empty clip range [${lo}, ${hi}]`);
  if (!(std >= 0)) throw new Error(`clippedNormalMean: std must be ≥ 0, got ${std}`);
  if (std === 0) return Math.min(Math.max(mean, lo), hi);
  const a = (lo - mean) / std;
  const b = (hi - mean) / std;
  const below = lo === -Infinity ? 0 : lo * normalCdf(a);
  const above = hi === Infinity ? 0 : hi * (1 - normalCdf(b));
  return below + above + mean * (normalCdf(b) - normalCdf(a)) + std * (normalPdf(a) - normalPdf(b));
}

function normalPdf(z: number): number {
  return Number.isFinite(z) ? Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI) : 0;
}

function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Complementary error function, relative error < 1.2e-7 (Numerical Recipes' Chebyshev fit). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const r = z === Infinity ? 0 : t * Math.exp(poly);
  return x >= 0 ? r : 2 - r;
}
