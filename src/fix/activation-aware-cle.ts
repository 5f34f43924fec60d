import * as tf from "@tensorflow/tfjs";
import { EvaluationOptions } from "../analysis/evaluation";
import { Dataset } from "../data/types";
import { Graph, GraphEditor } from "../graph/graph";
import { ProgressFn } from "../progress";
import { forEachBatch } from "../runner/for-each-batch";
import { forward } from "../graph/forward";
import { QuantSim } from "../quant/quantsim";
import { BeforeAfter, scoreBeforeAfter } from "./before-after";
import { crossLayerEqualization, equalizingScales, findPairs, RejectedPair } from "./cross-layer-equalization";
import { batchNormStatsOf } from "./fold-batch-norm";

/**
 * Where output channels (of a pair's first layer) and input channels (of its
 * second) lie in each kernel: the same layers cross-layer-equalization.ts
 * scales (its table is not exported; `findPairs` only returns these ops).
 */
const KERNEL_AXES: Record<string, { param: string; outAxis: number; inAxis: number }> = {
  conv2d: { param: "kernel", outAxis: 3, inAxis: 2 },
  conv1d: { param: "kernel", outAxis: 2, inAxis: 1 },
  dense: { param: "kernel", outAxis: 1, inAxis: 0 },
  depthwiseConv2d: { param: "depthwise_kernel", outAxis: 2, inAxis: 2 },
};

/** What happens to a ReLU6 (a ReLU with an upper clip) between the two layers of a pair. */
export type AwareRelu6Mode = "per-channel" | "relu" | "keep";

export interface ActivationAwareCleOptions {
  /** Calibration data: the activation channel ranges between each pair are measured on it. */
  data: Dataset;
  /** Migration strength in [0, 1]: 0 is vanilla CLE (weights only), 1 makes every activation channel's range equal. Default 0.5. */
  alpha?: number;
  /**
   * ReLU6 inside a pair. "per-channel" (default): clips 6/s_i, FP32 exact, not
   * expressible as a TF.js layer. "relu": ReLU6 becomes ReLU, as AIMET's CLE.
   * "keep": ReLU6 stays, and each channel's accumulated scale is constrained so
   * the clip acts as before on the calibration data (see `relu6Bound`).
   */
  relu6?: AwareRelu6Mode;
  /** Passes over all pairs (chains conv → depthwise → conv converge over a few). Default 4. */
  iterations?: number;
  /** With a simulation as subject: score it before and after (`scores`). */
  evaluation?: EvaluationOptions;
  onProgress?: ProgressFn;
}

/** One activation between the two layers of a pair: its channel ranges in the three states compared. */
export interface ActivationChannelRanges {
  /** Index of the pair in graph order (the view sorts by it). */
  index: number;
  first: string;
  second: string;
  /** The node whose output is the activation quantized between the pair (the ReLU, or the first layer itself). */
  activation: string;
  /** max |a_i| per channel: in the input graph, after vanilla CLE (same passes, alpha 0), and after this variant. */
  original: number[];
  cle: number[];
  aware: number[];
  /** Largest over median channel range in each state: how much of a per-tensor grid the typical channel leaves unused. */
  ratio: { original: number; cle: number; aware: number };
  /** The same for the weights around it: the wider of W1's output-channel and W2's input-channel spreads (largest over median max |w|). */
  weightRatio: { original: number; cle: number; aware: number };
}

export interface ActivationAwareCleResult {
  step: "activation-aware-cle";
  alpha: number;
  relu6: AwareRelu6Mode;
  iterations: number;
  /** The equalized graph (new tensors, the caller disposes it; after `sim` when there is one). */
  graph: Graph;
  /** With a simulation as subject: its settings over `graph`, calibrated on `data`. */
  sim?: QuantSim;
  pairs: { first: string; second: string }[];
  rejected: RejectedPair[];
  /** Per first layer of a pair: the accumulated scale s_i of each output channel (divided by it). */
  scales: Record<string, number[]>;
  activations: ActivationChannelRanges[];
  relu6Replaced: string[];
  relu6Rescaled: string[];
  /** With relu6 "keep": per ReLU6, channels whose scale the clip constrained (saturated: pinned to 1; amplified: capped at 6/m). */
  relu6Bound: { activation: string; pinned: number; capped: number }[];
  examples: number;
  scores?: BeforeAfter;
  diagnosis: string;
}

