import * as tf from "@tensorflow/tfjs";
import { classIndices } from "./class-labels";

/**
 * Built-in scores, each computed batch by batch against the labels or against
 * the FP32 model's outputs on the same batch. Every score is "higher is better"
 * (MSE is reported negated as `score`, with the plain value beside it), like
 * AIMET's eval callback, so sweeps can compare scores without special cases.
 *
 * Two kinds of score, kept apart everywhere:
 * - a **task** score (accuracy against labels, or the user's `evaluate`): FP32
 *   has a finite score of its own, so "drop from FP32" means something;
 * - a **fidelity** score against FP32 (agreement, SQNR, PSNR, MSE, cosine):
 *   FP32 is the reference and has no score of its own, so targets are absolute
 *   ("at least 40 dB") and findings are the scores themselves.
 */
export type MetricName = "accuracy" | "agreement" | "sqnr" | "mse" | "psnr" | "cosine";
export type ScoreKind = "task" | "fidelity";

export const METRICS: readonly MetricName[] = ["accuracy", "agreement", "sqnr", "mse", "psnr", "cosine"];

export const METRIC_KIND: Record<MetricName, ScoreKind> = { accuracy: "task", agreement: "fidelity", sqnr: "fidelity", mse: "fidelity", psnr: "fidelity", cosine: "fidelity" };

export const METRIC_LABELS: Record<MetricName, string> = {
  accuracy: "top-1 accuracy",
  agreement: "top-1 agreement with FP32",
  sqnr: "output SQNR vs FP32 (dB)",
  mse: "-MSE vs FP32",
  psnr: "PSNR vs FP32 (dB)",
  cosine: "cosine similarity to FP32",
};

/**
 * The score given to outputs identical to FP32's (no noise at all), so results
 * stay finite JSON. FP32 itself is never scored with a fidelity metric.
 */
export const IDENTICAL_DB = 200;

/** Which outputs a metric scores, and how much each counts in the combined score. */
export type OutputSelection = readonly string[] | Readonly<Record<string, number>>;

/** A built-in metric with everything it needs, normalized once (see `metricSpec`). */
export interface MetricSpec {
  metric: MetricName;
  /** Graph output names, in the graph's order. */
  outputNames: readonly string[];
  /** Weight of each graph output in the combined score (0 = not scored); they sum to 1. */
  weights: readonly number[];
  /** PSNR's peak signal; default: the range (max − min) of the FP32 outputs, per output. */
  peak?: number;
}

export interface MetricSpecOptions {
  metric?: MetricName;
  outputs?: OutputSelection;
  peak?: number;
}

/** A graph output as the metric checks it: its name and static shape. */
export interface OutputShape {
  name: string;
  shape: readonly (number | null)[];
}

const shapeText = (shape: readonly (number | null)[]) => `[${shape.map((d, i) => (i === 0 ? "batch" : d === null ? "?" : d)).join(", ")}]`;

/**
 * Whether an output's last axis holds class scores: [batch, classes] with at
 * least two classes. An output whose shape the graph does not know (rank 0 in
 * the graph) is checked on the first batch instead.
 */
export function isClassOutput(shape: readonly (number | null)[]): boolean {
  return shape.length === 0 || (shape.length === 2 && (shape[1] === null || shape[1] >= 2));
}

function classOutputError(metric: MetricName, name: string, shape: readonly (number | null)[], names: readonly string[]): Error {
  return new Error(
    `metric "${metric}" compares arg-max classes, but output "${name}" has shape ${shapeText(shape)}, not a class distribution [batch, classes]: ` +
      `use a fidelity score against FP32 (psnr, sqnr, mse or cosine) or your own evaluate function` +
      (names.length > 1 ? `, or choose the class outputs with the outputs option (outputs: ${names.join(", ")})` : ""),
  );
}

/**
 * The metric a graph is scored with when none is given: agreement when the
 * scored outputs are class distributions, else output SQNR.
 */
export function defaultMetric(outputs: readonly OutputShape[]): MetricName {
  return outputs.every((o) => isClassOutput(o.shape)) ? "agreement" : "sqnr";
}

/**
 * Normalizes a metric, the output selection and PSNR's peak against the graph's
 * outputs, and refuses what cannot mean anything: agreement or accuracy on an
 * output that is not a class distribution, unknown output names, bad weights.
 */
