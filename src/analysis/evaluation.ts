import { Dataset } from "../data/types";
import { METRIC_KIND, METRIC_LABELS, MetricName, metricName, metricSpec, MetricSpec, OutputScore, OutputSelection, outputShapes, ScoreKind } from "../eval/metric";
import { Graph } from "../graph/graph";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { scoreVariants, ScoredVariant } from "./score-variants";

/**
 * The user's own score of a simulated model (higher is better), like AIMET's
 * eval callback. It is called with a simulation (`sim.forward(inputs)` runs it;
 * `sim.graph` is its FP32 graph), once per variant an analysis compares; the
 * FP32 model (every quantizer bypassed) is scored once per analysis. A task
 * score (accuracy, IoU, keypoint error negated) is finite on FP32. A score
 * against FP32 itself (a PSNR) is +Infinity there: that is accepted on the
 * FP32 model, and makes the score a fidelity score (no drop from FP32; targets
 * are absolute). NaN, −Infinity, or +Infinity on a quantized variant, are errors.
 */
export type EvaluateFn = (sim: QuantSim) => number | Promise<number>;

/** How an analysis scores a simulation: a built-in metric over `data`, or the user's function. */
export interface EvaluationOptions {
  data?: Dataset;
  /** Default: agreement when the (first) output is a class distribution [batch, classes], else sqnr. */
  metric?: MetricName;
  evaluate?: EvaluateFn;
  /**
   * Multi-output models: which outputs built-in metrics score, by name (equal
   * weights) or with weights ({ boxes: 2, scores: 1 }). The combined score is
   * the weighted mean of the outputs' scores. Default: every output (accuracy
   * and agreement: the first).
   */
  outputs?: OutputSelection;
  /** PSNR's peak signal (255 for 8-bit pixels); default the FP32 outputs' range (max − min). */
  peak?: number;
  onProgress?: ProgressFn;
}

/** What a result says about how it was scored. */
export interface MetricInfo {
  metric: MetricName | "custom";
  label: string;
  /**
   * "task": FP32 has a finite score and a drop from it means something;
   * "fidelity": a score against FP32, which has no score of its own.
   */
  kind: ScoreKind;
  /** Multi-output models: the outputs scored and their weights in the combined score. */
  outputs?: { output: string; weight: number }[];
  /** PSNR's peak when given (otherwise each output's FP32 range, reported with its score). */
  peak?: number;
}

/**
 * How a result names its metric. With the graph, the default metric and the
 * outputs are resolved as scoring resolves them; `fp32Score` (an `evaluate`'s
 * score of FP32) tells a custom task score from a custom fidelity score.
 */
export function metricInfo(options: EvaluationOptions, graph?: Graph, fp32Score?: number): MetricInfo {
  if (options.evaluate) return { metric: "custom", label: "evaluate(model)", kind: fp32Score === Infinity ? "fidelity" : "task" };
  if (!graph) {
    const metric = metricName(options.metric ?? "agreement");
    return { metric, label: METRIC_LABELS[metric], kind: METRIC_KIND[metric] };
  }
  return infoOf(resolveMetric(options, graph));
}

/** The built-in metric of `options` on `graph`, checked against its outputs. */
export function resolveMetric(options: EvaluationOptions, graph: Graph): MetricSpec {
  return metricSpec({ metric: options.metric, outputs: options.outputs, peak: options.peak }, outputShapes(graph));
}

export function infoOf(spec: MetricSpec): MetricInfo {
  const peak = spec.metric === "psnr" ? (spec.peak !== undefined ? `, peak ${spec.peak}` : ", peak = FP32 output range") : "";
  const label = peak ? METRIC_LABELS[spec.metric].replace("(dB)", `(dB${peak})`) : METRIC_LABELS[spec.metric];
  const scored = spec.outputNames.map((output, i) => ({ output, weight: spec.weights[i] })).filter((o) => o.weight > 0);
  return {
    metric: spec.metric,
    label,
    kind: METRIC_KIND[spec.metric],
    ...(spec.outputNames.length > 1 ? { outputs: scored } : {}),
    ...(spec.peak !== undefined ? { peak: spec.peak } : {}),
  };
}

/**
 * How a message names a variant. Internal variants ("\u0000fp32", "\u0000quantized")
 * start with NUL so they can never collide with a layer's name; that byte must
 * never reach a message.
 */
export function variantName(key: string): string {
  if (!key.startsWith("\u0000")) return JSON.stringify(key);
  const name = key.slice(1);
  return name === "fp32" ? "the FP32 model" : name === "quantized" ? "the fully quantized model" : JSON.stringify(name);
}

/**
 * Scores variants with the user's `evaluate` (one call per variant, checked for
 * NaN and errors, which name `step` and the variant) or with a built-in metric
 * in a single pass over the data. A variant marked `fp32` may score +Infinity
 * with `evaluate` (a score against FP32); built-in fidelity metrics never score it.
 */
export async function scoreAll(
  step: string,
  variants: readonly ScoredVariant[],
  options: EvaluationOptions & {
    cacheFp32?: boolean;
    onScore?: (key: string, score: number) => void;
    onPartial?: (scores: Map<string, number>, examples: number) => void;
    /** Filled with each variant's per-output scores (built-in metrics). */
    perOutput?: Map<string, OutputScore[]>;
  },
): Promise<Map<string, number>> {
  if (options.evaluate) {
    const scores = new Map<string, number>();
    const start = Date.now();
    for (const [i, v] of variants.entries()) {
      let score: number;
      try {
        score = await options.evaluate(v.sim);
      } catch (err) {
        throw new Error(`${step}: evaluate() threw on ${variantName(v.key)}: ${(err as Error).message}`);
      }
      const accepted = typeof score === "number" && (Number.isFinite(score) || (score === Infinity && v.fp32 === true));
      if (!accepted) {
        const why = score === Infinity ? "; +Infinity is accepted on the FP32 model only (a score against FP32, such as a PSNR, is infinite there)" : "";
        throw new Error(`${step}: evaluate() returned ${String(score)} on ${variantName(v.key)} (expected a finite number${why})`);
      }
      scores.set(v.key, score);
      options.onScore?.(v.key, score);
      options.onProgress?.({ task: step, done: i + 1, total: variants.length, unit: "evaluations", elapsedMs: Date.now() - start, detail: `${variantName(v.key)}: ${score.toFixed(4)}` });
    }
    return scores;
  }
  if (!options.data) throw new Error(`${step}: give data (with a metric) or an evaluate function`);
  const graph = variants[0].sim.graph;
  const spec = resolveMetric(options, graph);
  const scored = spec.metric === "accuracy" ? variants : variants.filter((v) => !v.fp32);
  const scores = await scoreVariants(graph, options.data, scored, {
    metric: spec,
    cacheFp32: options.cacheFp32,
    onProgress: options.onProgress,
    onPartial: options.onPartial,
    perOutput: options.perOutput,
    task: step,
  });
  for (const v of scored) options.onScore?.(v.key, scores.get(v.key)!);
  return scores;
}