type Pair = ReturnType<typeof findPairs>[number];

/**
 * Activation-aware cross-layer equalization: CLE whose per-channel scales also
 * weigh the range of the activation between the two layers, measured on data,
 * with a migration strength α as in SmoothQuant (Xiao et al., 2023).
 *
 * The formula, for W1 → ReLU6 → W2 (conv, depthwise or dense layers): channel i
 * of W1's output is divided by s_i, so the activation a_i is too (ReLU is
 * positively homogeneous), and W2's input channel i is multiplied by s_i; FP32
 * is unchanged. With r1_i = max|W1 out-channel i|, r2_i = max|W2 in-channel i|
 * and r_a_i = max|a_i| on the calibration data,
 *
 *   s_i = c_i · (ρ_i / G)^α,   c_i = sqrt(r1_i / r2_i) (vanilla CLE's scale),
 *   ρ_i = r_a_i / c_i (channel i's activation range after vanilla CLE),
 *   G = geometric mean of the ρ_i,
 *
 * i.e. log s_i minimizes α·(log(r_a_i / s_i) − log G)² + (1 − α)·(log(r1_i / s_i) − log(r2_i·s_i))² / 4:
 * a weighted least squares between "every activation channel at the common
 * range G" and "W1 and W2 at equal ranges" (vanilla CLE). Consequences, exact
 * for one pair after one pass: α = 0 is vanilla CLE; the spread of the
 * activation's log channel ranges is (1 − α) times vanilla CLE's; α = 1 gives
 * every activation channel the range G and leaves the whole spread to the
 * weights (W1 takes r1_i·G/r_a_i, W2 takes r2_i·r_a_i/G). Applying the scales
 * again gives s = 1 (the update is a projection), so chained pairs converge over
 * passes like vanilla CLE; activation ranges are tracked as r_a_i / s_i (W1's
 * input does not move when W1 is scaled), so data is read once. Channels with
 * no activation range (never active) or a zero weight range keep vanilla CLE's
 * choice (its median rule for channels W1 never drives).
 *
 * ReLU6 clips at 6, which does not scale: ReLU6(x)/s = min(ReLU(x/s), 6/s).
 * - "per-channel" keeps it exact with a clip 6/s_i per channel (a graph TF.js
 *   layers cannot express; export refuses it).
 * - "relu" makes it ReLU (AIMET's choice): the function changes, and the
 *   activation ranges become the unclipped pre-activation maxima m_i.
 * - "keep" leaves ReLU6 in place and bounds the accumulated scale S_i so that
 *   min(ReLU(x/S_i), 6) = ReLU6(x)/S_i on every calibration value: a channel
 *   that reaches the clip (m_i ≥ 6) must keep S_i = 1; one that stays below it
 *   can be attenuated freely (S_i > 1) but amplified (S_i < 1: the "positive"
 *   direction that flattening small channels needs) only while m_i / S_i ≤ 6,
 *   i.e. S_i ≥ m_i / 6. Exact on the calibration data, not on inputs that
 *   drive a channel past its calibration maximum.
 *
 * Steps: 1. normalize options; 2. find the pairs (vanilla CLE's rules);
 * 3. measure each pair's pre-activation channel min/max on `data`;
 * 4. passes over the pairs, scaling copies of the kernels, biases and
 * BatchNorm statistics, while replaying vanilla CLE's scales (α = 0) on the
 * ranges for comparison; 5. activation ranges in the three states, diagnosis;
 * 6. with a simulation: a new one over the result, calibrated, and scores.
 *
 * Run it on a graph with BatchNorm folded. The input graph (or simulation) is left as it was.
 */
