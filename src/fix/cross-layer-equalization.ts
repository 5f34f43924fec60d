import * as tf from "@tensorflow/tfjs";
import { count, disposable, FixResult } from "./fix-result";
import { Graph, GraphEditor } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";
import { batchNormStatsOf } from "./fold-batch-norm";

/** Where output channels (of the first layer) and input channels (of the second) lie in each kernel. */
const LAYERS: Record<string, { param: string; outAxis: number; inAxis: number }> = {
  conv2d: { param: "kernel", outAxis: 3, inAxis: 2 },
  conv1d: { param: "kernel", outAxis: 2, inAxis: 1 },
  dense: { param: "kernel", outAxis: 1, inAxis: 0 },
  // Depthwise with multiplier 1: channel c in is channel c out.
  depthwiseConv2d: { param: "depthwise_kernel", outAxis: 2, inAxis: 2 },
};

/** A layer followed by another weighted layer that CLE cannot scale, and why. */
export interface RejectedPair {
  first: string;
  second: string;
  reason: string;
}

export interface CleResult extends FixResult {
  step: "cross-layer-equalization";
  graph: Graph;
  /** Equalized pairs, in the order they are scaled in each pass. */
  pairs: { first: string; second: string }[];
  /** Consecutive weighted layers left as they were, with the reason (a residual branch, a non-ReLU activation, ...). */
  rejected: RejectedPair[];
  /** Per first layer of a pair: the product of its output channels' scale factors over all passes (output channel i was divided by it). */
  scales: Record<string, number[]>;
  /** ReLU6 activations turned into ReLU (ReLU6 does not commute with scaling), with `relu6: "relu"`. */
  relu6Replaced: string[];
  /** ReLU6 activations given per-channel clips 6/s_i instead, with `relu6: "per-channel"`: FP32 stays exact. */
  relu6Rescaled: string[];
  /** Passes over all pairs (the equalization of chained pairs converges over a few). */
  iterations: number;
}

const scalable = (n: GraphNode) =>
  LAYERS[n.op] !== undefined && !(n.op === "depthwiseConv2d" && n.params.depthwise_kernel.shape[3] !== 1);
const positiveHomogeneous = (n: GraphNode) => n.op === "activation" && n.attrs.fn === "relu";

/** Pairs W1 → [ReLU/ReLU6] → W2 where W1's output reaches only W2 (no residual branch in between). */
export function findPairs(graph: Graph, rejected?: RejectedPair[]): { first: GraphNode; act?: GraphNode; second: GraphNode }[] {
  const pairs: { first: GraphNode; act?: GraphNode; second: GraphNode }[] = [];
  const reject = (first: GraphNode, second: GraphNode, reason: string) => rejected?.push({ first: first.name, second: second.name, reason });
  for (const first of graph.nodes) {
    if (LAYERS[first.op] === undefined || graph.outputs.includes(first.name)) continue;
    let next = graph.consumers(first.name);
    let act: GraphNode | undefined;
    if (next.length === 1 && next[0].op === "activation" && !graph.outputs.includes(next[0].name)) {
      act = next[0];
      next = graph.consumers(act.name);
    }
    const weighted = next.filter((n) => LAYERS[n.op] !== undefined);
    if (weighted.length === 0) continue;
    // A weighted layer follows: say why the pair cannot be scaled, if it cannot.
    const second = weighted[0];
    const fused = first.attrs.activation as string;
    const why = !scalable(first)
      ? `"${first.name}" is a depthwise convolution with channel multiplier ${first.params.depthwise_kernel.shape[3]}: its output channels are not its input channels`
      : !scalable(second)
        ? `"${second.name}" is a depthwise convolution with channel multiplier ${second.params.depthwise_kernel.shape[3]}`
        : fused !== "linear" && fused !== "relu"
          ? `the activation "${fused}" fused into "${first.name}" does not commute with scaling (only ReLU does)`
          : act && !positiveHomogeneous(act)
            ? `the activation "${act.name}" (${act.attrs.fn}) between them does not commute with scaling (only ReLU does)`
            : act && fused !== "linear"
              ? `"${first.name}" already applies an activation before "${act.name}"`
              : next.length !== 1
                ? `"${(act ?? first).name}" also feeds ${next.filter((n) => n !== second).map((n) => `"${n.name}"`).join(", ")}, which the scaling would change`
                : second.inputs.length !== 1
                  ? `"${second.name}" has more than one input`
                  : undefined;
    if (why) reject(first, second, why);
    else pairs.push({ first, act, second });
  }
  return pairs;
}

