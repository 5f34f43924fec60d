import { requireData } from "../data/types";
import { OutputScore } from "../eval/metric";
import { scoreText } from "../eval/score-text";
import { Graph } from "../graph/graph";
import { QuantSim } from "../quant/quantsim";
import { EvaluationOptions, MetricInfo, metricInfo, resolveMetric, scoreAll } from "./evaluation";
import { scoreVariants } from "./score-variants";

export interface ScoreOptions extends EvaluationOptions {
  /**
   * The FP32 model the built-in metrics that compare with FP32 (agreement, sqnr,
   * mse, psnr, cosine) compare against; default the subject's own graph. Give the
   * user's original graph to score a fixed model on the same scale.
   */
  reference?: Graph;
}

export interface ScoreResult {
  step: "score";
  /** What was scored: a simulation, or an FP32 graph (every quantizer bypassed). */
  subject: "simulation" | "fp32";
  metric: MetricInfo;
  /** The combined score (the weighted mean of the outputs' scores for multi-output models). */
  score: number;
  /** Built-in metrics: each scored output's score, its weight and (PSNR) its peak. */
  outputs?: OutputScore[];
  diagnosis: string;
}

/**
 * One score of a simulation, or of an FP32 graph: a built-in metric over
 * `data` (accuracy against labels; agreement, sqnr, mse, psnr or cosine against the FP32
 * model), or the user's `evaluate(sim)` (higher is better). The same scoring
 * every analysis and fix uses. An FP32 graph has no fidelity score against
 * itself: scoring one with a fidelity metric needs another `reference`.
 */
export async function score(subject: QuantSim | Graph, options: ScoreOptions): Promise<ScoreResult> {
  if (!options.evaluate) requireData("score", options);
  const fp32 = subject instanceof Graph;
  if (!fp32 && !(subject instanceof QuantSim)) throw new Error("score: the subject must be a QuantSim or a Graph");
  const graph = fp32 ? subject : subject.graph;
  const spec = options.evaluate ? undefined : resolveMetric(options, options.reference ?? graph);
  if (fp32 && spec && spec.metric !== "accuracy" && (options.reference === undefined || options.reference === subject)) {
    throw new Error(`score: metric "${spec.metric}" compares a model with FP32, and this is the FP32 model itself: it has no score of its own. Score a simulation, or give another reference graph (e.g. the model before a graph fix).`);
  }
  // A graph is scored as a simulation with every quantizer bypassed: exactly FP32, and what `evaluate` expects.
  const base = fp32 ? QuantSim.create(subject, {}) : subject;
  const sim = base.with(fp32 ? { "**": { enabled: false } } : {});
  if (fp32) base.dispose();
  try {
    const variants = [{ key: "subject", sim, fp32 }];
    const perOutput = new Map<string, OutputScore[]>();
    const scores = options.evaluate
      ? await scoreAll("score", variants, options)
      : await scoreVariants(options.reference ?? sim.graph, options.data!, variants, { metric: spec!, onProgress: options.onProgress, task: "score", perOutput });
    const value = scores.get("subject")!;
    if (value === Infinity) throw new Error("score: evaluate() returned +Infinity on the FP32 model: a score against FP32 (such as a PSNR) has no value for FP32 itself; score a simulation instead");
    const metric = metricInfo(options, options.evaluate ? undefined : (options.reference ?? graph));
    const outputs = perOutput.get("subject");
    return { step: "score", subject: fp32 ? "fp32" : "simulation", metric, score: value, ...(outputs && metric.outputs ? { outputs } : {}), diagnosis: describe(fp32, metric, value, outputs) };
  } finally {
    sim.dispose();
  }
}

function describe(fp32: boolean, metric: MetricInfo, value: number, outputs: OutputScore[] | undefined): string {
  const who = fp32 ? "The FP32 model" : "The simulated model";
  const peak = outputs?.[0]?.peak !== undefined && metric.peak === undefined ? `; peak = FP32 output range ${outputs.map((o) => Number(o.peak!.toPrecision(4))).join(", ")}` : "";
  const parts = outputs && metric.outputs ? ` — per output: ${outputs.map((o) => `${o.output} ${scoreText(metric, o.score)}${metric.outputs!.length > 1 ? ` (weight ${Number(o.weight.toPrecision(3))})` : ""}`).join(", ")}` : "";
  return `${who} scores ${scoreText(metric, value)} (${metric.label}${peak})${parts}.`;
}