export async function activationAwareCle(subject: Graph | QuantSim, options: ActivationAwareCleOptions): Promise<ActivationAwareCleResult> {
  // 1. Options, once.
  const { data, alpha, relu6, iterations } = normalizeOptions(options);
  const sim = subject instanceof QuantSim ? subject : undefined;
  const source = sim ? sim.graph : subject;
  if (!(source instanceof Graph)) throw new Error("activationAwareCle: the subject must be a Graph (qd.loadGraph, foldBatchNorms(...).graph) or a QuantSim");

  // 2. Pairs.
  const rejected: RejectedPair[] = [];
  const pairs = findPairs(source, rejected);
  if (pairs.length === 0) {
    const why = rejected.length ? ` Candidates rejected: ${rejected.slice(0, 3).map((r) => `${r.first} → ${r.second}: ${r.reason}`).join("; ")}.` : "";
    throw new Error(`activationAwareCle found no layer pair to scale in "${source.name}" (it needs conv/dense/depthwise layers joined directly or by a ReLU, with no other reader in between; fold BatchNorm first).${why}`);
  }

  // 3. Pre-activation channel ranges (before any copy is made: a bad dataset leaks nothing).
  const { preAct, examples } = await measurePreActivations(source, pairs, data, options.onProgress);

  // 4. Passes over the pairs, as edits of the source graph (Graph.edit through a GraphEditor).
  const editor = new GraphEditor(source, "activation-aware-cle");
  try {
    const clipped = (p: Pair) => p.act !== undefined && p.act.attrs.maxValue != null;
    /** Channel i's clip: a ReLU6's 6, or the per-channel clips an earlier CLE ("per-channel" ReLU6 mode) left. */
    const clipAt = (p: Pair, i: number) => {
      const max = p.act!.attrs.maxValue as number | number[];
      return Array.isArray(max) ? max[i] : max;
    };
    const clipOf = (p: Pair, i: number) => (clipped(p) && relu6 !== "relu" ? clipAt(p, i) : Infinity);
    const perChannelClips = pairs.filter((p) => clipped(p) && Array.isArray(p.act!.attrs.maxValue)).map((p) => p.act!.name);
    if (relu6 === "keep" && perChannelClips.length) throw new Error(`activationAwareCle: relu6 "keep" needs one clip per activation, but ${perChannelClips[0]} has per-channel clips (from an earlier CLE); use relu6 "per-channel"`);
    /** max |a_i| before any scaling, from the pre-activation min/max and what the activation does. */
    const activationRange = (p: Pair): number[] => {
      const { min, max } = preAct.get(p.first.name)!;
      if (!p.act && p.first.attrs.activation === "linear") return max.map((m, i) => Math.max(Math.abs(m), Math.abs(min[i])));
      return max.map((m, i) => Math.min(Math.max(m, 0), clipOf(p, i)));
    };
    const r0 = new Map(pairs.map((p) => [p.first.name, activationRange(p)]));
    const scales: Record<string, number[]> = {};
    const bound = new Map<string, { pinned: Set<number>; capped: Set<number> }>();
    for (let it = 0; it < iterations; it++) {
      for (const p of pairs) {
        const a = KERNEL_AXES[p.first.op];
        const b = KERNEL_AXES[p.second.op];
        const r1 = channelRanges(editor.param(p.first.name, a.param)!, a.outAxis);
        const r2 = channelRanges(editor.param(p.second.name, b.param)!, b.inAxis);
        if (r1.length !== r2.length) throw new Error(`cannot equalize "${p.first.name}" → "${p.second.name}": ${r1.length} output channels feed ${r2.length} input channels`);
        const S = scales[p.first.name] ?? r1.map(() => 1);
        // W1's input does not move when W1 is scaled: the activation is the measured one over the accumulated scale.
        const ra = r0.get(p.first.name)!.map((v, i) => v / S[i]);
        let s = awareScales(r1, r2, ra, alpha);
        if (relu6 === "keep" && clipped(p)) s = boundByClip(s, S, preAct.get(p.first.name)!.max, p.act!.attrs.maxValue as number, bound, p.act!.name);
        scales[p.first.name] = S.map((v, i) => v * s[i]);
        scaleLayers(editor, p, s);
      }
    }
    // Vanilla CLE's own scales (same pairs and passes), for the comparison.
    const vanillaRun = crossLayerEqualization(source, { iterations, relu6: relu6 === "relu" ? "relu" : "per-channel" });
    const vanilla = vanillaRun.scales;
    /** The weights take on what the activations give up: the wider of W1's output-channel and W2's input-channel spreads. */
    const weightSpread = (p: Pair, paramOf: (node: string, key: string) => tf.Tensor) => {
      const a = KERNEL_AXES[p.first.op];
      const b = KERNEL_AXES[p.second.op];
      return Math.max(spread(channelRanges(paramOf(p.first.name, a.param), a.outAxis)), spread(channelRanges(paramOf(p.second.name, b.param), b.inAxis)));
    };
    const weightRatios = pairs.map((p) => ({
      original: weightSpread(p, (n, k) => source.node(n).params[k]),
      cle: weightSpread(p, (n, k) => vanillaRun.graph.node(n).params[k]),
      aware: weightSpread(p, (n, k) => editor.param(n, k)!),
    }));
    vanillaRun.graph.dispose();
    // ReLU6 as the mode says: ReLU, per-channel clips 6/S_i, or kept.
    const relu6Replaced: string[] = [];
    const relu6Rescaled: string[] = [];
    for (const p of pairs.filter(clipped)) {
      if (relu6 === "relu") {
        editor.setAttr(p.act!.name, "maxValue", null);
        relu6Replaced.push(p.act!.name);
      } else if (relu6 === "per-channel") {
        editor.setAttr(p.act!.name, "maxValue", scales[p.first.name].map((s, i) => clipAt(p, i) / s));
        relu6Rescaled.push(p.act!.name);
      }
    }

    // 5. Activation ranges: original, vanilla CLE, this variant.
    const activations = pairs.map((p, index): ActivationChannelRanges => {
      const r = r0.get(p.first.name)!;
      // Vanilla CLE's ReLU6 follows the same mode; "keep" is not one of its modes: compare with per-channel clips.
      const original = clipped(p) && relu6 === "relu" ? activationRangeWithClip(preAct.get(p.first.name)!.max, (i) => clipAt(p, i)) : r;
      const cle = r.map((v, i) => v / vanilla[p.first.name][i]);
      const aware = r.map((v, i) => v / scales[p.first.name][i]);
      return { index, first: p.first.name, second: p.second.name, activation: (p.act ?? p.first).name, original, cle, aware, ratio: { original: spread(original), cle: spread(cle), aware: spread(aware) }, weightRatio: weightRatios[index] };
    });
    const relu6Bound = [...bound].map(([activation, b]) => ({ activation, pinned: b.pinned.size, capped: b.capped.size }));
    const graph = editor.build();

    // 6. The simulation over the result, and scores.
    let next: QuantSim | undefined;
    let scores: BeforeAfter | undefined;
    if (sim) {
      try {
        next = await sim.withGraph(graph).calibrate(data, { onProgress: options.onProgress });
        if (options.evaluation) {
          const before = sim.with({});
          try {
            scores = await scoreBeforeAfter({ before, after: next }, { ...options.evaluation, step: "activation-aware CLE" });
          } finally {
            before.dispose();
          }
        }
      } catch (err) {
        next?.dispose();
        graph.dispose();
        throw err;
      }
    }
    return {
      step: "activation-aware-cle",
      alpha,
      relu6,
      iterations,
      graph,
      ...(next ? { sim: next } : {}),
      pairs: pairs.map((p) => ({ first: p.first.name, second: p.second.name })),
      rejected,
      scales,
      activations,
      relu6Replaced,
      relu6Rescaled,
      relu6Bound,
      examples,
      ...(scores ? { scores } : {}),
      diagnosis: diagnose(activations, alpha, relu6, relu6Bound, scores),
    };
  } finally {
    // Frees the scaled tensors when no graph was built from them (error paths); a no-op after build().
    editor.dispose();
  }
}

