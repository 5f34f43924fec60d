import { Dataset } from "../data/types";
import { METRIC_LABELS, MetricName, metricName } from "../eval/metric";
import { ProgressFn } from "../progress";
import { QuantSim } from "../quant/quantsim";
import { scoreVariants, ScoredVariant } from "./score-variants";

/** The user's own score of a simulated model (higher is better), like AIMET's eval callback. */
export type EvaluateFn = (sim: QuantSim) => number | Promise<number>;

/** How an analysis scores a simulation: a built-in metric over `data`, or the user's function. */
export interface EvaluationOptions {
  data?: Dataset;
  metric?: MetricName;
  evaluate?: EvaluateFn;
  onProgress?: ProgressFn;
}

/** What a result says about how it was scored. */
export interface MetricInfo {
  metric: MetricName | "custom";
  label: string;
}

export function metricInfo(options: EvaluationOptions): MetricInfo {
  if (options.evaluate) return { metric: "custom", label: "evaluate(model)" };
  const metric = metricName(options.metric ?? "agreement");
  return { metric, label: METRIC_LABELS[metric] };
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
 * in a single pass over the data.
 */
export async function scoreAll(
  step: string,
  variants: readonly ScoredVariant[],
  options: EvaluationOptions & {
    cacheFp32?: boolean;
    onScore?: (key: string, score: number) => void;
    onPartial?: (scores: Map<string, number>, examples: number) => void;
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
      if (typeof score !== "number" || !Number.isFinite(score)) {
        throw new Error(`${step}: evaluate() returned ${String(score)} on ${variantName(v.key)} (expected a finite number)`);
      }
      scores.set(v.key, score);
      options.onScore?.(v.key, score);
      options.onProgress?.({ task: step, done: i + 1, total: variants.length, unit: "evaluations", elapsedMs: Date.now() - start, detail: `${variantName(v.key)}: ${score.toFixed(4)}` });
    }
    return scores;
  }
  if (!options.data) throw new Error(`${step}: give data (with a metric) or an evaluate function`);
  const metric = metricName(options.metric ?? "agreement");
  const scores = await scoreVariants(variants[0].sim.graph, options.data, variants, {
    metric,
    cacheFp32: options.cacheFp32,
    onProgress: options.onProgress,
    onPartial: options.onPartial,
    task: step,
  });
  for (const v of variants) options.onScore?.(v.key, scores.get(v.key)!);
  return scores;
}