/** Per-channel max |w| along `axis`. */
function channelRanges(t: tf.Tensor, axis: number): Float32Array {
  return tf.tidy(() => {
    const axes = t.shape.map((_, i) => i).filter((i) => i !== axis);
    return tf.max(tf.abs(t), axes).dataSync() as Float32Array;
  });
}

/**
 * s_i = sqrt(r1_i / r2_i) gives both layers the range sqrt(r1_i · r2_i). A
 * channel the first layer never drives (all-zero weights: its output is the
 * constant ReLU(b)) can take any scale exactly; it gets the one that brings the
 * second layer's channel to the median equalized range, instead of leaving an
 * outlier there (MobileNetV2's dead channels do exactly that). Channels zero in
 * the second layer keep scale 1.
 */
export function equalizingScales(r1: ArrayLike<number>, r2: ArrayLike<number>): number[] {
  const s = Array.from(r1, (v, i) => (v > 0 && r2[i] > 0 ? Math.sqrt(v / r2[i]) : 1));
  const equalized = Array.from(r1, (v, i) => Math.sqrt(v * r2[i])).filter((v) => v > 0).sort((a, b) => a - b);
  if (equalized.length === 0) return s;
  const median = equalized[equalized.length >> 1];
  return s.map((v, i) => (r1[i] === 0 && r2[i] > 0 ? median / r2[i] : v));
}

function broadcastShape(rank: number, axis: number, n: number): number[] {
  return Array.from({ length: rank }, (_, i) => (i === axis ? n : 1));
}

/**
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019): for
 * consecutive layers joined by a ReLU, scale output channel i of the first by
 * 1/s_i and input channel i of the second by s_i, with s_i = sqrt(r1_i / r2_i),
 * so both get the range sqrt(r1_i · r2_i) and per-tensor weight grids fit all
 * channels better. ReLU(x/s) = ReLU(x)/s, so the FP32 function is unchanged —
 * except that ReLU6 does not commute with scaling: ReLU6 layers inside a pair
 * become ReLU (listed in the result), as in the paper and AIMET, or, with
 * `relu6: "per-channel"`, keep a per-channel clip at 6/s_i, which keeps FP32
 * exact (a graph TF.js layers cannot express: export refuses it). Conv → depthwise → conv triples are
 * equalized by repeating over the pairs. Run it on a graph with BatchNorm folded.
 */