function normalizeOptions(options: ActivationAwareCleOptions): { data: Dataset; alpha: number; relu6: AwareRelu6Mode; iterations: number } {
  if (options === null || typeof options !== "object") throw new Error("activationAwareCle: options must be an object with at least { data }");
  const { data } = options;
  if (!data || typeof (data as Dataset).batches !== "function") {
    throw new Error('activationAwareCle: options.data must be a dataset (qd.toDataset(...)): the activation ranges between each pair are measured on it');
  }
  const alpha = options.alpha ?? 0.5;
  if (typeof alpha !== "number" || !(alpha >= 0 && alpha <= 1)) throw new Error(`activationAwareCle: alpha must be a number in [0, 1], got ${JSON.stringify(alpha)}`);
  const relu6 = options.relu6 ?? "per-channel";
  if (relu6 !== "per-channel" && relu6 !== "relu" && relu6 !== "keep") throw new Error(`activationAwareCle: relu6 must be "per-channel", "relu" or "keep", got ${JSON.stringify(relu6)}`);
  const iterations = options.iterations ?? 4;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`activationAwareCle: iterations must be a positive integer, got ${JSON.stringify(iterations)}`);
  return { data, alpha, relu6, iterations };
}

/**
 * The scales of one pass: vanilla CLE's c_i, moved a fraction α (in log) toward
 * the ones that give every activation channel the common range G.
 */
