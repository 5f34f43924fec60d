import * as tf from "@tensorflow/tfjs";
import { count, disposable, FixResult } from "./fix-result";
import { Graph } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";
import { kernelTimesInputConstant } from "./kernel-math";

/** Layers whose output channels a following BatchNorm can be folded into, and how their weights hold them. */
const FOLDABLE: Record<string, { param: string; channelsLast: (shape: number[]) => number[] }> = {
  conv1d: { param: "kernel", channelsLast: (s) => s },
  conv2d: { param: "kernel", channelsLast: (s) => s },
  dense: { param: "kernel", channelsLast: (s) => s },
  // [kh, kw, in, mult]: output channel c * mult + m is the flattened last two axes.
  depthwiseConv2d: { param: "depthwise_kernel", channelsLast: (s) => [s[0], s[1], s[2] * s[3]] },
  separableConv2d: { param: "pointwise_kernel", channelsLast: (s) => s },
};

/**
 * What a folded BatchNorm said about its layer's output before any activation:
 * per output channel, y ~ N(mean = β, std = |γ|). Kept in the folded node's
 * `attrs.batchNormStats` for the fixes that need it without data (high-bias
 * absorption, analytical bias correction); CLE rescales it with the channels.
 */
export interface BatchNormStats {
  mean: number[];
  std: number[];
}

export function batchNormStatsOf(node: GraphNode): BatchNormStats | undefined {
  return node.attrs.batchNormStats as BatchNormStats | undefined;
}

/** Layers a BatchNorm just before them can be folded into: where their kernel holds input channels. */
const NEXT_FOLDABLE: Record<string, { param: string; inAxis: number }> = {
  conv1d: { param: "kernel", inAxis: 1 },
  conv2d: { param: "kernel", inAxis: 2 },
  dense: { param: "kernel", inAxis: 0 },
  depthwiseConv2d: { param: "depthwise_kernel", inAxis: 2 },
};

export interface FoldResult extends FixResult {
  step: "fold-batch-norm";
  /** A new graph (it owns new tensors; the input graph is left as it was). */
  graph: Graph;
  /**
   * BatchNorms folded, in execution order: into the layer before them (the usual
   * conv → BN), or, with `position: "before"`, into the layer they feed (BN → conv).
   */
  folded: { into: string; batchNorm: string; position: "after" | "before" }[];
  /** BatchNorms directly before a conv that could not be folded into it, and why. */
  notFolded: { batchNorm: string; into: string; reason: string }[];
}

/**
 * Folds every BatchNormalization that directly follows a convolution or dense
 * layer (with no activation in between, and no other reader of that layer's
 * output) into that layer's weights and bias:
 *   W' = W · γ/√(σ² + ε) per output channel,  b' = (b − μ) · γ/√(σ² + ε) + β.
 * Then the reverse case, where it matters (a BatchNorm after an activation,
 * feeding only a conv, depthwise or dense layer): into that layer's input
 * channels, when it does not zero-pad (else listed in `notFolded`).
 * The result computes the same function in FP32 (within float error), as
 * runtimes execute it, which is what quantization should then see.
 */
function foldDiagnosis(folded: FoldResult["folded"], notFolded: FoldResult["notFolded"]): string {
  const before = folded.filter((f) => f.position === "before").length;
  const head = folded.length === 0
    ? "No BatchNorm could be folded: none follows a conv, depthwise, separable or dense layer alone, or feeds one."
    : `Folded ${count(folded.length, "BatchNorm layer")} into ${before ? `the layer before them (${folded.length - before}) or the layer they feed (${before})` : "the layer before them"}, as runtimes do; the FP32 model computes the same.`;
  const left = notFolded.length ? ` ${count(notFolded.length, "BatchNorm")} before a layer stayed: ${notFolded[0].batchNorm} → ${notFolded[0].into}: ${notFolded[0].reason}.` : "";
  return head + left;
}

export function foldBatchNorms(graph: Graph): FoldResult {
  const removed = new Map<string, string>(); // BN name -> the node whose output replaces its own
  const newParams = new Map<string, Params>();
  const folded: FoldResult["folded"] = [];
  const notFolded: FoldResult["notFolded"] = [];
  try {
    for (const node of graph.nodes) {
      const rule = FOLDABLE[node.op];
      if (!rule || node.attrs.activation !== "linear" || graph.outputs.includes(node.name)) continue;
      const consumers = graph.consumers(node.name);
      if (consumers.length !== 1 || consumers[0].op !== "batchNorm") continue;
      const bn = consumers[0];
      newParams.set(node.name, foldInto(node, bn, rule));
      removed.set(bn.name, node.name);
      folded.push({ into: node.name, batchNorm: bn.name, position: "after" });
    }
    // The reverse case: a BatchNorm (after an activation, say) feeding only a conv or dense layer.
    for (const bn of graph.nodes) {
      if (bn.op !== "batchNorm" || removed.has(bn.name) || graph.outputs.includes(bn.name)) continue;
      const consumers = graph.consumers(bn.name);
      const next = consumers[0];
      if (consumers.length !== 1 || !NEXT_FOLDABLE[next.op] || next.inputs.length !== 1) continue;
      const why = whyNotIntoNext(next);
      if (why) {
        notFolded.push({ batchNorm: bn.name, into: next.name, reason: why });
        continue;
      }
      const previous = newParams.get(next.name);
      newParams.set(next.name, foldIntoNext({ ...next, params: previous ?? next.params }, bn));
      if (previous) tf.dispose(Object.values(previous));
      removed.set(bn.name, bn.inputs[0]);
      folded.push({ into: next.name, batchNorm: bn.name, position: "before" });
    }
    // The folded layer keeps its BatchNorm's output statistics, for the data-free fixes after it.
    const attrs = new Map(folded.filter((f) => f.position === "after").map(({ into, batchNorm }) => [into, { batchNormStats: statsOf(graph.node(batchNorm)) }]));
    const result = graph.edit({ by: "fold-batch-norm", params: newParams, attrs, remove: removed });
    return disposable({ step: "fold-batch-norm" as const, graph: result, folded, notFolded, diagnosis: foldDiagnosis(folded, notFolded) }, result);
  } catch (err) {
    for (const p of newParams.values()) tf.dispose(Object.values(p));
    throw err;
  }
}