export function crossLayerEqualization(source: Graph, options: { iterations?: number; relu6?: "relu" | "per-channel" } = {}): CleResult {
  const iterations = options.iterations ?? 4;
  const relu6 = options.relu6 ?? "relu";
  if (relu6 !== "relu" && relu6 !== "per-channel") throw new Error(`crossLayerEqualization: relu6 must be "relu" or "per-channel", got ${JSON.stringify(relu6)}`);
  // Changes go into a new graph: the source graph stays as it was.
  const editor = new GraphEditor(source, "cross-layer-equalization");
  const relu6Replaced: string[] = [];
  const rejected: RejectedPair[] = [];
  const pairs = findPairs(source, rejected);
  const scales: Record<string, number[]> = {};
  if (pairs.length === 0) {
    const why = rejected.length ? ` Candidates rejected: ${rejected.slice(0, 3).map((r) => `${r.first} → ${r.second}: ${r.reason}`).join("; ")}.` : "";
    throw new Error(`cross-layer equalization found no layer pair to scale in "${source.name}" (it needs conv/dense/depthwise layers joined directly or by a ReLU, with no other reader in between; fold BatchNorm first).${why}`);
  }
  const clipped = pairs.filter((p) => p.act && p.act.attrs.maxValue != null);
  if (relu6 === "relu") {
    for (const { act } of clipped) {
      editor.setAttr(act!.name, "maxValue", null);
      relu6Replaced.push(act!.name);
    }
  }
  try {
    for (let it = 0; it < iterations; it++) {
      for (const { first, second } of pairs) {
        const a = LAYERS[first.op];
        const b = LAYERS[second.op];
        const w1 = editor.param(first.name, a.param)!;
        const w2 = editor.param(second.name, b.param)!;
        const r1 = channelRanges(w1, a.outAxis);
        const r2 = channelRanges(w2, b.inAxis);
        if (r1.length !== r2.length) throw new Error(`cannot equalize "${first.name}" → "${second.name}": ${r1.length} output channels feed ${r2.length} input channels`);
        const s = equalizingScales(r1, r2);
        scales[first.name] = (scales[first.name] ?? s.map(() => 1)).map((v, i) => v * s[i]);
        editor.setParam(first.name, a.param, tf.tidy(() => tf.div(w1, tf.tensor(s, broadcastShape(w1.rank, a.outAxis, s.length)))));
        editor.setParam(second.name, b.param, tf.tidy(() => tf.mul(w2, tf.tensor(s, broadcastShape(w2.rank, b.inAxis, s.length)))));
        const bias = editor.param(first.name, "bias");
        if (bias) editor.setParam(first.name, "bias", tf.tidy(() => tf.div(bias, tf.tensor1d(s))));
        // The first layer's output channel i is now divided by s_i, and so is its BatchNorm distribution.
        const stats = batchNormStatsOf({ ...first, attrs: editor.attrsOf(first.name) });
        if (stats) editor.setAttr(first.name, "batchNormStats", { mean: stats.mean.map((m, i) => m / s[i]), std: stats.std.map((d, i) => d / s[i]) });
      }
    }
  } catch (err) {
    editor.dispose();
    throw err;
  }
  // ReLU6(x)/s = min(ReLU(x/s), 6/s): the clip follows each channel's scale.
  const relu6Rescaled: string[] = [];
  if (relu6 === "per-channel") {
    for (const { first, act } of clipped) {
      const max = act!.attrs.maxValue;
      const scale = scales[first.name];
      if (typeof max !== "number" || !scale) continue;
      editor.setAttr(act!.name, "maxValue", scale.map((s) => max / s));
      relu6Rescaled.push(act!.name);
    }
  }
  const graph = editor.build();
  const diagnosis =
    `Scaled the channels of ${count(pairs.length, "layer pair")} over ${iterations === 1 ? "1 pass" : `${iterations} passes`} so that one per-tensor grid fits every channel of both layers.` +
    (relu6Replaced.length ? ` ${count(relu6Replaced.length, "ReLU6")} became ReLU (ReLU6 does not commute with scaling): the FP32 model changes where values exceeded 6.` : "") +
    (relu6Rescaled.length ? ` ${count(relu6Rescaled.length, "ReLU6")} keep a per-channel clip at 6/s: the FP32 model is unchanged, but a TF.js layers model cannot express it.` : "") +
    (rejected.length ? ` ${count(rejected.length, "candidate pair")} left as they were (${rejected[0].first} → ${rejected[0].second}: ${rejected[0].reason}).` : "");
  return disposable({
    step: "cross-layer-equalization" as const,
    graph,
    pairs: pairs.map((p) => ({ first: p.first.name, second: p.second.name })),
    rejected,
    scales,
    relu6Replaced,
    relu6Rescaled,
    iterations,
    diagnosis,
  }, graph);
}