export function awareScales(r1: ArrayLike<number>, r2: ArrayLike<number>, ra: ArrayLike<number>, alpha: number): number[] {
  const c = equalizingScales(r1, r2);
  const rho = c.map((v, i) => ra[i] / v);
  const usable = rho.map((v, i) => v > 0 && Number.isFinite(v) && r2[i] > 0);
  const logs = rho.filter((_, i) => usable[i]).map(Math.log);
  if (logs.length === 0 || alpha === 0) return c;
  const logG = logs.reduce((x, y) => x + y, 0) / logs.length;
  return c.map((v, i) => (usable[i] ? v * Math.exp(alpha * (Math.log(rho[i]) - logG)) : v));
}

/** ReLU6 kept: the accumulated scale S·s of each channel bounded so the clip at `clip` acts on calibration data as before. */
function boundByClip(s: number[], S: number[], preMax: number[], clip: number, bound: Map<string, { pinned: Set<number>; capped: Set<number> }>, act: string): number[] {
  const b = bound.get(act) ?? { pinned: new Set<number>(), capped: new Set<number>() };
  bound.set(act, b);
  return s.map((v, i) => {
    const total = S[i] * v;
    const m = preMax[i];
    if (m >= clip) {
      if (Math.abs(total - 1) > 1e-12) b.pinned.add(i);
      return 1 / S[i];
    }
    if (m > 0 && total < m / clip) {
      b.capped.add(i);
      return m / clip / S[i];
    }
    return v;
  });
}

function scaleLayers(editor: GraphEditor, p: Pair, s: number[]): void {
  const a = KERNEL_AXES[p.first.op];
  const b = KERNEL_AXES[p.second.op];
  const w1 = editor.param(p.first.name, a.param)!;
  const w2 = editor.param(p.second.name, b.param)!;
  editor.setParam(p.first.name, a.param, tf.tidy(() => tf.div(w1, tf.tensor(s, broadcastShape(w1.rank, a.outAxis, s.length)))));
  editor.setParam(p.second.name, b.param, tf.tidy(() => tf.mul(w2, tf.tensor(s, broadcastShape(w2.rank, b.inAxis, s.length)))));
  const bias = editor.param(p.first.name, "bias");
  if (bias) editor.setParam(p.first.name, "bias", tf.tidy(() => tf.div(bias, tf.tensor1d(s))));
  // Output channel i is divided by s_i, and so is the BatchNorm distribution folded into it.
  const stats = batchNormStatsOf({ ...p.first, attrs: editor.attrsOf(p.first.name) });
  if (stats) editor.setAttr(p.first.name, "batchNormStats", { mean: stats.mean.map((m, i) => m / s[i]), std: stats.std.map((d, i) => d / s[i]) });
}

/** Per-channel min and max of each pair's first-layer output (before the ReLU between the pair), over the data. */
async function measurePreActivations(graph: Graph, pairs: Pair[], data: Dataset, onProgress?: ProgressFn): Promise<{ preAct: Map<string, { min: number[]; max: number[] }>; examples: number }> {
  const wanted = new Set(pairs.map((p) => p.first.name));
  const preAct = new Map<string, { min: number[]; max: number[] }>();
  const summary = await forEachBatch(graph, data, { task: "activation-aware CLE: activation ranges", onProgress }, (batch) => {
    const outputs = forward(graph, batch.inputs, {
      hook: (node, out) => {
        if (!wanted.has(node.name)) return;
        const axes = out.shape.slice(0, -1).map((_, i) => i);
        const min = Array.from(tf.min(out, axes).dataSync());
        const max = Array.from(tf.max(out, axes).dataSync());
        const seen = preAct.get(node.name);
        preAct.set(node.name, seen ? { min: seen.min.map((v, i) => Math.min(v, min[i])), max: seen.max.map((v, i) => Math.max(v, max[i])) } : { min, max });
      },
    });
    tf.dispose(outputs);
  });
  return { preAct, examples: summary.examples };
}