export function metricSpec(options: MetricSpecOptions, outputs: readonly OutputShape[]): MetricSpec {
  const names = outputs.map((o) => o.name);
  // Without a selection, class metrics score the first output (the labels' output), the others every output.
  const metric = options.metric !== undefined ? metricName(options.metric) : defaultMetric(options.outputs === undefined ? outputs.slice(0, 1) : outputs.filter((_, i) => outputWeights(options.outputs, names)[i] > 0));
  const classMetric = metric === "agreement" || metric === "accuracy";
  const weights = outputWeights(options.outputs ?? (classMetric ? names.slice(0, 1) : undefined), names);
  const scored = outputs.filter((_, i) => weights[i] > 0);
  if (metric === "agreement" || metric === "accuracy") {
    const bad = (metric === "accuracy" ? scored.slice(0, 1) : scored).find((o) => !isClassOutput(o.shape));
    if (bad) throw classOutputError(metric, bad.name, bad.shape, names);
  }
  if (metric === "accuracy" && scored.length > 1) throw new Error(`metric "accuracy" scores one output against the labels; choose it with the outputs option (outputs: ${names.join(", ")})`);
  if (options.peak !== undefined && !(Number.isFinite(options.peak) && options.peak > 0)) throw new Error(`PSNR's peak must be a number > 0 (the largest possible signal, e.g. 255 for 8-bit pixels, 1 for [0, 1]), got ${options.peak}`);
  if (options.peak !== undefined && metric !== "psnr") throw new Error(`a peak applies to metric "psnr" only, not "${metric}"`);
  return { metric, outputNames: names, weights, peak: options.peak };
}

function outputWeights(selection: OutputSelection | undefined, names: readonly string[]): number[] {
  if (selection === undefined) return names.map(() => 1 / names.length);
  const raw: Record<string, number> = Array.isArray(selection) ? Object.fromEntries((selection as string[]).map((n) => [n, 1])) : (selection as Record<string, number>);
  const unknown = Object.keys(raw).find((n) => !names.includes(n));
  if (unknown !== undefined) throw new Error(`outputs: the model has no output "${unknown}" (outputs: ${names.join(", ")})`);
  const bad = Object.entries(raw).find(([, w]) => !(Number.isFinite(w) && w >= 0));
  if (bad) throw new Error(`outputs: the weight of "${bad[0]}" must be a number ≥ 0, got ${bad[1]}`);
  const total = Object.values(raw).reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error(`outputs: choose at least one output with a weight > 0 (outputs: ${names.join(", ")})`);
  return names.map((n) => (raw[n] ?? 0) / total);
}

/** One output's running sums. */
class OutputSums {
  hits = 0;
  count = 0;
  sqErr = 0;
  sqRef = 0;
  values = 0;
  min = Infinity;
  max = -Infinity;
  cosine = 0;
  examples = 0;
}

/** One output's score, as results report it. */
export interface OutputScore {
  output: string;
  score: number;
  /** Its weight in the combined score. */
  weight: number;
  /** PSNR: the peak used (given, or the FP32 outputs' range). */
  peak?: number;
}

/** Streams one metric over batches, output by output. */
export class MetricAccumulator {
  private readonly sums: OutputSums[];
  readonly metric: MetricName;

  constructor(readonly spec: MetricSpec) {
    this.metric = spec.metric;
    this.sums = spec.outputNames.map(() => new OutputSums());
  }

  /** Adds one batch: `outputs` of the model scored, `reference` FP32 outputs, `labels` if any. */
  add(outputs: readonly tf.Tensor[], reference: readonly tf.Tensor[] | undefined, labels: tf.Tensor | undefined): void {
    if (outputs.length !== this.sums.length) throw new Error(`scoring: the model gave ${outputs.length} outputs, the metric expects ${this.sums.length} (${this.spec.outputNames.join(", ")})`);
    this.spec.weights.forEach((w, i) => {
      if (w > 0) this.addOutput(i, outputs[i], reference?.[i], labels);
    });
  }

