import * as tf from "@tensorflow/tfjs";
import { count, disposable, FixResult } from "./fix-result";
import { Graph, GraphEditor } from "../graph/graph";
import { GraphNode, Params } from "../graph/types";
import { findPairs } from "./cross-layer-equalization";
import { batchNormStatsOf } from "./fold-batch-norm";
import { INPUT_AXIS, kernelTimesInputConstant } from "./kernel-math";

export interface AbsorbedPair {
  first: string;
  /** The ReLU between the two layers; absent when they are joined directly (linear). */
  activation?: string;
  second: string;
  /** Output channels of `first` that gave up a constant (c > 0). */
  channels: number;
  /** Mean of c over those channels (0 when none). */
  meanAbsorbed: number;
  maxAbsorbed: number;
}

export interface HighBiasResult extends FixResult {
  step: "high-bias-absorption";
  /** A new graph owning new tensors (the input graph is left as it was): dispose it when done. */
  graph: Graph;
  /** Every pair that qualified, in execution order, with what it absorbed (channels 0: nothing above 3σ). */
  absorbed: AbsorbedPair[];
  /**
   * Pairs whose second layer zero-pads ("same" padding, kernel wider than 1): at the
   * borders the padded zeros do not carry c, so the FP32 function changes there
   * (AIMET makes the same approximation and does not say so).
   */
  approximate: string[];
  /** Pairs with BatchNorm statistics that could not absorb, and why. */
  skipped: { first: string; second: string; reason: string }[];
}

/** Whether zero padding reaches the layer's input: "same" padding with a kernel wider than one position. */
function zeroPads(node: GraphNode): boolean {
  if (node.op === "dense" || node.attrs.padding !== "same") return false;
  const kernel = node.params[INPUT_AXIS[node.op].param];
  return kernel.shape.slice(0, INPUT_AXIS[node.op].inAxis).some((d) => d > 1);
}

/**
 * High-bias absorption (Nagel et al., "Data-Free Quantization Through Weight
 * Equalization and Bias Correction", 2019, §4.2; AIMET's `HighBiasFold`). After
 * CLE, a channel scaled up keeps a large bias, so the first layer's output range
 * (and its activation quantizer's) is wide for nothing. For each pair
 * first → ReLU → second whose first layer carries the folded BatchNorm's
 * statistics N(β, γ²) (rescaled by CLE): c = max(0, β − 3|γ|) per channel,
 * then b1 −= c and b2 += W2 · c. Since ReLU(x − c) + c = ReLU(x) whenever x ≥ c,
 * which the statistics say holds for ~99.9% of values, FP32 barely changes while
 * the first layer's output range shrinks by c. Pairs joined directly (no
 * activation) absorb all of β, exactly, as AIMET does. ReLU6 does not commute
 * with the shift: run crossLayerEqualization first (it makes pair ReLU6s ReLU);
 * pairs still clipped are listed in `skipped`. The first layer's statistics
 * become N(β − c, γ²). Second layers with zero padding are listed in `approximate`
 * (on nsfwjs's MobileNetV2 those are the 3×3 depthwise layers after each
 * expansion, and the border error they make moves a few photos' top-1);
 * `zeroPadded: "skip"` leaves them out instead.
 */
export function highBiasAbsorption(source: Graph, options: { zeroPadded?: "absorb" | "skip" } = {}): HighBiasResult {
  const zeroPadded = options.zeroPadded ?? "absorb";
  if (zeroPadded !== "absorb" && zeroPadded !== "skip") throw new Error(`highBiasAbsorption: zeroPadded must be "absorb" or "skip", got ${JSON.stringify(zeroPadded)}`);
  const pairs = findPairs(source).filter((p) => batchNormStatsOf(p.first));
  if (pairs.length === 0) {
    throw new Error(
      `high-bias absorption found no layer pair with BatchNorm statistics in "${source.name}": fold BatchNorm first with foldBatchNorms, then run crossLayerEqualization, then highBiasAbsorption`,
    );
  }
  const editor = new GraphEditor(source, "high-bias-absorption");
  const absorbed: AbsorbedPair[] = [];
  const approximate: string[] = [];
  const skipped: HighBiasResult["skipped"] = [];
  try {
    for (const { first, act, second } of pairs) {
      const clip = act?.attrs.maxValue;
      if (clip != null) {
        skipped.push({ first: first.name, second: second.name, reason: `"${act!.name}" clips at ${Array.isArray(clip) ? "per-channel values" : clip} (ReLU6): ReLU6(x − c) + c ≠ ReLU6(x); run crossLayerEqualization first, which makes it ReLU` });
        continue;
      }
      if (zeroPadded === "skip" && zeroPads(second)) {
        skipped.push({ first: first.name, second: second.name, reason: `"${second.name}" zero-pads its input ("same" padding): the padded zeros would not carry the absorbed constant` });
        continue;
      }
      const relu = act !== undefined || first.attrs.activation === "relu";
      const stats = batchNormStatsOf({ ...first, attrs: editor.attrsOf(first.name) })!;
      const c = stats.mean.map((beta, i) => (relu ? Math.max(0, beta - 3 * stats.std[i]) : beta));
      const kernel2 = editor.param(second.name, INPUT_AXIS[second.op].param)!;
      const b1 = editor.param(first.name, "bias");
      const b2 = editor.param(second.name, "bias");
      const newB1 = tf.tidy(() => tf.sub(b1 ?? tf.zeros([c.length]), tf.tensor1d(c)));
      const newB2 = tf.tidy(() => {
        const added = kernelTimesInputConstant(second.op, kernel2, c);
        return b2 ? tf.add(b2, added) : added;
      });
      editor.setParam(first.name, "bias", newB1);
      editor.setParam(second.name, "bias", newB2);
      editor.setAttr(first.name, "batchNormStats", { mean: stats.mean.map((m, i) => m - c[i]), std: [...stats.std] });
      const taken = c.filter((v) => v !== 0);
      absorbed.push({
        first: first.name,
        ...(act ? { activation: act.name } : {}),
        second: second.name,
        channels: taken.length,
        meanAbsorbed: taken.length ? taken.reduce((a, b) => a + Math.abs(b), 0) / taken.length : 0,
        maxAbsorbed: taken.reduce((a, b) => Math.max(a, Math.abs(b)), 0),
      });
      if (taken.length && zeroPads(second)) approximate.push(`${first.name} → ${second.name}`);
    }
  } catch (err) {
    editor.dispose();
    throw err;
  }
  const graph = editor.build();
  const channels = absorbed.reduce((n, a) => n + a.channels, 0);
  const diagnosis =
    (channels === 0
      ? `Nothing to absorb: in ${count(absorbed.length, "layer pair")}, no channel has a BatchNorm shift β above 3|γ|.`
      : `Moved the always-on part of ${count(channels, "channel")}' biases (c = max(0, β − 3|γ|)) into the next layer, in ${absorbed.filter((a) => a.channels > 0).length} of ${count(absorbed.length, "layer pair")}: their activation ranges shrink by up to ${Math.max(...absorbed.map((a) => a.maxAbsorbed)).toPrecision(3)}.`) +
    (approximate.length ? ` ${count(approximate.length, "pair")} zero-pad after the ReLU, so the FP32 model changes at the borders (${approximate[0]}).` : "") +
    (skipped.length ? ` ${count(skipped.length, "pair")} skipped (${skipped[0].first} → ${skipped[0].second}: ${skipped[0].reason}).` : "");
  return disposable({ step: "high-bias-absorption" as const, graph, absorbed, approximate, skipped, diagnosis }, graph);
}
