import * as tf from "@tensorflow/tfjs";
import { Graph } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";

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

export interface FoldResult {
  /** A new graph (it owns new tensors; the input graph is left as it was). */
  graph: Graph;
  /** "conv ← bn" pairs folded, in execution order. */
  folded: { into: string; batchNorm: string }[];
}

/**
 * Folds every BatchNormalization that directly follows a convolution or dense
 * layer (with no activation in between, and no other reader of that layer's
 * output) into that layer's weights and bias:
 *   W' = W · γ/√(σ² + ε) per output channel,  b' = (b − μ) · γ/√(σ² + ε) + β.
 * The result computes the same function in FP32 (within float error), as
 * runtimes execute it, which is what quantization should then see.
 */
export function foldBatchNorms(graph: Graph): FoldResult {
  const removed = new Map<string, string>(); // BN name -> the layer it was folded into
  const newParams = new Map<string, Params>();
  const folded: FoldResult["folded"] = [];
  try {
    for (const node of graph.nodes) {
      const rule = FOLDABLE[node.op];
      if (!rule || node.attrs.activation !== "linear" || graph.outputs.includes(node.name)) continue;
      const consumers = graph.consumers(node.name);
      if (consumers.length !== 1 || consumers[0].op !== "batchNorm") continue;
      const bn = consumers[0];
      newParams.set(node.name, foldInto(node, bn, rule));
      removed.set(bn.name, node.name);
      folded.push({ into: node.name, batchNorm: bn.name });
    }
    const stats = new Map(folded.map(({ into, batchNorm }) => [into, statsOf(graph.node(batchNorm))]));
    const rename = (name: string) => removed.get(name) ?? name;
    const nodes: GraphNode[] = graph.nodes
      .filter((n) => !removed.has(n.name))
      .map((n) => ({
        ...n,
        inputs: n.inputs.map(rename),
        params: newParams.get(n.name) ?? Object.fromEntries(Object.entries(n.params).map(([k, t]) => [k, tf.clone(t)])),
        attrs: stats.has(n.name) ? { ...n.attrs, batchNormStats: stats.get(n.name) } : { ...n.attrs },
      }));
    return { graph: new Graph({ name: graph.name, nodes, inputs: [...graph.inputs], outputs: graph.outputs.map(rename) }), folded };
  } catch (err) {
    for (const p of newParams.values()) tf.dispose(Object.values(p));
    throw err;
  }
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