/** Per-channel max |w| along `axis`. */
function channelRanges(t: tf.Tensor, axis: number): number[] {
  return tf.tidy(() => Array.from(tf.max(tf.abs(t), t.shape.map((_, i) => i).filter((i) => i !== axis)).dataSync()));
}

function broadcastShape(rank: number, axis: number, n: number): number[] {
  return Array.from({ length: rank }, (_, i) => (i === axis ? n : 1));
}

function activationRangeWithClip(preMax: number[], clip: (channel: number) => number): number[] {
  return preMax.map((m, i) => Math.min(Math.max(m, 0), clip(i)));
}

/** Largest over (lower) median channel range, channels with a non-zero range only; 1 when all are equal. */
export function spread(ranges: readonly number[]): number {
  const live = ranges.filter((v) => v > 0).sort((a, b) => a - b);
  if (live.length === 0) return 1;
  return live[live.length - 1] / live[(live.length - 1) >> 1];
}

function diagnose(rows: ActivationChannelRanges[], alpha: number, relu6: AwareRelu6Mode, bound: ActivationAwareCleResult["relu6Bound"], scores?: BeforeAfter): string {
  const worst = (key: "original" | "cle" | "aware") => rows.reduce((w, r) => (r.ratio[key] > w.ratio[key] ? r : w));
  const median = (key: "original" | "cle" | "aware") => {
    const v = rows.map((r) => r.ratio[key]).sort((a, b) => a - b);
    return v[(v.length - 1) >> 1];
  };
  const weightMedian = (key: "cle" | "aware") => {
    const v = rows.map((r) => r.weightRatio[key]).sort((a, b) => a - b);
    return v[(v.length - 1) >> 1];
  };
  const weightWorst = (key: "cle" | "aware") => Math.max(...rows.map((r) => r.weightRatio[key]));
  const wc = worst("cle");
  const wa = worst("aware");
  const parts = [
    `Vanilla CLE leaves the activations between its ${rows.length} pairs uneven: the typical layer's largest channel range is ${median("cle").toFixed(1)}× its median channel's (${median("original").toFixed(1)}× before any CLE), and up to ${wc.ratio.cle.toFixed(1)}× in ${wc.activation}.`,
    `With the activation ranges weighed in (α = ${alpha}), the typical ratio is ${median("aware").toFixed(1)}× and the worst ${wa.ratio.aware.toFixed(1)}× (${wa.activation}), so a per-tensor activation grid wastes fewer of its steps on one channel.`,
    `The weights take on the difference: their widest channel spread per pair goes from ${weightMedian("cle").toFixed(1)}× (vanilla CLE) to ${weightMedian("aware").toFixed(1)}× typically, ${weightWorst("cle").toFixed(1)}× to ${weightWorst("aware").toFixed(1)}× at worst${weightWorst("aware") > 2 * weightWorst("cle") ? ": with per-tensor weights that can cost more than the activations gain; per-channel weights do not pay it for W1 or for a depthwise W2" : ""}.`,
  ];
  if (relu6 === "keep") {
    const pinned = bound.reduce((s, b) => s + b.pinned, 0);
    const capped = bound.reduce((s, b) => s + b.capped, 0);
    parts.push(`ReLU6 was kept, so ${pinned} channels that reach its clip kept scale 1 and ${capped} could not be amplified past the clip.`);
  }
  if (scores) {
    parts.push(scores.change > 0
      ? `The score rose from ${scores.before.toFixed(4)} to ${scores.after.toFixed(4)} (${scores.metric.label}).`
      : `The score did not rise (${scores.before.toFixed(4)} → ${scores.after.toFixed(4)}, ${scores.metric.label}): try a smaller α, or keep vanilla CLE.`);
  }
  return parts.join(" ");
}
