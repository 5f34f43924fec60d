import { requireData } from "../data/types";
import { Graph } from "../graph/graph";
import { QuantSim } from "../quant/quantsim";
import { metricName } from "../eval/metric";
import { EvaluationOptions, MetricInfo, metricInfo, scoreAll } from "./evaluation";
import { scoreVariants } from "./score-variants";

export interface ScoreOptions extends EvaluationOptions {
  /**
   * The FP32 model the built-in metrics that compare with FP32 (agreement, sqnr,
   * mse, psnr) compare against; default the subject's own graph. Give the
   * user's original graph to score a fixed model on the same scale.
   */
  reference?: Graph;
}

export interface ScoreResult {
  step: "score";
  /** What was scored: a simulation, or an FP32 graph (every quantizer bypassed). */
  subject: "simulation" | "fp32";
  metric: MetricInfo;
  score: number;
  diagnosis: string;
}

/**
 * One score of a simulation, or of an FP32 graph: a built-in metric over
 * `data` (accuracy against labels; agreement, sqnr, mse or psnr against the FP32
 * model), or the user's `evaluate(sim)` (higher is better). The same scoring
 * every analysis and fix uses.
 */
export async function score(subject: QuantSim | Graph, options: ScoreOptions): Promise<ScoreResult> {
  if (!options.evaluate) requireData("score", options);
  const fp32 = subject instanceof Graph;
  if (!fp32 && !(subject instanceof QuantSim)) throw new Error("score: the subject must be a QuantSim or a Graph");
  // A graph is scored as a simulation with every quantizer bypassed: exactly FP32, and what `evaluate` expects.
  const base = fp32 ? QuantSim.create(subject, {}) : subject;
  const sim = base.with(fp32 ? { "**": { enabled: false } } : {});
  if (fp32) base.dispose();
  try {
    const metric = metricInfo(options);
    const variants = [{ key: "subject", sim }];
    const scores = options.evaluate
      ? await scoreAll("score", variants, options)
      : await scoreVariants(options.reference ?? sim.graph, options.data!, variants, { metric: metricName(options.metric ?? "agreement"), onProgress: options.onProgress, task: "score" });
    const value = scores.get("subject")!;
    return { step: "score", subject: fp32 ? "fp32" : "simulation", metric, score: value, diagnosis: describe(fp32, metric, value) };
  } finally {
    sim.dispose();
  }
}

function describe(fp32: boolean, metric: MetricInfo, value: number): string {
  const fraction = metric.metric === "accuracy" || metric.metric === "agreement";
  const shown = fraction ? `${(100 * value).toFixed(2)} %` : value.toFixed(4);
  return `${fp32 ? "The FP32 model" : "The simulated model"} scores ${shown} (${metric.label}).`;
}