  private addOutput(i: number, out: tf.Tensor, ref: tf.Tensor | undefined, labels: tf.Tensor | undefined): void {
    const s = this.sums[i];
    const n = out.shape[0] ?? 1;
    if ((this.metric === "accuracy" || this.metric === "agreement") && !(out.rank === 2 && out.shape[1]! >= 2)) {
      throw classOutputError(this.metric, this.spec.outputNames[i], [null, ...out.shape.slice(1)], this.spec.outputNames);
    }
    switch (this.metric) {
      case "accuracy": {
        if (!labels) throw new Error(`metric "accuracy" needs labels: give the data labels, or use a fidelity score against FP32 (agreement, sqnr, psnr, mse, cosine)`);
        const target = labels.rank === out.rank ? tf.tidy(() => tf.argMax(labels, -1)) : classIndices(labels);
        s.hits += tf.tidy(() => tf.sum(tf.equal(tf.argMax(out, -1), target).toInt()).dataSync()[0]);
        if (target !== labels) target.dispose();
        s.count += n;
        return;
      }
      case "agreement":
        s.hits += tf.tidy(() => tf.sum(tf.equal(tf.argMax(out, -1), tf.argMax(ref!, -1)).toInt()).dataSync()[0]);
        s.count += n;
        return;
      case "cosine": {
        s.cosine += tf.tidy(() => {
          const o = tf.reshape(out.toFloat(), [n, -1]);
          const r = tf.reshape(ref!.toFloat(), [n, -1]);
          const dot = tf.sum(tf.mul(o, r), 1);
          const norms = tf.mul(tf.norm(o, 2, 1), tf.norm(r, 2, 1));
          // Two zero vectors are the same vector: similarity 1.
          const cos = tf.where(tf.equal(norms, 0), tf.where(tf.equal(tf.sum(tf.abs(tf.sub(o, r)), 1), 0), tf.onesLike(dot), tf.zerosLike(dot)), tf.div(dot, tf.maximum(norms, 1e-30)));
          return tf.sum(cos).dataSync()[0];
        });
        s.count += n;
        return;
      }
      default: {
        const [se, sr, mn, mx] = tf.tidy(() => {
          const o = out.toFloat();
          const r = ref!.toFloat();
          return Array.from(tf.stack([tf.sum(tf.square(tf.sub(o, r))), tf.sum(tf.square(r)), tf.min(r), tf.max(r)]).dataSync());
        });
        s.sqErr += se;
        s.sqRef += sr;
        s.min = Math.min(s.min, mn);
        s.max = Math.max(s.max, mx);
        s.values += out.size;
        s.count += n;
      }
    }
  }

  /** Each scored output's score (higher is better); an error when nothing was added. */
  perOutput(): OutputScore[] {
    return this.spec.outputNames.flatMap((output, i) => {
      const weight = this.spec.weights[i];
      if (weight === 0) return [];
      const s = this.sums[i];
      if (s.count === 0) throw new Error(`metric "${this.metric}": no examples were scored (empty dataset?)`);
      const peak = this.metric === "psnr" ? (this.spec.peak ?? s.max - s.min) : undefined;
      return [{ output, score: this.outputScore(s, peak), weight, ...(peak !== undefined ? { peak } : {}) }];
    });
  }

  /** The combined score: the weighted mean of the scored outputs' scores. */
  score(): number {
    return this.perOutput().reduce((sum, o) => sum + o.weight * o.score, 0);
  }

  private outputScore(s: OutputSums, peak: number | undefined): number {
    switch (this.metric) {
      case "accuracy":
      case "agreement":
        return s.hits / s.count;
      case "cosine":
        return s.cosine / s.count;
      case "mse":
        return s.sqErr === 0 ? 0 : -s.sqErr / s.values;
      case "sqnr":
        // Identical outputs have no noise: a finite ceiling keeps results JSON-friendly.
        return s.sqErr === 0 ? IDENTICAL_DB : Math.min(IDENTICAL_DB, 10 * Math.log10(s.sqRef / s.sqErr));
      case "psnr": {
        if (s.sqErr === 0) return IDENTICAL_DB;
        // A constant FP32 output has no range: fall back to its magnitude, so the score stays finite.
        const p = peak! > 0 ? peak! : Math.max(Math.abs(s.min), Math.abs(s.max), 1e-30);
        return Math.min(IDENTICAL_DB, 10 * Math.log10((p * p) / (s.sqErr / s.values)));
      }
    }
  }

  get needsReference(): boolean {
    return this.metric !== "accuracy";
  }
}

export function metricName(value: unknown): MetricName {
  if (typeof value === "string" && (METRICS as readonly string[]).includes(value)) return value as MetricName;
  throw new Error(`invalid metric: ${JSON.stringify(value)} (expected one of ${METRICS.join(", ")}, or an evaluate function)`);
}

/** The graph outputs' names and static shapes, as the metric checks them. */
export function outputShapes(graph: { outputs: readonly string[]; node(name: string): { outputShape: readonly (number | null)[] } }): OutputShape[] {
  return graph.outputs.map((name) => ({ name, shape: graph.node(name).outputShape }));
}