/** Zero padding would meet the BatchNorm's shift at the borders, where the input holds 0, not the shifted value. */
function whyNotIntoNext(next: GraphNode): string | undefined {
  if (next.op === "dense" || next.attrs.padding !== "same") return undefined;
  const kernel = next.params[NEXT_FOLDABLE[next.op].param];
  const spatial = kernel.shape.slice(0, kernel.rank - 2);
  return spatial.every((d) => d === 1) ? undefined : `"${next.name}" pads with zeros ("same" padding, kernel ${spatial.join("x")}): the BatchNorm's shift would be wrong at the borders`;
}

/**
 * BN → layer: W·(s ⊙ x + t) + b = (W scaled by s on its input axis)·x + (b + W·t),
 * with s = γ/√(σ² + ε), t = β − μ·s. Exact without zero padding.
 */
function foldIntoNext(next: GraphNode, bn: GraphNode): Params {
  const rule = NEXT_FOLDABLE[next.op];
  const eps = bn.attrs.epsilon as number;
  const p = bn.params;
  const [scale, shift] = tf.tidy(() => {
    const inv = tf.rsqrt(tf.add(p.moving_variance, eps));
    const s = p.gamma ? tf.mul(p.gamma, inv) : inv;
    const t = tf.sub(p.beta ?? tf.zerosLike(p.moving_mean), tf.mul(p.moving_mean, s));
    return [s.dataSync() as Float32Array, t.dataSync() as Float32Array];
  });
  const kernel = next.params[rule.param];
  if (kernel.shape[rule.inAxis] !== scale.length) {
    throw new Error(`cannot fold "${bn.name}" into "${next.name}": ${scale.length} BatchNorm channels for ${kernel.shape[rule.inAxis]} input channels`);
  }
  return tf.tidy(() => {
    const shape = kernel.shape.map((d, i) => (i === rule.inAxis ? d : 1));
    const added = kernelTimesInputConstant(next.op, kernel, shift);
    const params: Params = {};
    for (const [k, t] of Object.entries(next.params)) if (k !== rule.param && k !== "bias") params[k] = tf.clone(t);
    params[rule.param] = tf.mul(kernel, tf.tensor(Array.from(scale), shape));
    params.bias = next.params.bias ? tf.add(next.params.bias, added) : added;
    return params as unknown as tf.TensorContainer;
  }) as unknown as Params;
}

function statsOf(bn: GraphNode): BatchNormStats {
  const c = bn.params.moving_mean.shape[0];
  const beta = bn.params.beta ? Array.from(bn.params.beta.dataSync()) : new Array<number>(c).fill(0);
  const gamma = bn.params.gamma ? Array.from(bn.params.gamma.dataSync(), Math.abs) : new Array<number>(c).fill(1);
  return { mean: beta, std: gamma };
}

function foldInto(node: GraphNode, bn: GraphNode, rule: (typeof FOLDABLE)[string]): Params {
  return tf.tidy(() => {
    const eps = bn.attrs.epsilon as number;
    const p = bn.params;
    const inv = tf.rsqrt(tf.add(p.moving_variance, eps));
    const scale = p.gamma ? tf.mul(p.gamma, inv) : inv;
    const kernel = node.params[rule.param];
    const flat = rule.channelsLast(kernel.shape);
    if (flat[flat.length - 1] !== scale.shape[0]) {
      throw new Error(`cannot fold "${bn.name}" into "${node.name}": ${scale.shape[0]} BatchNorm channels for ${flat[flat.length - 1]} output channels`);
    }
    const newKernel = tf.reshape(tf.mul(tf.reshape(kernel, flat), scale), kernel.shape);
    const bias = node.params.bias ?? tf.zerosLike(p.moving_mean);
    let newBias = tf.mul(tf.sub(bias, p.moving_mean), scale);
    if (p.beta) newBias = tf.add(newBias, p.beta);
    const params: Params = {};
    for (const [k, t] of Object.entries(node.params)) if (k !== rule.param && k !== "bias") params[k] = tf.clone(t);
    params[rule.param] = newKernel;
    params.bias = newBias;
    // tidy keeps the tensors of the returned object.
    return params as unknown as tf.TensorContainer;
  }) as unknown as Params;
}
